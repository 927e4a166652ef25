"""Every kernel compiled ahead of time for sm_90 (H100/H200) through Triton's real pipeline down to
a cubin, without a GPU: catches what the interpreter lets through (tl.dot >= 16, loop-carried types,
compiler crashes) and spills in the persistent configurations select_form picks.

Slow (minutes): marked `slow`; runs in a subprocess with TRITON_INTERPRET unset, because under the
interpreter `@triton.jit` builds interpreted functions that cannot be compiled.
"""

import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")
pytest.importorskip("triton.backends.nvidia.compiler")

pytestmark = pytest.mark.slow


def test_all_kernels_compile_for_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    run = subprocess.run([sys.executable, "-m", "fastrnn.kernels.aot", "--arch", "90", "--quick"],
                         capture_output=True, text=True, env=env, timeout=1800)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
