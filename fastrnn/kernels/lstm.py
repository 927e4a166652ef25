"""LSTM recurrence kernels (forward and backward, both forms), held to fastrnn.reference.lstm.

Dimensions: T time, B batch, H hidden (cell) size, P projection size, H_out = P if P > 0 else H,
G = 4 gates (order i, f, g, o), BLOCK_B batch rows per program, BLOCK_H hidden units per program,
BLOCK_K padded H_out.

Forms (chosen in common.select_form):
    persistent   `_lstm_fwd_persistent_kernel` / `_lstm_bwd_persistent_kernel`: one program per
                 batch tile loops over all T steps with W_hh^T (and W_hr^T) held on chip and h, c
                 in fp32 registers. Wins while 4*H*H_out (+ P*H) padded weights fit one SM:
                 H <= 64 in fp32, H <= 128 in fp16/bf16 (see common.PERSISTENT_WEIGHT_BYTES).
    alternating  per step `common._matmul_kernel` (h_{t-1} W_hh^T) and `_lstm_fwd_step_kernel`
                 (gates of a (batch tile, hidden tile)); with a projection one more product applies
                 W_hr and the variable-length select. Works for every size; the fallback.
Both call `_lstm_step_fwd` / `_lstm_step_bwd`, the step body, so the math exists once.

Backward (per valid step, processing order reversed; dh comes from the output and the next step):
    hp = o*tanh(c_t), h_t = hp W_hr^T:   dhp = dh W_hr,  dW_hr = sum dh^T hp
    do = dhp*tanh(c_t);  dc = dc_next + dhp*o*(1 - tanh(c_t)^2)
    di = dc*g, df = dc*c_{t-1}, dg = dc*i, dc_{t-1} = dc*f
    dgates = (di*i(1-i), df*f(1-f), dg*(1-g^2), do*o(1-o))  (= dgx_t, returned to autograd)
    dh_{t-1} = dgates W_hh;  dW_hh = sum dgates^T h_{t-1} (one GEMM after the loop)
A step outside its sequence passes dh and dc through unchanged and has zero dgates.

Saved for backward (store, not recompute; the reasons are in common.py's header): i, f, g, o and c_t
per step in the I/O dtype. hp = o*tanh(c_t) for dW_hr is recomputed from them after the loop.
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
    _row_valid,
    _sigmoid,
    _step_tile,
    _store_step,
    _tanh,
    _time_index,
)

CELL = "lstm"


@triton.jit
def _lstm_step_fwd(
    gx_ptr,  # (T, B, 4H) input projections, both biases included
    acts_ptr,  # (T, B, 4H) saved activations i, f, g, o (STORE_ACTS)
    cs_ptr,  # (T, B, H) saved cell states, frozen past a sequence's end (STORE_ACTS)
    t,
    B,
    H,
    b_gh_i,
    b_gh_f,
    b_gh_g,
    b_gh_o,
    b_c,
    i_b,
    i_h,
    m_bh,
    m_valid,
    STORE_ACTS: tl.constexpr,
):
    """Gates of one (batch tile, hidden tile) at step t given the fp32 products b_gh_* of
    h_{t-1} W_hh^T and c_{t-1} (b_c). Returns (c_t, hp = o*tanh(c_t)); c_t keeps c_{t-1} in
    rows outside their sequence (m_valid (BLOCK_B, 1))."""
    o_g = t.to(tl.int64) * B * 4 * H + i_b[:, None] * (4 * H) + i_h[None, :]
    p_gx = gx_ptr + o_g
    b_i = _sigmoid(tl.load(p_gx, mask=m_bh, other=0.0).to(tl.float32) + b_gh_i)
    b_f = _sigmoid(tl.load(p_gx + H, mask=m_bh, other=0.0).to(tl.float32) + b_gh_f)
    b_g = _tanh(tl.load(p_gx + 2 * H, mask=m_bh, other=0.0).to(tl.float32) + b_gh_g)
    b_o = _sigmoid(tl.load(p_gx + 3 * H, mask=m_bh, other=0.0).to(tl.float32) + b_gh_o)
    b_c_new = b_f * b_c + b_i * b_g
    b_hp = b_o * _tanh(b_c_new)
    b_c_new = tl.where(m_valid, b_c_new, b_c)
    if STORE_ACTS:
        p_acts = acts_ptr + o_g
        dtype = acts_ptr.dtype.element_ty
        tl.store(p_acts, b_i.to(dtype), mask=m_bh)
        tl.store(p_acts + H, b_f.to(dtype), mask=m_bh)
        tl.store(p_acts + 2 * H, b_g.to(dtype), mask=m_bh)
        tl.store(p_acts + 3 * H, b_o.to(dtype), mask=m_bh)
        o_c = t.to(tl.int64) * B * H + i_b[:, None] * H + i_h[None, :]
        tl.store(cs_ptr + o_c, b_c_new.to(dtype), mask=m_bh)
    return b_c_new, b_hp


@triton.jit
def _lstm_step_bwd(
    acts_ptr,  # (T, B, 4H) saved i, f, g, o
    cs_ptr,  # (T, B, H) saved cell states
    c0_ptr,  # (B, H) initial cell state
    dgx_ptr,  # (T, B, 4H) gate gradients out
    t,
    t_prev,
    T,
    B,
    H,
    b_dhp,
    b_dc,
    i_b,
    i_h,
    m_bh,
    m_valid,
):
    """Gate gradients of one (batch tile, hidden tile) at step t from dhp (gradient of
    o*tanh(c_t)) and dc (gradient of c_t from later steps). Stores dgx_t (zero outside the
    sequence) and returns (dgates i, f, g, o, dc_{t-1}) in fp32."""
    o_g = t.to(tl.int64) * B * 4 * H + i_b[:, None] * (4 * H) + i_h[None, :]
    p_acts = acts_ptr + o_g
    b_i = tl.load(p_acts, mask=m_bh, other=0.0).to(tl.float32)
    b_f = tl.load(p_acts + H, mask=m_bh, other=0.0).to(tl.float32)
    b_g = tl.load(p_acts + 2 * H, mask=m_bh, other=0.0).to(tl.float32)
    b_o = tl.load(p_acts + 3 * H, mask=m_bh, other=0.0).to(tl.float32)
    o_bh = i_b[:, None] * H + i_h[None, :]
    b_c = tl.load(cs_ptr + t.to(tl.int64) * B * H + o_bh, mask=m_bh, other=0.0).to(tl.float32)
    # The first processed step starts from c0; every other from the previous processed step's
    # (frozen) cell state. t_prev is clamped so even the masked-off address stays in bounds.
    # Broadcast t_prev to a row block before comparing: the interpreter mishandles masks built
    # from a scalar predicate.
    t_prev_b = i_b * 0 + t_prev
    m_has_prev = ((t_prev_b >= 0) & (t_prev_b < T))[:, None]
    m_prev = m_bh & m_has_prev
    m_first = m_bh & (m_has_prev == 0)
    t_prev = tl.minimum(tl.maximum(t_prev, 0), T - 1)
    b_c_prev = tl.load(cs_ptr + t_prev.to(tl.int64) * B * H + o_bh, mask=m_prev,
                       other=0.0).to(tl.float32)
    b_c_prev += tl.load(c0_ptr + o_bh, mask=m_first, other=0.0).to(tl.float32)
    b_tc = _tanh(b_c)
    b_dc_t = b_dc + b_dhp * b_o * (1.0 - b_tc * b_tc)
    b_dgi = tl.where(m_valid, b_dc_t * b_g * b_i * (1.0 - b_i), 0.0)
    b_dgf = tl.where(m_valid, b_dc_t * b_c_prev * b_f * (1.0 - b_f), 0.0)
    b_dgg = tl.where(m_valid, b_dc_t * b_i * (1.0 - b_g * b_g), 0.0)
    b_dgo = tl.where(m_valid, b_dhp * b_tc * b_o * (1.0 - b_o), 0.0)
    p_dgx = dgx_ptr + o_g
    dtype = dgx_ptr.dtype.element_ty
    tl.store(p_dgx, b_dgi.to(dtype), mask=m_bh)
    tl.store(p_dgx + H, b_dgf.to(dtype), mask=m_bh)
    tl.store(p_dgx + 2 * H, b_dgg.to(dtype), mask=m_bh)
    tl.store(p_dgx + 3 * H, b_dgo.to(dtype), mask=m_bh)
    b_dc_prev = tl.where(m_valid, b_dc_t * b_f, b_dc)
    return b_dgi, b_dgf, b_dgg, b_dgo, b_dc_prev


@triton.jit
def _lstm_gate_weights(w_hh_ptr, H, H_OUT, o_w, m_w):
    """The i, f, g, o blocks of W_hh (w_hh_ptr: (4H, H_out)) at offsets o_w within a gate, so the
    caller picks the layout (W_g or W_g^T)."""
    b_wi = tl.load(w_hh_ptr + o_w, mask=m_w, other=0.0)
    b_wf = tl.load(w_hh_ptr + H * H_OUT + o_w, mask=m_w, other=0.0)
    b_wg = tl.load(w_hh_ptr + 2 * H * H_OUT + o_w, mask=m_w, other=0.0)
    b_wo = tl.load(w_hh_ptr + 3 * H * H_OUT + o_w, mask=m_w, other=0.0)
    return b_wi, b_wf, b_wg, b_wo


@triton.jit(do_not_specialize=["T"])
def _lstm_fwd_persistent_kernel(
    gx_ptr,  # (T, B, 4H)
    h0_ptr,  # (B, H_out)
    c0_ptr,  # (B, H)
    w_hh_ptr,  # (4H, H_out)
    w_hr_ptr,  # (P, H), P = H_out (HAS_PROJ)
    len_ptr,  # (B,) int64 (HAS_LENGTHS)
    out_ptr,  # (T, B, H_out)
    hn_ptr,  # (B, H_out)
    cn_ptr,  # (B, H)
    acts_ptr,  # (T, B, 4H) (STORE_ACTS)
    cs_ptr,  # (T, B, H) (STORE_ACTS)
    T,
    B,
    H,
    H_OUT,
    HAS_PROJ: tl.constexpr,
    HAS_LENGTHS: tl.constexpr,
    REVERSE: tl.constexpr,
    STORE_ACTS: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    DOT_FP32: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    i_b, i_h, m_b, m_h, m_bh = _persistent_tile(B, H, BLOCK_B, BLOCK_H)
    i_k = tl.arange(0, BLOCK_K)
    m_k = i_k < H_OUT
    m_bk = m_b[:, None] & m_k[None, :]
    # W_hh^T per gate as (BLOCK_K, BLOCK_H) so the step is h (BLOCK_B, K) @ W^T: batch is M >= 16.
    # Padded rows and columns load as 0, which keeps padded hidden units at exactly 0.
    o_w = i_h[None, :] * H_OUT + i_k[:, None]
    m_w = m_k[:, None] & m_h[None, :]
    b_wi, b_wf, b_wg, b_wo = _lstm_gate_weights(w_hh_ptr, H, H_OUT, o_w, m_w)
    if HAS_PROJ:
        b_wr = tl.load(w_hr_ptr + i_k[None, :] * H + i_h[:, None],
                       mask=m_h[:, None] & m_k[None, :], other=0.0)  # W_hr^T (BLOCK_H, BLOCK_K)
    o_bk = i_b[:, None] * H_OUT + i_k[None, :]
    o_bh = i_b[:, None] * H + i_h[None, :]
    b_h = tl.load(h0_ptr + o_bk, mask=m_bk, other=0.0).to(tl.float32)
    b_c = tl.load(c0_ptr + o_bh, mask=m_bh, other=0.0).to(tl.float32)
    b_len = _row_lengths(len_ptr, i_b, m_b, HAS_LENGTHS)
    for s in range(0, T):
        t, m_valid = _time_index(s, T, b_len, m_b, REVERSE, HAS_LENGTHS)
        b_gi = _dot(b_h, b_wi, INPUT_PRECISION, DOT_FP32)
        b_gf = _dot(b_h, b_wf, INPUT_PRECISION, DOT_FP32)
        b_gg = _dot(b_h, b_wg, INPUT_PRECISION, DOT_FP32)
        b_go = _dot(b_h, b_wo, INPUT_PRECISION, DOT_FP32)
        b_c, b_hp = _lstm_step_fwd(gx_ptr, acts_ptr, cs_ptr, t, B, H, b_gi, b_gf, b_gg, b_go, b_c,
                                   i_b, i_h, m_bh, m_valid, STORE_ACTS)
        if HAS_PROJ:
            b_h_new = _dot(b_hp, b_wr, INPUT_PRECISION, DOT_FP32)
        else:
            b_h_new = b_hp
        _store_step(out_ptr, t, B, H_OUT, o_bk, m_bk, b_h_new, m_valid)
        b_h = _keep_finished(m_valid, b_h_new, b_h, HAS_LENGTHS)
    tl.store(hn_ptr + o_bk, b_h.to(hn_ptr.dtype.element_ty), mask=m_bk)
    tl.store(cn_ptr + o_bh, b_c.to(cn_ptr.dtype.element_ty), mask=m_bh)


@triton.jit(do_not_specialize=["T"])
def _lstm_bwd_persistent_kernel(
    acts_ptr,  # (T, B, 4H)
    cs_ptr,  # (T, B, H)
    c0_ptr,  # (B, H)
    w_hh_ptr,  # (4H, H_out)
    w_hr_ptr,  # (P, H) (HAS_PROJ)
    len_ptr,  # (B,) int64 (HAS_LENGTHS)
    dout_ptr,  # (T, B, H_out)
    dhn_ptr,  # (B, H_out)
    dcn_ptr,  # (B, H)
    dgx_ptr,  # (T, B, 4H) out
    dhr_ptr,  # (T, B, P) fp32 out: dh of each valid step, for dW_hr (HAS_PROJ)
    dh0_ptr,  # (B, H_out) out
    dc0_ptr,  # (B, H) out
    T,
    B,
    H,
    H_OUT,
    HAS_PROJ: tl.constexpr,
    HAS_LENGTHS: tl.constexpr,
    REVERSE: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    DOT_FP32: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    i_b, i_h, m_b, m_h, m_bh = _persistent_tile(B, H, BLOCK_B, BLOCK_H)
    i_k = tl.arange(0, BLOCK_K)
    m_k = i_k < H_OUT
    m_bk = m_b[:, None] & m_k[None, :]
    # W_hh per gate as (BLOCK_H, BLOCK_K): dh_{t-1} = dgates (BLOCK_B, H) @ W_g.
    o_w = i_h[:, None] * H_OUT + i_k[None, :]
    m_w = m_h[:, None] & m_k[None, :]
    b_wi, b_wf, b_wg, b_wo = _lstm_gate_weights(w_hh_ptr, H, H_OUT, o_w, m_w)
    if HAS_PROJ:
        b_wr = tl.load(w_hr_ptr + i_k[:, None] * H + i_h[None, :],
                       mask=m_k[:, None] & m_h[None, :], other=0.0)  # W_hr (BLOCK_K, BLOCK_H)
    o_bk = i_b[:, None] * H_OUT + i_k[None, :]
    o_bh = i_b[:, None] * H + i_h[None, :]
    b_dh = tl.load(dhn_ptr + o_bk, mask=m_bk, other=0.0).to(tl.float32)
    b_dc = tl.load(dcn_ptr + o_bh, mask=m_bh, other=0.0).to(tl.float32)
    b_len = _row_lengths(len_ptr, i_b, m_b, HAS_LENGTHS)
    for s in range(0, T):
        j = T - 1 - s  # index of this step in forward processing order
        # Not _time_index: t_prev beside t, before the mask, spills less at H = 128 (aot).
        if REVERSE:
            t = T - 1 - j
            t_prev = t + 1
        else:
            t = j
            t_prev = t - 1
        m_valid = _row_valid(b_len, t, m_b, HAS_LENGTHS)[:, None]
        b_dht = _add_dout(b_dh, dout_ptr, t, B, H_OUT, o_bk, m_bk)
        if HAS_PROJ:
            _store_step(dhr_ptr, t, B, H_OUT, o_bk, m_bk, b_dht, m_valid)
            b_dhp = _dot(b_dht, b_wr, INPUT_PRECISION, DOT_FP32)
        else:
            b_dhp = b_dht
        b_dgi, b_dgf, b_dgg, b_dgo, b_dc = _lstm_step_bwd(
            acts_ptr, cs_ptr, c0_ptr, dgx_ptr, t, t_prev, T, B, H, b_dhp, b_dc, i_b, i_h, m_bh,
            m_valid)
        b_dh_new = _dot(b_dgi, b_wi, INPUT_PRECISION, DOT_FP32)
        b_dh_new += _dot(b_dgf, b_wf, INPUT_PRECISION, DOT_FP32)
        b_dh_new += _dot(b_dgg, b_wg, INPUT_PRECISION, DOT_FP32)
        b_dh_new += _dot(b_dgo, b_wo, INPUT_PRECISION, DOT_FP32)
        b_dh = _keep_finished(m_valid, b_dh_new, b_dh, HAS_LENGTHS)
    tl.store(dh0_ptr + o_bk, b_dh.to(dh0_ptr.dtype.element_ty), mask=m_bk)
    tl.store(dc0_ptr + o_bh, b_dc.to(dc0_ptr.dtype.element_ty), mask=m_bh)


@triton.jit(do_not_specialize=["t"])
def _lstm_fwd_step_kernel(
    gx_ptr,  # (T, B, 4H)
    gh_ptr,  # (B, 4H) fp32: h_{t-1} W_hh^T
    c_ptr,  # (B, H) fp32 cell state, updated in place
    h_ptr,  # (B, H) fp32 h_{t-1} (without projection)
    hn_ptr,  # (B, H) fp32: h_t state (without projection) or hp = o*tanh(c_t) (HAS_PROJ)
    out_ptr,  # (T, B, H) (without projection)
    acts_ptr,  # (T, B, 4H) (STORE_ACTS)
    cs_ptr,  # (T, B, H) (STORE_ACTS)
    len_ptr,  # (B,) int64 (HAS_LENGTHS)
    t,
    B,
    H,
    HAS_PROJ: tl.constexpr,
    HAS_LENGTHS: tl.constexpr,
    STORE_ACTS: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    i_b, i_h, _, m_bh, o_bh, m_valid = _step_tile(len_ptr, t, B, H, HAS_LENGTHS, BLOCK_B, BLOCK_H)
    o_gh = i_b[:, None] * (4 * H) + i_h[None, :]
    b_gi = tl.load(gh_ptr + o_gh, mask=m_bh, other=0.0)
    b_gf = tl.load(gh_ptr + H + o_gh, mask=m_bh, other=0.0)
    b_gg = tl.load(gh_ptr + 2 * H + o_gh, mask=m_bh, other=0.0)
    b_go = tl.load(gh_ptr + 3 * H + o_gh, mask=m_bh, other=0.0)
    b_c = tl.load(c_ptr + o_bh, mask=m_bh, other=0.0)
    b_c, b_hp = _lstm_step_fwd(gx_ptr, acts_ptr, cs_ptr, t, B, H, b_gi, b_gf, b_gg, b_go, b_c,
                               i_b, i_h, m_bh, m_valid, STORE_ACTS)
    tl.store(c_ptr + o_bh, b_c, mask=m_bh)
    if HAS_PROJ:
        tl.store(hn_ptr + o_bh, b_hp, mask=m_bh)
    else:
        b_h = tl.load(h_ptr + o_bh, mask=m_bh, other=0.0)
        tl.store(hn_ptr + o_bh, tl.where(m_valid, b_hp, b_h), mask=m_bh)
        _store_step(out_ptr, t, B, H, o_bh, m_bh, b_hp, m_valid)


@triton.jit(do_not_specialize=["t", "t_prev", "T"])
def _lstm_bwd_step_kernel(
    acts_ptr,  # (T, B, 4H)
    cs_ptr,  # (T, B, H)
    c0_ptr,  # (B, H)
    dh_ptr,  # (B, H) fp32 dh carried from later steps (without projection)
    dout_ptr,  # (T, B, H) (without projection)
    dhp_ptr,  # (B, H) fp32 gradient of o*tanh(c_t) (HAS_PROJ)
    dc_ptr,  # (B, H) fp32 dc carry, updated in place
    dgx_ptr,  # (T, B, 4H) out
    len_ptr,  # (B,) int64 (HAS_LENGTHS)
    t,
    t_prev,
    T,
    B,
    H,
    HAS_PROJ: tl.constexpr,
    HAS_LENGTHS: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    i_b, i_h, _, m_bh, o_bh, m_valid = _step_tile(len_ptr, t, B, H, HAS_LENGTHS, BLOCK_B, BLOCK_H)
    if HAS_PROJ:
        b_dhp = tl.load(dhp_ptr + o_bh, mask=m_bh, other=0.0)
    else:
        b_dhp = tl.load(dh_ptr + o_bh, mask=m_bh, other=0.0)
        b_dhp = _add_dout(b_dhp, dout_ptr, t, B, H, o_bh, m_bh)
    b_dc = tl.load(dc_ptr + o_bh, mask=m_bh, other=0.0)
    _, _, _, _, b_dc = _lstm_step_bwd(acts_ptr, cs_ptr, c0_ptr, dgx_ptr, t, t_prev, T, B, H, b_dhp,
                                      b_dc, i_b, i_h, m_bh, m_valid)
    tl.store(dc_ptr + o_bh, b_dc, mask=m_bh)


def _persistent_launch(pb):
    """common.persistent_launch plus BLOCK_K = padded H_out."""
    grid, meta = common.persistent_launch(pb)
    return grid, {**meta, "BLOCK_K": common.pad(pb.h_out)}


def forward(pb, store):
    """Launch the forward; returns ((output, h_n, c_n), saved tensors for backward)."""
    steps, batch, hidden, h_out = pb.steps, pb.batch, pb.hidden, pb.h_out
    gx = pb.gx
    out = common.empty((steps, batch, h_out), gx)
    acts = common.empty((steps, batch, 4 * hidden), gx) if store else gx
    cs = common.empty((steps, batch, hidden), gx) if store else gx
    lengths = gx if pb.lengths is None else pb.lengths
    w_hr = pb.w_hh if pb.w_hr is None else pb.w_hr
    if pb.form == "persistent":
        h_n = common.empty((batch, h_out), gx)
        c_n = common.empty((batch, hidden), gx)
        grid, meta = _persistent_launch(pb)
        _lstm_fwd_persistent_kernel[grid](
            gx, pb.h0, pb.c0, pb.w_hh, w_hr, lengths, out, h_n, c_n, acts, cs,
            steps, batch, hidden, h_out,
            HAS_PROJ=pb.w_hr is not None, HAS_LENGTHS=pb.lengths is not None,
            REVERSE=pb.reverse, STORE_ACTS=store, **meta,
        )
    else:
        f32 = torch.float32
        h_state = common.empty((2, batch, h_out), gx, f32)
        h_state[0] = pb.h0
        c_state = pb.c0.to(f32, copy=True)
        gh = common.empty((batch, 4 * hidden), gx, f32)
        hp = common.empty((batch, hidden), gx, f32) if pb.w_hr is not None else h_state[0]
        grid, meta = common.step_launch(pb)
        for s in range(steps):
            t = common.time_index(s, steps, pb.reverse)
            cur, nxt = h_state[s % 2], h_state[(s + 1) % 2]
            common.step_product(cur, pb.w_hh, gh, transpose_w=True)
            _lstm_fwd_step_kernel[grid](
                gx, gh, c_state, cur, hp if pb.w_hr is not None else nxt, out, acts, cs, lengths,
                t, batch, hidden,
                HAS_PROJ=pb.w_hr is not None, HAS_LENGTHS=pb.lengths is not None,
                STORE_ACTS=store, **meta,
            )
            if pb.w_hr is not None:
                common.step_product(hp, pb.w_hr, nxt, transpose_w=True, t=t, lengths=pb.lengths,
                                    old=cur, y=out[t])
        h_n = h_state[steps % 2].to(gx.dtype)
        c_n = c_state.to(gx.dtype)
    return (out, h_n, c_n), ((acts, cs) if store else ())


def backward(pb, saved, outputs, grads):
    """Launch the backward; returns (dgx, dh0, dc0, dw_hh, dw_hr, None)."""
    acts, cs = saved
    out = outputs[0]
    dout, dh_n, dc_n = grads
    steps, batch, hidden, h_out = pb.steps, pb.batch, pb.hidden, pb.h_out
    gx = pb.gx
    f32 = torch.float32
    has_proj = pb.w_hr is not None
    lengths = gx if pb.lengths is None else pb.lengths
    dgx = common.empty(gx.shape, gx)
    dhr = common.empty((steps, batch, h_out), gx, f32) if has_proj else dgx
    if pb.form == "persistent":
        dh0 = common.empty((batch, h_out), gx)
        dc0 = common.empty((batch, hidden), gx)
        grid, meta = _persistent_launch(pb)
        _lstm_bwd_persistent_kernel[grid](
            acts, cs, pb.c0, pb.w_hh, pb.w_hh if pb.w_hr is None else pb.w_hr, lengths, dout,
            dh_n, dc_n, dgx, dhr, dh0, dc0, steps, batch, hidden, h_out,
            HAS_PROJ=has_proj, HAS_LENGTHS=pb.lengths is not None, REVERSE=pb.reverse, **meta,
        )
    else:
        dh_state = common.empty((2, batch, h_out), gx, f32)
        dh_state[0] = dh_n
        dc_state = dc_n.to(f32, copy=True)
        dhp = common.empty((batch, hidden), gx, f32) if has_proj else dc_state
        masks = None if pb.lengths is None else (
            torch.arange(steps, device=gx.device).unsqueeze(1) < pb.lengths).unsqueeze(2)
        grid, meta = common.step_launch(pb)
        for k, s in enumerate(range(steps - 1, -1, -1)):
            t = common.time_index(s, steps, pb.reverse)
            t_prev = t + 1 if pb.reverse else t - 1
            cur, nxt = dh_state[k % 2], dh_state[(k + 1) % 2]
            if has_proj:
                # dh of the step: carried dh plus the output's gradient, only inside the sequence.
                torch.add(cur, dout[t], out=dhr[t])
                if masks is not None:
                    dhr[t].masked_fill_(~masks[t], 0.0)
                common.step_product(dhr[t], pb.w_hr, dhp, transpose_w=False)
            _lstm_bwd_step_kernel[grid](
                acts, cs, pb.c0, cur, dout, dhp, dc_state, dgx, lengths, t, t_prev, steps,
                batch, hidden, HAS_PROJ=has_proj, HAS_LENGTHS=pb.lengths is not None, **meta,
            )
            common.step_product(dgx[t], pb.w_hh, nxt, transpose_w=False, t=t,
                                lengths=pb.lengths, old=cur)
        dh0 = dh_state[steps % 2].to(gx.dtype)
        dc0 = dc_state.to(gx.dtype)
    h_prev = common.previous_hidden(out, pb.h0, pb.lengths, pb.reverse)
    dw_hh = common.weight_grad(dgx, h_prev)
    dw_hr = None
    if has_proj:
        # hp = o*tanh(c_t) is recomputed from the saved activations instead of being stored.
        hp = acts[..., 3 * hidden:].to(f32) * torch.tanh(cs.to(f32))
        dw_hr = common.weight_grad(dhr, hp).to(gx.dtype)
    return dgx, dh0, dc0, dw_hh, dw_hr, None


def lstm_recurrence(gx, h0, c0, w_hh, w_hr=None, lengths=None, reverse=False):
    """Run the LSTM recurrence over precomputed input projections with the Triton kernels.

    Same contract as fastrnn.reference.lstm_recurrence.

    Args:
        gx: (T, B, 4H) = x @ W_ih^T + b_ih + b_hh.  h0: (B, H_out).  c0: (B, H).
        w_hh: (4H, H_out).  w_hr: (P, H) or None.
        lengths: optional (B,) int64 on gx's device, each in [1, T].  reverse: run backwards.
    Returns:
        output (T, B, H_out), h_n (B, H_out), c_n (B, H).

    Example:
        >>> out, h, c = fastrnn.kernels.lstm_recurrence(gx, h0, c0, w_hh)
    """
    return common.run(sys.modules[__name__], gx, h0, c0, w_hh, w_hr, None, lengths=lengths,
                      reverse=reverse)
