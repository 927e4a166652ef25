"""Fused Triton kernels: the only package that imports triton.

Not implemented yet: `refusal` tells the backend policy so, and an explicit request for the
triton backend raises a clear error.
"""

import triton  # noqa: F401  (an ImportError here tells the backend policy triton is missing)


def refusal(spec):
    """None when the kernels can run `spec` (a backends.RecurrenceSpec), else the reason."""
    return "the Triton kernels are not available in this version of fastrnn yet"
