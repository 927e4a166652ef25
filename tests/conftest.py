"""Shared test configuration: the backend fixture, a deterministic hypothesis profile, seeding."""

import functools
import os
import sys

import pytest
import torch
import triton_probe
from helpers import BACKENDS
from hypothesis import settings

from fastrnn.gpu_sections import LIVE_PREFIX

settings.register_profile("fastrnn", derandomize=True, deadline=None, database=None,
                          print_blob=True)
settings.load_profile("fastrnn")


def pytest_configure(config):
    config.addinivalue_line("markers", "triton: runs the Triton kernels (interpreter on CPU)")


@functools.cache
def _interpreter_problem():
    """Why the kernel tests on CPU tensors cannot run here, or None.

    triton 3.6's interpreter with numpy >= 2.4 fails every kernel with a loop (`only 0-dimensional
    arrays can be converted to Python scalars`): that is the GPU machine's stack. A trivial kernel
    of our own making is the probe, so a bug in fastrnn's kernels can never turn into a skip.
    """
    return triton_probe.interpreter_problem()


def pytest_collection_modifyitems(config, items):
    problem = _interpreter_problem()
    if problem is None:
        return
    skip = pytest.mark.skip(reason=f"{problem}; on a GPU `pytest -m gpu` and `fastrnn gpu-run` "
                                   f"test the compiled kernels")
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_triton = callspec is not None and callspec.params.get("backend") == "triton"
        if on_triton or item.get_closest_marker("triton") is not None:
            item.add_marker(skip)


def pytest_runtest_logreport(report):
    """With FASTRNN_LIVE_REPORT=1 (set by `fastrnn gpu-run`), each test's outcome is printed as one
    '::: <outcome> <seconds>s <nodeid>' line when it is known, and a failure's report the moment
    it arrives: a run cut at its time box still says which tests passed, failed or were skipped,
    with the tracebacks that -rfE would only print at the end (with pytest-xdist this runs in the
    controller, so the log gets each line once)."""
    if os.environ.get("FASTRNN_LIVE_REPORT") != "1":
        return
    if report.failed:
        sys.stdout.write(f"\n!!!!! FAILED {report.nodeid} ({report.when})\n"
                         f"{report.longreprtext[-8000:]}\n!!!!! end of {report.nodeid}\n")
    # A test's outcome: its call, or its setup when that failed or skipped (no call follows).
    if report.when == "call" or (report.when == "setup" and not report.passed):
        sys.stdout.write(f"\n{LIVE_PREFIX}{report.outcome} {report.duration:.1f}s {report.nodeid}\n")
    sys.stdout.flush()


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same RNG state, so a failure reproduces on its own."""
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _poison_triton_outputs(request, monkeypatch):
    """Triton runs fill fresh kernel outputs with NaN, so an unwritten element fails a test."""
    callspec = getattr(request.node, "callspec", None)
    on_triton = callspec is not None and callspec.params.get("backend") == "triton"
    if on_triton or request.node.get_closest_marker("triton") is not None:
        monkeypatch.setenv("FASTRNN_POISON", "1")


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each backend of the one list in helpers.BACKENDS."""
    return request.param
