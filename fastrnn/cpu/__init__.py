"""The CPU path: LSTM, GRU and RNN recurrences written for CPU tensors, what `auto` runs there.

Each `*_recurrence` has the signature and return contract of its twin in `fastrnn.reference` (the
executable spec, which stays plain autograd-through-ops). Here one `fastrnn::<cell>` op per layer
and direction (fastrnn.ops) runs the time loop with autograd off, a few in-place ops per step into
buffers made before the loop, and a hand-derived backward: gate gradients scaled in one loop from
local factors computed for all steps at once, weight gradients as large products after it. Variable
lengths run sequences sorted by length on a shrinking batch prefix instead of under masks, every
per-step buffer packed to the valid (step, sequence) pairs (layout.py). A second
derivative raises with an error that names backend='reference'. A single step (a cell module's
call, or T=1) has no loop to save and runs the reference's plain ops instead of the op, whose fixed
cost per call would be most of the time (function.run).

The LSTM's and GRU's steps call fused_steps.c (compiled on first use, fused.py): a step's
pointwise part in one call, and a small LSTM's whole loop with its products; without a C compiler
they run as ATen ops. An LSTM layer's inference that fits the whole loop runs its input projection
inside it too (inference.py: no gx for all steps).

Layout: layout.py (run order of variable lengths, per-step views and addresses), function.py (the op
kernels: dtypes, the reserve, run order in and out), grads.py (weight gradients), loop.py (the
forward loop LSTM and GRU share), fused.py + fused_steps.c (the compiled steps), products.py (MKL's
packed weight, the input projection), inference.py (the LSTM's inference layer), lstm.py / gru.py / rnn.py.
"""

from fastrnn.cpu.function import DOUBLE_BACKWARD_ERROR
from fastrnn.cpu.gru import gru_recurrence
from fastrnn.cpu.inference import lstm_inference_layer
from fastrnn.cpu.lstm import lstm_recurrence
from fastrnn.cpu.products import input_projection
from fastrnn.cpu.rnn import rnn_recurrence

__all__ = ["DOUBLE_BACKWARD_ERROR", "gru_recurrence", "input_projection", "lstm_inference_layer",
           "lstm_recurrence", "refusal", "rnn_recurrence"]


def refusal(spec):
    """None when the CPU path can run `spec` (a backends.RecurrenceSpec), else the reason."""
    # meta: shapes only, through the op's fake implementation (fastrnn.ops).
    if spec.device.type not in ("cpu", "meta"):
        return (f"the cpu backend runs on CPU tensors, got a {spec.device.type} tensor; use "
                f"backend='auto' or 'reference'")
    if spec.double_backward:
        return DOUBLE_BACKWARD_ERROR
    return None
