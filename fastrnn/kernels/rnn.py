"""Elman RNN recurrence kernels (tanh or relu; forward and backward, both forms), held to
fastrnn.reference.rnn.

Dimensions: T time, B batch, H hidden size, G = 1, BLOCK_B batch rows per program, BLOCK_H hidden
units per program (padded H in the persistent form).

Forms (chosen in common.select_form):
    persistent   `_rnn_fwd_persistent_kernel` / `_rnn_bwd_persistent_kernel`: one program per batch
                 tile loops over all T steps with W_hh^T on chip and h in fp32 registers. Wins while
                 the padded H*H weight fits one SM: H <= 64 in fp32 (FMA products), H <= 256 in fp16/bf16
                 (see common.PERSISTENT_WEIGHT_BYTES).
    alternating  per step `common._matmul_kernel` (h_{t-1} W_hh^T) and `_rnn_fwd_step_kernel`.
                 Works for every size; the fallback.
Both call `_rnn_step_fwd` / `_rnn_step_bwd`, the step body.

Backward: dpre = dh * act'(pre), with act' from the output itself (tanh: 1 - h^2, relu: h > 0), so
nothing but the output is saved (store vs recompute does not arise). dh_{t-1} = dpre W_hh,
dW_hh = sum dpre^T h_{t-1} after the loop.
"""

import sys

import torch
import triton
import triton.language as tl

from fastrnn.kernels import common
from fastrnn.kernels.common import (
    _add_dout,
    _dot,
    _keep_finished,
    _persistent_tile,
    _row_lengths,
    _step_tile,
    _store_step,
    _tanh,
    _time_index,
)

CELL = "rnn"


@triton.jit
def _rnn_step_fwd(
    gx_ptr,  # (T, B, H) input projections, both biases included
    t,
    B,
    H,
    b_gh,
    i_b,
    i_h,
    m_bh,
    RELU: tl.constexpr,
):
    """h_t of one (batch tile, hidden tile) from the fp32 product b_gh = h_{t-1} W_hh^T."""
    p_gx = gx_ptr + t.to(tl.int64) * B * H + i_b[:, None] * H + i_h[None, :]
    b_pre = tl.load(p_gx, mask=m_bh, other=0.0).to(tl.float32) + b_gh
    if RELU:
        b_h = tl.maximum(b_pre, 0.0)
    else:
        b_h = _tanh(b_pre)
    return b_h


@triton.jit
def _rnn_step_bwd(
    out_ptr,  # (T, B, H) outputs: h_t inside each sequence
    dgx_ptr,  # (T, B, H) out
    t,
    B,
    H,
    b_dh,
    i_b,
    i_h,
    m_bh,
    m_valid,
    RELU: tl.constexpr,
):
    """Pre-activation gradient of one tile at step t (zero outside the sequence); stores dgx_t."""
    o_t = t.to(tl.int64) * B * H + i_b[:, None] * H + i_h[None, :]
    b_h = tl.load(out_ptr + o_t, mask=m_bh, other=0.0).to(tl.float32)
    if RELU:
        b_dpre = tl.where(b_h > 0.0, b_dh, 0.0)
    else:
        b_dpre = b_dh * (1.0 - b_h * b_h)
    b_dpre = tl.where(m_valid, b_dpre, 0.0)
    tl.store(dgx_ptr + o_t, b_dpre.to(dgx_ptr.dtype.element_ty), mask=m_bh)
    return b_dpre


