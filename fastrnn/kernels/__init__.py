"""Fused Triton kernels for the LSTM, GRU and RNN recurrences: the only package that imports triton.

Each `*_recurrence` has the signature and return contract of its twin in `fastrnn.reference`
(forward and backward through autograd; double backward raises and names the reference backend).
Three kernel forms per cell (forms.py), planned from the sizes, the dtype, the batch and the
device: `persistent` (one program per batch tile runs the whole time loop, weights on chip),
`cooperative` (the loop split over many programs with a grid barrier per step) and `stepwise`
(one launch per step; every size). Force one with `use_form(...)` or FASTRNN_KERNEL_FORM;
`record_forms()` reports which one ran, `choose_form(...)` which one would and why.

Layout: forms.py (planning), jit.py (shared @triton.jit helpers), launch.py (problem, launching,
autograd), lstm.py / gru.py / rnn.py (the kernels and their host launchers), aot.py (compile for a
GPU target without a GPU).
"""

import triton  # noqa: F401  (an ImportError here tells the backend policy triton is missing)

from fastrnn.kernels.forms import (
    FORM_ENV_VAR,
    FORMS,
    choose_form,
    record_forms,
    use_form,
)
from fastrnn.kernels.gru import gru_recurrence
from fastrnn.kernels.launch import DOUBLE_BACKWARD_ERROR, synchronize
from fastrnn.kernels.lstm import lstm_recurrence
from fastrnn.kernels.rnn import rnn_recurrence

__all__ = [
    "DOUBLE_BACKWARD_ERROR",
    "FORMS",
    "FORM_ENV_VAR",
    "choose_form",
    "gru_recurrence",
    "lstm_recurrence",
    "record_forms",
    "refusal",
    "rnn_recurrence",
    "synchronize",
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
