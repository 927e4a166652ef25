"""GRU recurrence kernels (forward and backward, both forms), held to fastrnn.reference.gru.

Dimensions: T time, B batch, H hidden size, G = 3 gates (order r, z, n), BLOCK_B batch rows per
program, BLOCK_H hidden units per program (padded H in the persistent form).

Forms (chosen in common.select_form):
    persistent   `_gru_fwd_persistent_kernel` / `_gru_bwd_persistent_kernel`: one program per batch
                 tile loops over all T steps with W_hh^T on chip and h in fp32 registers. Wins while
                 3*H*H padded weights fit one SM: roughly H <= 128 in fp16/bf16 and H <= 64 in fp32
                 (see common.PERSISTENT_WEIGHT_BYTES).
    alternating  per step `common._matmul_kernel` (h_{t-1} W_hh^T) and `_gru_fwd_step_kernel`.
                 Works for every size; the fallback.
Both call `_gru_step_fwd` / `_gru_step_bwd`, the step body.

b_hh stays out of gx: b_hn is multiplied by r. The kernel adds it to the recurrent product.

Backward (per valid step; gh = h_{t-1} W_hh^T + b_hh):
    dn = dh*(1-z), dz = dh*(h_{t-1} - n), dn_pre = dn*(1-n^2)
    dr_pre = dn_pre*gh_n*r(1-r), dz_pre = dz*z(1-z)
    dgx = (dr_pre, dz_pre, dn_pre)   dgh = (dr_pre, dz_pre, dn_pre*r)
    dh_{t-1} = dh*z + dgh W_hh;  dW_hh = sum dgh^T h_{t-1};  db_hh = sum dgh (after the loop)
Saved for backward (store, not recompute; the reasons are in common.py's header): r, z, n and gh_n
(4H per step, I/O dtype); h_{t-1} is rebuilt from the output (common.previous_hidden).
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
    _sigmoid,
    _step_tile,
    _store_step,
    _tanh,
    _time_index,
)

CELL = "gru"


@triton.jit
def _gru_step_fwd(
    gx_ptr,  # (T, B, 3H) input projections, b_ih included
    acts_ptr,  # (T, B, 4H) saved r, z, n, gh_n (STORE_ACTS)
    t,
    B,
    H,
    b_gh_r,
    b_gh_z,
    b_gh_n,
    b_h,
    i_b,
    i_h,
    m_bh,
    STORE_ACTS: tl.constexpr,
):
    """h_t of one (batch tile, hidden tile) from the fp32 products b_gh_* = h_{t-1} W_hh^T + b_hh
    and h_{t-1} (b_h); the caller applies the variable-length select."""
    o_g = t.to(tl.int64) * B * 3 * H + i_b[:, None] * (3 * H) + i_h[None, :]
    p_gx = gx_ptr + o_g
    b_r = _sigmoid(tl.load(p_gx, mask=m_bh, other=0.0).to(tl.float32) + b_gh_r)
    b_z = _sigmoid(tl.load(p_gx + H, mask=m_bh, other=0.0).to(tl.float32) + b_gh_z)
    b_n = _tanh(tl.load(p_gx + 2 * H, mask=m_bh, other=0.0).to(tl.float32) + b_r * b_gh_n)
    if STORE_ACTS:
        p_acts = acts_ptr + t.to(tl.int64) * B * 4 * H + i_b[:, None] * (4 * H) + i_h[None, :]
        dtype = acts_ptr.dtype.element_ty
        tl.store(p_acts, b_r.to(dtype), mask=m_bh)
        tl.store(p_acts + H, b_z.to(dtype), mask=m_bh)
        tl.store(p_acts + 2 * H, b_n.to(dtype), mask=m_bh)
        tl.store(p_acts + 3 * H, b_gh_n.to(dtype), mask=m_bh)
    return b_n + b_z * (b_h - b_n)


@triton.jit
def _gru_step_bwd(
    acts_ptr,  # (T, B, 4H) saved r, z, n, gh_n
    hprev_ptr,  # (T, B, H) the state each step started from
    dgx_ptr,  # (T, B, 3H) out
    dgh_ptr,  # (T, B, 3H) out: gradient of h_{t-1} W_hh^T + b_hh
    t,
    B,
    H,
    b_dh,
    i_b,
    i_h,
    m_bh,
    m_valid,
):
    """Gate gradients of one tile at step t from dh (output gradient plus carry). Stores dgx_t and
    dgh_t (zero outside the sequence); returns (dgh r, z, n, dh*z) in fp32."""
    p_acts = acts_ptr + t.to(tl.int64) * B * 4 * H + i_b[:, None] * (4 * H) + i_h[None, :]
    b_r = tl.load(p_acts, mask=m_bh, other=0.0).to(tl.float32)
    b_z = tl.load(p_acts + H, mask=m_bh, other=0.0).to(tl.float32)
    b_n = tl.load(p_acts + 2 * H, mask=m_bh, other=0.0).to(tl.float32)
    b_ghn = tl.load(p_acts + 3 * H, mask=m_bh, other=0.0).to(tl.float32)
    p_hprev = hprev_ptr + t.to(tl.int64) * B * H + i_b[:, None] * H + i_h[None, :]
    b_hprev = tl.load(p_hprev, mask=m_bh, other=0.0).to(tl.float32)
    b_dgn = b_dh * (1.0 - b_z) * (1.0 - b_n * b_n)
    b_dgr = tl.where(m_valid, b_dgn * b_ghn * b_r * (1.0 - b_r), 0.0)
    b_dgz = tl.where(m_valid, b_dh * (b_hprev - b_n) * b_z * (1.0 - b_z), 0.0)
    b_dgn = tl.where(m_valid, b_dgn, 0.0)
    b_dghn = b_dgn * b_r
    o_g = t.to(tl.int64) * B * 3 * H + i_b[:, None] * (3 * H) + i_h[None, :]
    dtype = dgx_ptr.dtype.element_ty
    tl.store(dgx_ptr + o_g, b_dgr.to(dtype), mask=m_bh)
    tl.store(dgx_ptr + o_g + H, b_dgz.to(dtype), mask=m_bh)
    tl.store(dgx_ptr + o_g + 2 * H, b_dgn.to(dtype), mask=m_bh)
    tl.store(dgh_ptr + o_g, b_dgr.to(dtype), mask=m_bh)
    tl.store(dgh_ptr + o_g + H, b_dgz.to(dtype), mask=m_bh)
    tl.store(dgh_ptr + o_g + 2 * H, b_dghn.to(dtype), mask=m_bh)
    return b_dgr, b_dgz, b_dghn, b_dh * b_z


@triton.jit
def _gru_gate_weights(w_hh_ptr, H, o_w, m_w):
    """The r, z, n blocks of W_hh (w_hh_ptr: (3H, H)) at offsets o_w within a gate, so the caller
    picks the layout (W_g or W_g^T)."""
    b_wr = tl.load(w_hh_ptr + o_w, mask=m_w, other=0.0)
    b_wz = tl.load(w_hh_ptr + H * H + o_w, mask=m_w, other=0.0)
    b_wn = tl.load(w_hh_ptr + 2 * H * H + o_w, mask=m_w, other=0.0)
    return b_wr, b_wz, b_wn


@triton.jit
def _gru_gate_bias(b_hh_ptr, H, i_h, m_h):
    """The r, z, n parts of b_hh (b_hh_ptr: (3H,)) at hidden units i_h as fp32 (1, BLOCK_H) rows."""
    b_br = tl.load(b_hh_ptr + i_h, mask=m_h, other=0.0).to(tl.float32)[None, :]
    b_bz = tl.load(b_hh_ptr + H + i_h, mask=m_h, other=0.0).to(tl.float32)[None, :]
    b_bn = tl.load(b_hh_ptr + 2 * H + i_h, mask=m_h, other=0.0).to(tl.float32)[None, :]
    return b_br, b_bz, b_bn


@triton.jit(do_not_specialize=["T"])
def _gru_fwd_persistent_kernel(
    gx_ptr,  # (T, B, 3H)
    h0_ptr,  # (B, H)
    w_hh_ptr,  # (3H, H)
    b_hh_ptr,  # (3H,) (HAS_BIAS)
    len_ptr,  # (B,) int64 (HAS_LENGTHS)
    out_ptr,  # (T, B, H)
    hn_ptr,  # (B, H)
    acts_ptr,  # (T, B, 4H) (STORE_ACTS)
    T,
    B,
    H,
    HAS_BIAS: tl.constexpr,
    HAS_LENGTHS: tl.constexpr,
    REVERSE: tl.constexpr,
    STORE_ACTS: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    DOT_FP32: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    i_b, i_h, m_b, m_h, m_bh = _persistent_tile(B, H, BLOCK_B, BLOCK_H)
    # W_hh^T per gate (BLOCK_H in, BLOCK_H out): h (BLOCK_B, H) @ W^T keeps batch as M >= 16.
    o_w = i_h[None, :] * H + i_h[:, None]
    m_w = m_h[:, None] & m_h[None, :]
    b_wr, b_wz, b_wn = _gru_gate_weights(w_hh_ptr, H, o_w, m_w)
    if HAS_BIAS:
        b_br, b_bz, b_bn = _gru_gate_bias(b_hh_ptr, H, i_h, m_h)
    o_bh = i_b[:, None] * H + i_h[None, :]
    b_h = tl.load(h0_ptr + o_bh, mask=m_bh, other=0.0).to(tl.float32)
    b_len = _row_lengths(len_ptr, i_b, m_b, HAS_LENGTHS)
    for s in range(0, T):
        t, m_valid = _time_index(s, T, b_len, m_b, REVERSE, HAS_LENGTHS)
        b_gr = _dot(b_h, b_wr, INPUT_PRECISION, DOT_FP32)
        b_gz = _dot(b_h, b_wz, INPUT_PRECISION, DOT_FP32)
        b_gn = _dot(b_h, b_wn, INPUT_PRECISION, DOT_FP32)
        if HAS_BIAS:
            b_gr += b_br
            b_gz += b_bz
            b_gn += b_bn
        b_h_new = _gru_step_fwd(gx_ptr, acts_ptr, t, B, H, b_gr, b_gz, b_gn, b_h, i_b, i_h, m_bh,
                                STORE_ACTS)
        _store_step(out_ptr, t, B, H, o_bh, m_bh, b_h_new, m_valid)
        b_h = _keep_finished(m_valid, b_h_new, b_h, HAS_LENGTHS)
    tl.store(hn_ptr + o_bh, b_h.to(hn_ptr.dtype.element_ty), mask=m_bh)


@triton.jit(do_not_specialize=["T"])
def _gru_bwd_persistent_kernel(
    acts_ptr,  # (T, B, 4H)
    hprev_ptr,  # (T, B, H)
    w_hh_ptr,  # (3H, H)
    len_ptr,  # (B,) int64 (HAS_LENGTHS)
    dout_ptr,  # (T, B, H)
    dhn_ptr,  # (B, H)
    dgx_ptr,  # (T, B, 3H) out
    dgh_ptr,  # (T, B, 3H) out
    dh0_ptr,  # (B, H) out
    T,
    B,
    H,
    HAS_LENGTHS: tl.constexpr,
    REVERSE: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    DOT_FP32: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    i_b, i_h, m_b, m_h, m_bh = _persistent_tile(B, H, BLOCK_B, BLOCK_H)
    # W_hh per gate (BLOCK_H gate rows, BLOCK_H state columns): dh_{t-1} = dgh @ W_g.
    o_w = i_h[:, None] * H + i_h[None, :]
    m_w = m_h[:, None] & m_h[None, :]
    b_wr, b_wz, b_wn = _gru_gate_weights(w_hh_ptr, H, o_w, m_w)
    o_bh = i_b[:, None] * H + i_h[None, :]
    b_dh = tl.load(dhn_ptr + o_bh, mask=m_bh, other=0.0).to(tl.float32)
    b_len = _row_lengths(len_ptr, i_b, m_b, HAS_LENGTHS)
    for s in range(0, T):
        j = T - 1 - s  # index of this step in forward processing order
        t, m_valid = _time_index(j, T, b_len, m_b, REVERSE, HAS_LENGTHS)
        b_dht = _add_dout(b_dh, dout_ptr, t, B, H, o_bh, m_bh)
        b_dgr, b_dgz, b_dgn, b_dh_new = _gru_step_bwd(acts_ptr, hprev_ptr, dgx_ptr, dgh_ptr, t, B,
                                                      H, b_dht, i_b, i_h, m_bh, m_valid)
        b_dh_new += _dot(b_dgr, b_wr, INPUT_PRECISION, DOT_FP32)
        b_dh_new += _dot(b_dgz, b_wz, INPUT_PRECISION, DOT_FP32)
        b_dh_new += _dot(b_dgn, b_wn, INPUT_PRECISION, DOT_FP32)
        b_dh = _keep_finished(m_valid, b_dh_new, b_dh, HAS_LENGTHS)
    tl.store(dh0_ptr + o_bh, b_dh.to(dh0_ptr.dtype.element_ty), mask=m_bh)


@triton.jit(do_not_specialize=["t"])
def _gru_fwd_step_kernel(
    gx_ptr,  # (T, B, 3H)
    gh_ptr,  # (B, 3H) fp32: h_{t-1} W_hh^T
    b_hh_ptr,  # (3H,) (HAS_BIAS)
    h_ptr,  # (B, H) fp32 h_{t-1}
    hn_ptr,  # (B, H) fp32 h_t out
    out_ptr,  # (T, B, H)
    acts_ptr,  # (T, B, 4H) (STORE_ACTS)
    len_ptr,  # (B,) int64 (HAS_LENGTHS)
    t,
    B,
    H,
    HAS_BIAS: tl.constexpr,
    HAS_LENGTHS: tl.constexpr,
    STORE_ACTS: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    i_b, i_h, m_h, m_bh, o_bh, m_valid = _step_tile(len_ptr, t, B, H, HAS_LENGTHS, BLOCK_B,
                                                    BLOCK_H)
    o_gh = i_b[:, None] * (3 * H) + i_h[None, :]
    b_gr = tl.load(gh_ptr + o_gh, mask=m_bh, other=0.0)
    b_gz = tl.load(gh_ptr + H + o_gh, mask=m_bh, other=0.0)
    b_gn = tl.load(gh_ptr + 2 * H + o_gh, mask=m_bh, other=0.0)
    if HAS_BIAS:
        b_br, b_bz, b_bn = _gru_gate_bias(b_hh_ptr, H, i_h, m_h)
        b_gr += b_br
        b_gz += b_bz
        b_gn += b_bn
    b_h = tl.load(h_ptr + o_bh, mask=m_bh, other=0.0)
    b_h_new = _gru_step_fwd(gx_ptr, acts_ptr, t, B, H, b_gr, b_gz, b_gn, b_h, i_b, i_h, m_bh,
                            STORE_ACTS)
    tl.store(hn_ptr + o_bh, tl.where(m_valid, b_h_new, b_h), mask=m_bh)
    _store_step(out_ptr, t, B, H, o_bh, m_bh, b_h_new, m_valid)


@triton.jit(do_not_specialize=["t"])
def _gru_bwd_step_kernel(
    acts_ptr,  # (T, B, 4H)
    hprev_ptr,  # (T, B, H)
    dh_ptr,  # (B, H) fp32 dh carried from later steps
    dout_ptr,  # (T, B, H)
    dgx_ptr,  # (T, B, 3H) out
    dgh_ptr,  # (T, B, 3H) out
    e_ptr,  # (B, H) fp32 out: dh*z, the direct part of dh_{t-1}
    len_ptr,  # (B,) int64 (HAS_LENGTHS)
    t,
    B,
    H,
    HAS_LENGTHS: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    i_b, i_h, _, m_bh, o_bh, m_valid = _step_tile(len_ptr, t, B, H, HAS_LENGTHS, BLOCK_B, BLOCK_H)
    b_dh = tl.load(dh_ptr + o_bh, mask=m_bh, other=0.0)
    b_dh = _add_dout(b_dh, dout_ptr, t, B, H, o_bh, m_bh)
    _, _, _, b_direct = _gru_step_bwd(acts_ptr, hprev_ptr, dgx_ptr, dgh_ptr, t, B, H, b_dh, i_b,
                                      i_h, m_bh, m_valid)
    tl.store(e_ptr + o_bh, b_direct, mask=m_bh)


def forward(pb, store):
    """Launch the forward; returns ((output, h_n), saved tensors for backward)."""
    steps, batch, hidden = pb.steps, pb.batch, pb.hidden
    gx = pb.gx
    out = common.empty((steps, batch, hidden), gx)
    acts = common.empty((steps, batch, 4 * hidden), gx) if store else gx
    lengths = gx if pb.lengths is None else pb.lengths
    b_hh = gx if pb.b_hh is None else pb.b_hh
    flags = {"HAS_BIAS": pb.b_hh is not None, "HAS_LENGTHS": pb.lengths is not None,
             "STORE_ACTS": store}
    if pb.form == "persistent":
        h_n = common.empty((batch, hidden), gx)
        grid, meta = common.persistent_launch(pb)
        _gru_fwd_persistent_kernel[grid](
            gx, pb.h0, pb.w_hh, b_hh, lengths, out, h_n, acts, steps, batch, hidden,
            REVERSE=pb.reverse, **flags, **meta,
        )
    else:
        f32 = torch.float32
        h_state = common.empty((2, batch, hidden), gx, f32)
        h_state[0] = pb.h0
        gh = common.empty((batch, 3 * hidden), gx, f32)
        grid, meta = common.step_launch(pb)
        for s in range(steps):
            t = common.time_index(s, steps, pb.reverse)
            cur, nxt = h_state[s % 2], h_state[(s + 1) % 2]
            common.step_product(cur, pb.w_hh, gh, transpose_w=True)
            _gru_fwd_step_kernel[grid](gx, gh, b_hh, cur, nxt, out, acts, lengths, t, batch,
                                       hidden, **flags, **meta)
        h_n = h_state[steps % 2].to(gx.dtype)
    return (out, h_n), ((acts,) if store else ())


def backward(pb, saved, outputs, grads):
    """Launch the backward; returns (dgx, dh0, None, dw_hh, None, db_hh)."""
    (acts,) = saved
    out = outputs[0]
    dout, dh_n = grads
    steps, batch, hidden = pb.steps, pb.batch, pb.hidden
    gx = pb.gx
    lengths = gx if pb.lengths is None else pb.lengths
    h_prev = common.previous_hidden(out, pb.h0, pb.lengths, pb.reverse)
    dgx = common.empty(gx.shape, gx)
    dgh = common.empty(gx.shape, gx)
    if pb.form == "persistent":
        dh0 = common.empty((batch, hidden), gx)
        grid, meta = common.persistent_launch(pb)
        _gru_bwd_persistent_kernel[grid](
            acts, h_prev, pb.w_hh, lengths, dout, dh_n, dgx, dgh, dh0, steps, batch, hidden,
            HAS_LENGTHS=pb.lengths is not None, REVERSE=pb.reverse, **meta,
        )
    else:
        f32 = torch.float32
        dh_state = common.empty((2, batch, hidden), gx, f32)
        dh_state[0] = dh_n
        direct = common.empty((batch, hidden), gx, f32)
        grid, meta = common.step_launch(pb)
        for k, s in enumerate(range(steps - 1, -1, -1)):
            t = common.time_index(s, steps, pb.reverse)
            cur, nxt = dh_state[k % 2], dh_state[(k + 1) % 2]
            _gru_bwd_step_kernel[grid](acts, h_prev, cur, dout, dgx, dgh, direct, lengths, t,
                                       batch, hidden, HAS_LENGTHS=pb.lengths is not None, **meta)
            common.step_product(dgh[t], pb.w_hh, nxt, transpose_w=False, t=t,
                                lengths=pb.lengths, old=cur, extra=direct)
        dh0 = dh_state[steps % 2].to(gx.dtype)
    dw_hh = common.weight_grad(dgh, h_prev)
    db_hh = None
    if pb.b_hh is not None:
        db_hh = dgh.sum(dim=(0, 1), dtype=torch.float32).to(gx.dtype)
    return dgx, dh0, None, dw_hh, None, db_hh


def gru_recurrence(gx, h0, w_hh, b_hh=None, lengths=None, reverse=False):
    """Run the GRU recurrence over precomputed input projections with the Triton kernels.

    Same contract as fastrnn.reference.gru_recurrence.

    Args:
        gx: (T, B, 3H) = x @ W_ih^T + b_ih.  h0: (B, H).  w_hh: (3H, H).  b_hh: (3H,) or None.
        lengths: optional (B,) int64 on gx's device, each in [1, T].  reverse: run backwards.
    Returns:
        output (T, B, H), h_n (B, H).

    Example:
        >>> out, h = fastrnn.kernels.gru_recurrence(gx, h0, w_hh, b_hh)
    """
    return common.run(sys.modules[__name__], gx, h0, None, w_hh, None, b_hh, lengths=lengths,
                      reverse=reverse)
