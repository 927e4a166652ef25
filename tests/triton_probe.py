"""Whether Triton's interpreter works in this environment (a helper of conftest, no tests here)."""

import torch

from fastrnn.backends import triton_interpreter_enabled


def interpreter_problem():
    """Why the kernel tests on CPU tensors cannot run here, or None: they need TRITON_INTERPRET=1
    exported before Python starts (`make test` does) and an interpreter that runs a trivial
    kernel with a runtime loop. None as well when triton is missing (those tests import-skip)."""
    if not triton_interpreter_enabled():
        return ("TRITON_INTERPRET=1 was not exported before Python started, and the kernel tests "
                "on CPU tensors run through Triton's interpreter (`make test` exports it)")
    try:
        import numpy
        import triton
        import triton.language as tl
    except ImportError:
        return None

    @triton.jit
    def _count(out_ptr, n):
        total = 0
        for _ in range(n):
            total += 1
        tl.store(out_ptr, total)

    out = torch.zeros(1, dtype=torch.int32)
    try:
        _count[(1,)](out, 3)
    except Exception as error:
        return (f"Triton's interpreter fails here (triton {triton.__version__}, numpy "
                f"{numpy.__version__}: {type(error).__name__}: {str(error)[:120]})")
    if int(out) != 3:
        return f"Triton's interpreter computes a loop wrongly here (triton {triton.__version__})"
    return None
