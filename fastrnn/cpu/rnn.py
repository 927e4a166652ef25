"""Elman RNN (tanh or relu) on the CPU path: the time loop without autograd and its backward.

Dimensions: T time, B batch, H hidden size. Steps run on rows [:n] of the run order (layout.py).

Forward step, two ops: h_t = gx_t + h_{t-1} W_hh^T by one addmm straight into the output, then the
activation in place. The outputs are all the backward needs.
Backward: the activation's derivative is a function of the output (tanh: 1 - h^2, relu: not h <= 0,
as torch's own backward), computed for all steps before the loop into the gradient buffer; a step is
    dgates = dh * act'(h_t);  dh_{t-1} = dout_{t-1} + dgates W_hh
and dW_hh = sum dgates^T h_{t-1} after the loop.
"""

import sys

import torch

from fastrnn.cpu.function import run
from fastrnn.cpu.grads import weight_grad

CELL = "rnn"


def forward(problem, store):
    """The forward loop. Returns ((output, h_n, None), saved) in run order; the output is a
    per-step buffer of the layout ((T, B, H), or packed (N, H))."""
    p, layout = problem, problem.layout
    w_t = p.w_hh.t().contiguous()  # (H, H)
    out = layout.new_buffer((p.batch, p.h_out), p.gx)
    tanh = p.nonlinearity == "tanh"
    for segment in layout.segments:
        gxs = layout.steps_of(p.gx, segment)
        h_ins, h_outs = layout.previous_steps(out, segment, p.h0), layout.steps_of(out, segment)
        for k in range(len(gxs)):
            h = torch.addmm(gxs[k], h_ins[k], w_t, out=h_outs[k])
            if tanh:
                h.tanh_()
            else:
                h.relu_()
    return (out, layout.last_steps(out).clone(), None), ((out,) if store else ())


def backward(problem, saved, dout, dh_n, dc_n, dgates=None):
    """The backward loop. Returns (dgx, dh0, None, dw_hh, None, None) in run order; dgx is
    `dgates` (a contiguous buffer of its shape) when given."""
    p, layout = problem, problem.layout
    (out,) = saved
    tanh = p.nonlinearity == "tanh"
    if tanh:
        dgates = torch.addcmul(torch.ones((), dtype=out.dtype), out, out, value=-1, out=dgates)
    else:
        # torch's threshold_backward: 0 where the output is <= 0, else 1, so a NaN output
        # (NaN <= 0 is false) passes its gradient as in torch.nn.
        alive = (out <= 0).logical_not_()
        dgates = alive.to(out.dtype) if dgates is None else dgates.copy_(alive)
    dh = dh_n + layout.last_steps(dout)  # dh of the step being processed
    zeros, zero = dh.new_zeros(dh.shape), dh.new_zeros(())
    for segment in reversed(layout.segments):
        dh_n_ = dh[: segment[2]]
        dgs, dprevs = layout.steps_of(dgates, segment), layout.previous_steps(dout, segment, zeros)
        alives = None if tanh else layout.steps_of(alive, segment)
        for k in range(len(dgs) - 1, -1, -1):
            if tanh:
                dgs[k].mul_(dh_n_)
            else:
                # A select, not a product: a dead unit's gradient is 0 even where dh is NaN or
                # Inf (torch's threshold_backward), where 0 * NaN would be NaN.
                torch.where(alives[k], dh_n_, zero, out=dgs[k])
            torch.addmm(dprevs[k], dgs[k], p.w_hh, out=dh_n_)
    return dgates, dh, None, weight_grad(layout.pairs(dgates, out, p.h0)), None, None


def rnn_recurrence(gx, h0, w_hh, nonlinearity="tanh", lengths=None, reverse=False):
    """Run the RNN recurrence over precomputed input projections on the CPU path.

    Same contract as fastrnn.reference.rnn_recurrence.

    Args:
        gx: (T, B, H) = x @ W_ih^T + b_ih + b_hh.  h0: (B, H).  w_hh: (H, H).
        nonlinearity: 'tanh' or 'relu'.
        lengths: optional (B,) int64, each in [1, T].  reverse: run backwards.
    Returns:
        output (T, B, H), h_n (B, H).

    Example:
        >>> out, h = fastrnn.cpu.rnn_recurrence(gx, h0, w_hh, "relu")
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
    output, h_n = run(sys.modules[__name__], gx, h0, None, w_hh, None, None, lengths, reverse,
                      nonlinearity)
    return output, h_n
