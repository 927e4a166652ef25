"""The kernels compiled ahead of time for sm_90 (H100/H200) through Triton's real pipeline down to a
cubin, without a GPU, in the configurations the planner picks on an H100: catches what the
interpreter lets through (tl.dot >= 16, loop-carried types, compiler crashes), spills and shared
memory beyond a block's, and checks in the PTX that the cooperative form's grid barrier is what
the design says (release add, acquire poll, state loads that bypass L1).

Slow (minutes): marked `slow`; runs in a subprocess with TRITON_INTERPRET unset, because under the
interpreter `@triton.jit` builds interpreted functions that cannot be compiled.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")
pytest.importorskip("triton.backends.nvidia.compiler")

pytestmark = pytest.mark.slow

RELEASE_ADD = re.compile(r"(red|atom)\.global\.gpu\.release\.add")
ACQUIRE_POLL = re.compile(r"ld\.global\.gpu\.acquire")
L2_LOAD = re.compile(r"ld\.global\.cg")
# The `load` poll (FASTRNN_BARRIER_POLL=load): inline PTX by every thread.
LOAD_POLL = re.compile(r"ld\.acquire\.gpu\.global\.b32")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(output lines, PTX folder) of `python -m fastrnn.kernels.aot --quick --ptx DIR`."""
    folder = tmp_path_factory.mktemp("ptx")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    run = subprocess.run([sys.executable, "-m", "fastrnn.kernels.aot", "--arch", "90", "--quick",
                          "--ptx", str(folder)], capture_output=True, text=True, env=env,
                         timeout=3000)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    return run.stdout.splitlines(), folder


def _configurations(lines, form):
    """(index, line) of the compiled configurations of `form`."""
    found = []
    for line in lines:
        match = re.match(r"ok\s+(\d+) \S+ (\w+)", line)
        if match and match.group(2) == form:
            found.append((int(match.group(1)), line))
    return found


def test_every_planned_configuration_compiles_without_spills(compiled):
    lines, _ = compiled
    assert len(_configurations(lines, "cooperative")) >= 10
    assert not [line for line in lines if not line.startswith("ok")]


def test_the_cooperative_barrier_is_release_add_acquire_poll_and_l2_loads(compiled):
    lines, folder = compiled
    for index, line in _configurations(lines, "cooperative"):
        ptx = Path(folder, f"{index:02d}.ptx").read_text()
        assert RELEASE_ADD.search(ptx), line
        assert ACQUIRE_POLL.search(ptx), line
        assert L2_LOAD.search(ptx), line


def _poll_loops(ptx):
    """The grid barrier's poll loops: the PTX basic blocks that branch back to their own label and
    read with acquire semantics."""
    loops = []
    for block in re.split(r"\n(?=\$L__BB\d+_\d+:)", ptx):
        label = re.match(r"(\$L__BB\d+_\d+):", block)
        if (label and re.search(rf"bra(\.uni)?\s+{re.escape(label.group(1))};", block)
                and "acquire" in block):
            loops.append(block)
    return loops


@pytest.mark.parametrize("poll", ["rmw", "load"])
def test_barrier_poll_variants(poll, tmp_path):
    """FASTRNN_BARRIER_POLL: `rmw` (tl.atomic_add of 0, which LLVM lowers to a thread-0 acquire load
    broadcast through shared memory: CTA barriers in the loop) and `load` (an acquire load by every
    thread, nothing else in the loop); both arrive with one release add and keep the bit-30 error."""
    from fastrnn.kernels import aot

    index = next(i for i, c in enumerate(aot.configs(quick=True))
                 if c.plan.form == "cooperative" and (c.cell, c.pass_name) == ("lstm", "fwd"))
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(TRITON_DEFAULT_FP_FUSION="1", FASTRNN_BARRIER_POLL=poll)
    run = subprocess.run([sys.executable, "-m", "fastrnn.kernels.aot", "--quick", "--index",
                          str(index), "--ptx", str(tmp_path)], capture_output=True, text=True,
                         env=env, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    ptx = Path(tmp_path, f"{index:02d}.ptx").read_text()
    loops = _poll_loops(ptx)
    assert len(loops) == 1 and len(RELEASE_ADD.findall(ptx)) == 1, run.stdout
    assert re.search(r"red\.global\.gpu\.relaxed\.or\.b32", ptx)  # the bit-30 error
    assert "atom." not in loops[0]
    if poll == "load":
        assert LOAD_POLL.search(loops[0]) and "bar.sync" not in loops[0]
        assert not ACQUIRE_POLL.search(ptx)
    else:
        assert ACQUIRE_POLL.search(loops[0]) and loops[0].count("bar.sync") == 2
        assert not LOAD_POLL.search(ptx)


def test_persistent_compiles_no_barrier(compiled):
    lines, folder = compiled
    for index, line in _configurations(lines, "persistent"):
        ptx = Path(folder, f"{index:02d}.ptx").read_text()
        assert not RELEASE_ADD.search(ptx) and not ACQUIRE_POLL.search(ptx), line
