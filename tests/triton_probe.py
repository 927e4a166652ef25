"""Whether Triton's interpreter works in this environment (a helper of conftest, no tests here)."""

import torch

from fastrnn.backends import triton_interpreter_enabled


def interpreter_problem():
    """None when TRITON_INTERPRET is off, triton is missing, or a trivial kernel with a runtime
    loop runs under the interpreter; else the reason it does not."""
    if not triton_interpreter_enabled():
        return None
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