@triton.jit(do_not_specialize=["T"])
def _rnn_fwd_persistent_kernel(
    gx_ptr,  # (T, B, H)
    h0_ptr,  # (B, H)
    w_hh_ptr,  # (H, H)
    len_ptr,  # (B,) int64 (HAS_LENGTHS)
    out_ptr,  # (T, B, H)
    hn_ptr,  # (B, H)
    T,
    B,
    H,
    RELU: tl.constexpr,
    HAS_LENGTHS: tl.constexpr,
    REVERSE: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    DOT_FP32: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    i_b, i_h, m_b, m_h, m_bh = _persistent_tile(B, H, BLOCK_B, BLOCK_H)
    # W_hh^T (BLOCK_H in, BLOCK_H out): h (BLOCK_B, H) @ W^T keeps batch as M >= 16.
    b_w = tl.load(w_hh_ptr + i_h[None, :] * H + i_h[:, None], mask=m_h[:, None] & m_h[None, :],
                  other=0.0)
    o_bh = i_b[:, None] * H + i_h[None, :]
    b_h = tl.load(h0_ptr + o_bh, mask=m_bh, other=0.0).to(tl.float32)
    b_len = _row_lengths(len_ptr, i_b, m_b, HAS_LENGTHS)
    for s in range(0, T):
        t, m_valid = _time_index(s, T, b_len, m_b, REVERSE, HAS_LENGTHS)
        b_gh = _dot(b_h, b_w, INPUT_PRECISION, DOT_FP32)
        b_h_new = _rnn_step_fwd(gx_ptr, t, B, H, b_gh, i_b, i_h, m_bh, RELU)
        _store_step(out_ptr, t, B, H, o_bh, m_bh, b_h_new, m_valid)
        b_h = _keep_finished(m_valid, b_h_new, b_h, HAS_LENGTHS)
    tl.store(hn_ptr + o_bh, b_h.to(hn_ptr.dtype.element_ty), mask=m_bh)


@triton.jit(do_not_specialize=["T"])
def _rnn_bwd_persistent_kernel(
    out_ptr,  # (T, B, H)
    w_hh_ptr,  # (H, H)
    len_ptr,  # (B,) int64 (HAS_LENGTHS)
    dout_ptr,  # (T, B, H)
    dhn_ptr,  # (B, H)
    dgx_ptr,  # (T, B, H) out
    dh0_ptr,  # (B, H) out
    T,
    B,
    H,
    RELU: tl.constexpr,
    HAS_LENGTHS: tl.constexpr,
    REVERSE: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    DOT_FP32: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    i_b, i_h, m_b, m_h, m_bh = _persistent_tile(B, H, BLOCK_B, BLOCK_H)
    b_w = tl.load(w_hh_ptr + i_h[:, None] * H + i_h[None, :], mask=m_h[:, None] & m_h[None, :],
                  other=0.0)
    o_bh = i_b[:, None] * H + i_h[None, :]
    b_dh = tl.load(dhn_ptr + o_bh, mask=m_bh, other=0.0).to(tl.float32)
    b_len = _row_lengths(len_ptr, i_b, m_b, HAS_LENGTHS)
    for s in range(0, T):
        j = T - 1 - s  # index of this step in forward processing order
        t, m_valid = _time_index(j, T, b_len, m_b, REVERSE, HAS_LENGTHS)
        b_dht = _add_dout(b_dh, dout_ptr, t, B, H, o_bh, m_bh)
        b_dpre = _rnn_step_bwd(out_ptr, dgx_ptr, t, B, H, b_dht, i_b, i_h, m_bh, m_valid, RELU)
        b_dh_new = _dot(b_dpre, b_w, INPUT_PRECISION, DOT_FP32)
        b_dh = _keep_finished(m_valid, b_dh_new, b_dh, HAS_LENGTHS)
    tl.store(dh0_ptr + o_bh, b_dh.to(dh0_ptr.dtype.element_ty), mask=m_bh)


@triton.jit(do_not_specialize=["t"])
def _rnn_fwd_step_kernel(
    gx_ptr,  # (T, B, H)
    gh_ptr,  # (B, H) fp32: h_{t-1} W_hh^T
    h_ptr,  # (B, H) fp32 h_{t-1}
    hn_ptr,  # (B, H) fp32 h_t out
    out_ptr,  # (T, B, H)
    len_ptr,  # (B,) int64 (HAS_LENGTHS)
    t,
    B,
    H,
    RELU: tl.constexpr,
    HAS_LENGTHS: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    i_b, i_h, _, m_bh, o_bh, m_valid = _step_tile(len_ptr, t, B, H, HAS_LENGTHS, BLOCK_B, BLOCK_H)
    b_gh = tl.load(gh_ptr + o_bh, mask=m_bh, other=0.0)
    b_h = tl.load(h_ptr + o_bh, mask=m_bh, other=0.0)
    b_h_new = _rnn_step_fwd(gx_ptr, t, B, H, b_gh, i_b, i_h, m_bh, RELU)
    tl.store(hn_ptr + o_bh, tl.where(m_valid, b_h_new, b_h), mask=m_bh)
    _store_step(out_ptr, t, B, H, o_bh, m_bh, b_h_new, m_valid)


@triton.jit(do_not_specialize=["t"])
def _rnn_bwd_step_kernel(
    out_ptr,  # (T, B, H)
    dh_ptr,  # (B, H) fp32 dh carried from later steps
    dout_ptr,  # (T, B, H)
    dgx_ptr,  # (T, B, H) out
    len_ptr,  # (B,) int64 (HAS_LENGTHS)
    t,
    B,
    H,
    RELU: tl.constexpr,
    HAS_LENGTHS: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    i_b, i_h, _, m_bh, o_bh, m_valid = _step_tile(len_ptr, t, B, H, HAS_LENGTHS, BLOCK_B, BLOCK_H)
    b_dh = tl.load(dh_ptr + o_bh, mask=m_bh, other=0.0)
    b_dh = _add_dout(b_dh, dout_ptr, t, B, H, o_bh, m_bh)
    _rnn_step_bwd(out_ptr, dgx_ptr, t, B, H, b_dh, i_b, i_h, m_bh, m_valid, RELU)


def forward(pb, store):
    """Launch the forward; returns ((output, h_n), saved tensors for backward: none, the output
    itself carries the activation)."""
    del store  # the output is all the backward needs
    steps, batch, hidden = pb.steps, pb.batch, pb.hidden
    gx = pb.gx
    out = common.empty((steps, batch, hidden), gx)
    lengths = gx if pb.lengths is None else pb.lengths
    flags = {"RELU": pb.nonlinearity == "relu", "HAS_LENGTHS": pb.lengths is not None}
    if pb.form == "persistent":
        h_n = common.empty((batch, hidden), gx)
        grid, meta = common.persistent_launch(pb)
        _rnn_fwd_persistent_kernel[grid](gx, pb.h0, pb.w_hh, lengths, out, h_n, steps, batch,
                                         hidden, REVERSE=pb.reverse, **flags, **meta)
    else:
        f32 = torch.float32
        h_state = common.empty((2, batch, hidden), gx, f32)
        h_state[0] = pb.h0
        gh = common.empty((batch, hidden), gx, f32)
        grid, meta = common.step_launch(pb)
        for s in range(steps):
            t = common.time_index(s, steps, pb.reverse)
            cur, nxt = h_state[s % 2], h_state[(s + 1) % 2]
            common.step_product(cur, pb.w_hh, gh, transpose_w=True)
            _rnn_fwd_step_kernel[grid](gx, gh, cur, nxt, out, lengths, t, batch, hidden, **flags,
                                       **meta)
        h_n = h_state[steps % 2].to(gx.dtype)
    return (out, h_n), ()


def backward(pb, saved, outputs, grads):
    """Launch the backward; returns (dgx, dh0, None, dw_hh, None, None)."""
    del saved
    out = outputs[0]
    dout, dh_n = grads
    steps, batch, hidden = pb.steps, pb.batch, pb.hidden
    gx = pb.gx
    lengths = gx if pb.lengths is None else pb.lengths
    flags = {"RELU": pb.nonlinearity == "relu", "HAS_LENGTHS": pb.lengths is not None}
    dgx = common.empty(gx.shape, gx)
    if pb.form == "persistent":
        dh0 = common.empty((batch, hidden), gx)
        grid, meta = common.persistent_launch(pb)
        _rnn_bwd_persistent_kernel[grid](out, pb.w_hh, lengths, dout, dh_n, dgx, dh0, steps,
                                         batch, hidden, REVERSE=pb.reverse, **flags, **meta)
    else:
        dh_state = common.empty((2, batch, hidden), gx, torch.float32)
        dh_state[0] = dh_n
        grid, meta = common.step_launch(pb)
        for k, s in enumerate(range(steps - 1, -1, -1)):
            t = common.time_index(s, steps, pb.reverse)
            cur, nxt = dh_state[k % 2], dh_state[(k + 1) % 2]
            _rnn_bwd_step_kernel[grid](out, cur, dout, dgx, lengths, t, batch, hidden, **flags,
                                       **meta)
            common.step_product(dgx[t], pb.w_hh, nxt, transpose_w=False, t=t,
                                lengths=pb.lengths, old=cur)
        dh0 = dh_state[steps % 2].to(gx.dtype)
    h_prev = common.previous_hidden(out, pb.h0, pb.lengths, pb.reverse)
    return dgx, dh0, None, common.weight_grad(dgx, h_prev), None, None


def rnn_recurrence(gx, h0, w_hh, nonlinearity="tanh", lengths=None, reverse=False):
    """Run the Elman RNN recurrence over precomputed input projections with the Triton kernels.

    Same contract as fastrnn.reference.rnn_recurrence.

    Args:
        gx: (T, B, H) = x @ W_ih^T + b_ih + b_hh.  h0: (B, H).  w_hh: (H, H).
        nonlinearity: 'tanh' or 'relu'.
        lengths: optional (B,) int64 on gx's device, each in [1, T].  reverse: run backwards.
    Returns:
        output (T, B, H), h_n (B, H).

    Example:
        >>> out, h = fastrnn.kernels.rnn_recurrence(gx, h0, w_hh, "relu")
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
    return common.run(sys.modules[__name__], gx, h0, None, w_hh, None, None, lengths=lengths,
                      reverse=reverse, nonlinearity=nonlinearity)
