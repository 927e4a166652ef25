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


def test_persistent_compiles_no_barrier(compiled):
    lines, folder = compiled
    for index, line in _configurations(lines, "persistent"):
        ptx = Path(folder, f"{index:02d}.ptx").read_text()
        assert not RELEASE_ADD.search(ptx) and not ACQUIRE_POLL.search(ptx), line
