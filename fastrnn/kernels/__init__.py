"""Fused Triton kernels for the LSTM, GRU and RNN recurrences: the only package that imports triton.

Each `*_recurrence` has the signature and return contract of its twin in `fastrnn.reference`
(forward and backward through autograd; double backward raises and names the reference backend).
Two kernel forms per cell, picked by `select_form` from the sizes, the dtype and the batch:
`persistent` (whole time loop in one launch, weights on chip) and `alternating` (per step a product
kernel plus a fused gate kernel). Force one with `use_form("persistent" | "alternating" | None)` or
FASTRNN_KERNEL_FORM. See fastrnn/kernels/common.py for the forms and their limits.
"""

import triton  # noqa: F401  (an ImportError here tells the backend policy triton is missing)

from fastrnn.kernels.common import (
    DOUBLE_BACKWARD_ERROR,
    FORM_ENV_VAR,
    FORMS,
    PERSISTENT_WEIGHT_BYTES,
    choose_form,
    record_forms,
    select_form,
    use_form,
)
from fastrnn.kernels.gru import gru_recurrence
from fastrnn.kernels.lstm import lstm_recurrence
from fastrnn.kernels.rnn import rnn_recurrence

__all__ = [
    "DOUBLE_BACKWARD_ERROR",
    "FORMS",
    "FORM_ENV_VAR",
    "PERSISTENT_WEIGHT_BYTES",
    "choose_form",
    "gru_recurrence",
    "lstm_recurrence",
    "record_forms",
    "refusal",
    "rnn_recurrence",
    "select_form",
    "use_form",
]

_MODES = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")
_DTYPES = {"float32", "float16", "bfloat16"}


def refusal(spec):
    """None when the kernels can run `spec` (a backends.RecurrenceSpec), else the reason.

    The device type itself (CUDA, or CPU under TRITON_INTERPRET=1) is checked by fastrnn.backends.
    """
    import torch

    if spec.mode not in _MODES:
        return f"unknown mode {spec.mode!r}"
    if spec.double_backward:
        return DOUBLE_BACKWARD_ERROR
    dtype = str(spec.dtype).removeprefix("torch.")
    if dtype not in _DTYPES:
        return (f"the triton kernels support float32, float16 and bfloat16, not {dtype}; "
                f"use backend='reference' (float64 is the reference's own oracle precision)")
    if spec.device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(spec.device)
        if major < 8:
            return (f"the triton kernels need compute capability >= 8.0 (Ampere or newer) for "
                    f"bf16/fp16 tensor-core products, got {major}.x; use backend='torch' or "
                    f"'reference'")
    return None
