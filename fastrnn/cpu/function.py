"""The autograd glue every CPU cell runs through: one autograd.Function per layer and direction.

Dimensions: T time, B batch, H hidden (cell) size, P projection size, H_out = P if P > 0 else H,
G gates (LSTM 4, GRU 3, RNN 1).

The forward runs the cell's time loop with autograd off (no graph of ~10 nodes per step) and, when a
gradient is needed, keeps the gate activations; the backward is the cell's hand-derived loop plus
weight gradients as large products after it. Without a gradient to compute (no_grad, or nothing
requires grad) the loop runs alone: nothing saved, no autograd node. float16 and bfloat16 run in
float32 inside (states, gates and products; what the Triton kernels do) and return their own dtype;
float32 and float64 run in their own dtype.

Double backward is refused with an error that names the reference: a differentiable backward would
need gx kept alive through the backward (to recompute the layer), memory this path exists to save.
"""

import dataclasses
from dataclasses import dataclass

import torch

from fastrnn.cpu.layout import Layout

DOUBLE_BACKWARD_ERROR = "double backward is not supported by the cpu backend; use backend='reference'"
# The tensors of a Problem that the backward needs (gx is not one: its storage is freed after the
# forward).
SAVED_FIELDS = ("h0", "c0", "w_hh", "w_hr", "b_hh")
LOW_PRECISION = (torch.float16, torch.bfloat16)


@dataclass
class Problem:
    """One recurrence call in run order (layout.py), in the compute dtype.

    gx (T, B, G*H), h0 (B, H_out), c0 (B, H) or None, w_hh (G*H, H_out), w_hr (P, H) or None,
    b_hh (3H,) or None (GRU: b_hn sits inside the reset product).
    """

    gx: torch.Tensor | None
    h0: torch.Tensor
    c0: torch.Tensor | None
    w_hh: torch.Tensor
    w_hr: torch.Tensor | None
    b_hh: torch.Tensor | None
    layout: Layout
    nonlinearity: str = "tanh"

    @property
    def batch(self):
        return self.h0.shape[0]

    @property
    def h_out(self):
        return self.w_hh.shape[1]


def _make_problem(inputs, lengths, reverse, nonlinearity):
    gx, h0, c0, w_hh, w_hr, b_hh = inputs
    dtype = torch.float32 if gx.dtype in LOW_PRECISION else gx.dtype
    layout = Layout(lengths, gx.shape[0], gx.shape[1], reverse)

    def cast(t):
        return None if t is None else t.to(dtype)

    return Problem(layout.to_run(cast(gx)), layout.rows_to_run(cast(h0)),
                   None if c0 is None else layout.rows_to_run(cast(c0)), cast(w_hh), cast(w_hr),
                   cast(b_hh), layout, nonlinearity)


def _forward(cell, inputs, options, store):
    """The cell's forward on `inputs` (the caller's order and dtype).

    Returns (outputs, problem, saved): outputs (output, h_n[, c_n]) in the caller's order and dtype.
    """
    problem = _make_problem(inputs, **options)
    (output, h_n, c_n), saved = cell.forward(problem, store)
    layout = problem.layout
    outputs = [layout.from_run(output), layout.rows_from_run(h_n)]
    if c_n is not None:
        outputs.append(layout.rows_from_run(c_n))
    return tuple(t.to(inputs[0].dtype) for t in outputs), problem, saved


class CpuRecurrence(torch.autograd.Function):
    """Inputs: (cell, options, gx, h0, c0, w_hh, w_hr, b_hh); outputs (output, h_n[, c_n]).

    `cell` has forward(problem, store) -> ((output, h_n, c_n or None), saved) in run order and
    backward(problem, saved, dout, dh_n, dc_n) -> (dgx, dh0, dc0, dw_hh, dw_hr, db_hh) in run order.
    """

    @staticmethod
    def forward(ctx, cell, options, gx, h0, c0, w_hh, w_hr, b_hh):
        inputs = (gx, h0, c0, w_hh, w_hr, b_hh)
        outputs, problem, saved = _forward(cell, inputs, options, store=True)
        ctx.cell = cell
        ctx.dtypes = [None if t is None else t.dtype for t in inputs]
        # Non-tensor fields stay on ctx; the tensors go through save_for_backward (version checks,
        # no reference cycles).
        ctx.meta = dataclasses.replace(problem, gx=None, **{name: None for name in SAVED_FIELDS})
        ctx.save_for_backward(*(getattr(problem, name) for name in SAVED_FIELDS), *saved)
        return outputs

    @staticmethod
    def backward(ctx, *grads):
        if torch.is_grad_enabled():
            raise RuntimeError(DOUBLE_BACKWARD_ERROR)
        tensors = ctx.saved_tensors
        count = len(SAVED_FIELDS)
        problem = dataclasses.replace(ctx.meta, **dict(zip(SAVED_FIELDS, tensors[:count])))
        layout = problem.layout
        dout, dh_n, *dc_n = [g.to(problem.h0.dtype) for g in grads]
        dout = layout.to_run(dout, zero_padding=True)
        dh_n = layout.rows_to_run(dh_n)
        dc_n = layout.rows_to_run(dc_n[0]) if dc_n else None
        # Products in the tensors' own dtype whatever autocast state `.backward()` runs in.
        with torch.autocast("cpu", enabled=False):
            dgx, dh0, dc0, dw_hh, dw_hr, db_hh = ctx.cell.backward(problem, tensors[count:], dout,
                                                                   dh_n, dc_n)
        result = [layout.from_run(dgx), layout.rows_from_run(dh0),
                  None if dc0 is None else layout.rows_from_run(dc0), dw_hh, dw_hr, db_hh]
        result = [None if g is None or not need else g.to(dtype)
                  for g, dtype, need in zip(result, ctx.dtypes, ctx.needs_input_grad[2:])]
        return (None, None, *result)


def _reference(name, inputs, options):
    """fastrnn.reference's `name` recurrence on run()'s inputs."""
    from fastrnn import reference

    gx, h0, c0, w_hh, w_hr, b_hh = inputs
    lengths, reverse = options["lengths"], options["reverse"]
    if name == "lstm":
        return reference.lstm_recurrence(gx, h0, c0, w_hh, w_hr, lengths, reverse)
    if name == "gru":
        return reference.gru_recurrence(gx, h0, w_hh, b_hh, lengths, reverse)
    return reference.rnn_recurrence(gx, h0, w_hh, options["nonlinearity"], lengths, reverse)


@torch.compiler.disable
def run(cell, gx, h0, c0, w_hh, w_hr, b_hh, lengths=None, reverse=False, nonlinearity="tanh"):
    """Apply CpuRecurrence (autograd.Function.apply takes positional arguments only), or run the
    forward alone when no gradient is needed.

    Excluded from torch.compile: Dynamo cannot trace ops into the loop's prepared (non-contiguous)
    views, so a compiled model graph-breaks here and runs the loop eagerly (`auto` picks the
    reference while compiling, which traces). An empty batch or a zero hidden size has nothing to
    compute: it runs the reference's loop, which only builds empty or zero-width tensors.
    """
    options = {"lengths": lengths, "reverse": bool(reverse), "nonlinearity": nonlinearity}
    inputs = (gx, h0, c0, w_hh, w_hr, b_hh)
    if gx.shape[1] == 0 or gx.shape[2] == 0:
        return _reference(cell.CELL, inputs, options)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs):
        return CpuRecurrence.apply(cell, options, *inputs)
    return _forward(cell, inputs, options, store=False)[0]
