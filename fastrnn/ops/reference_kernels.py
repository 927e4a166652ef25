"""The reference recurrences as op kernels (see fastrnn.ops.library for the interface).

Dimensions: T time, B batch, H_out output width.

Eagerly the reference backend runs its plain ops and never comes here (it is the executable spec,
differentiable twice). Under torch.compile and torch.export it runs as the `fastrnn::<cell>` ops,
so a graph holds one node per layer-direction instead of T unrolled steps: the forward op runs the
loop without autograd and keeps nothing; the backward op recomputes the forward and differentiates
it with torch.func.vjp (autograd inside an op kernel, where the dispatcher has left autograd
behind), the reference's own derivative.
"""

import torch

from fastrnn import reference

DOUBLE_BACKWARD_ERROR = (
    "double backward through the fastrnn::*_backward ops is not supported (the reference backend "
    "runs as ops only under torch.compile or torch.export); call the model eagerly with "
    "backend='reference'")


def _run(call, gx, h0, c0, w_hh, w_hr, b_hh):
    if call.cell == "lstm":
        return reference.lstm_recurrence(gx, h0, c0, w_hh, w_hr, call.lengths, call.reverse)
    if call.cell == "gru":
        return reference.gru_recurrence(gx, h0, w_hh, b_hh, call.lengths, call.reverse)
    return reference.rnn_recurrence(gx, h0, w_hh, call.nonlinearity, call.lengths, call.reverse)


def run(call):
    """The reference recurrence on `call`'s tensors as plain (differentiable) ops."""
    return _run(call, call.gx, call.h0, call.c0, call.w_hh, call.w_hr, call.b_hh)


def op_forward(call):
    """(output (T, B, H_out), h_n, c_n or None, no reserves)."""
    with torch.no_grad():
        result = run(call)
    # Fresh tensors: an op's outputs may not alias its inputs or each other.
    output, h_n, *c_n = (t.clone() for t in result)
    return output, h_n, c_n[0] if c_n else None, ()


def reserve_shapes(call):
    return ()


def op_backward(call, output, reserve, dout, dh_n, dc_n):
    """Gradients (dgx, dh0, dc0, dw_hh, dw_hr, db_hh) by recomputing the forward under vjp."""
    names = ("gx", "h0", "c0", "w_hh", "w_hr", "b_hh")
    present = [name for name in names if getattr(call, name) is not None]

    def forward(*tensors):
        values = dict(zip(present, tensors))
        return _run(call, *(values.get(name) for name in names))

    _, vjp = torch.func.vjp(forward, *(getattr(call, name) for name in present))
    cotangents = (dout, dh_n) if dc_n is None else (dout, dh_n, dc_n)
    grads = dict(zip(present, vjp(cotangents)))
    return tuple(grads.get(name) for name in names)
