"""`use_backend` and `kernels.use_form` are context variables: they hold in their own asyncio task
(and thread) and are inherited by tasks started inside the block, never leaked to others."""

import asyncio
import threading

import pytest

import fastrnn
from fastrnn.backends import requested_backend


async def _backend_seen_after(delay, backend=None):
    """The backend in force in this task after `delay`, inside use_backend(backend) if given."""
    if backend is None:
        await asyncio.sleep(delay)
        return requested_backend()
    with fastrnn.use_backend(backend):
        await asyncio.sleep(delay)
        return requested_backend()


def test_use_backend_does_not_leak_across_asyncio_tasks():
    async def main():
        # The 'torch' task enters its block first and is still inside it when the other reads.
        return await asyncio.gather(_backend_seen_after(0.05, "torch"),
                                    _backend_seen_after(0.02))

    inside, outside = asyncio.run(main())
    assert (inside, outside) == ("torch", "auto")


def test_use_backend_is_inherited_by_tasks_started_inside():
    async def main():
        with fastrnn.use_backend("reference"):
            return await asyncio.create_task(_backend_seen_after(0))

    assert asyncio.run(main()) == "reference"


def test_use_backend_does_not_leak_across_threads():
    seen = []
    entered, release = threading.Event(), threading.Event()

    def inside():
        with fastrnn.use_backend("torch"):
            entered.set()
            release.wait(5)

    worker = threading.Thread(target=inside)
    worker.start()
    entered.wait(5)
    seen.append(requested_backend())
    release.set()
    worker.join()
    assert seen == ["auto"]


def test_use_form_does_not_leak_across_asyncio_tasks():
    kernels = pytest.importorskip("fastrnn.kernels")

    async def forced_after(delay, form=None):
        if form is None:
            await asyncio.sleep(delay)
            return kernels.forms.forced_form()
        with kernels.use_form(form):
            await asyncio.sleep(delay)
            return kernels.forms.forced_form()

    async def main():
        return await asyncio.gather(forced_after(0.05, "stepwise"), forced_after(0.02))

    assert asyncio.run(main()) == ["stepwise", None]


def test_record_forms_nest_and_unwind():
    kernels = pytest.importorskip("fastrnn.kernels")
    with kernels.record_forms() as outer:
        with kernels.record_forms() as inner:
            assert kernels.forms.active_recorders() == (outer, inner)
        assert kernels.forms.active_recorders() == (outer,)
    assert kernels.forms.active_recorders() == ()
