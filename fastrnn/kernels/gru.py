"""GRU recurrence kernels (forward and backward, every form), held to fastrnn.reference.gru.

Dimensions: T time, B batch, H hidden size, G = 3 gates (order r, z, n). A program owns BLOCK_B
batch rows and BLOCK_H hidden units with all three gates (BLOCK_O = BLOCK_H: its columns of h);
BLOCK_HF = BLOCK_K is the padded H, BLOCK_KC the K extent a streamed (stepwise) product stages.
The forms (persistent: LOCAL, cooperative: SYNC, stepwise: STEPWISE) are described in lstm.py.

b_hh stays out of gx: b_hn is multiplied by r. The kernel adds it to the recurrent product.

The cooperative and stepwise forms must agree bit for bit (tests/test_kernels_gpu.py), but with FP
fusion on, the compiler contracts a multiply and an add into one fma (one rounding) only where it
sees both in one basic block, and stepwise's chunk loop is a real loop where cooperative's is
unrolled. So every product over K accumulates from zero in the same order in every form, the terms
outside it (b_hh, dh*z) join after the loop, and the cell's multiply-adds are explicit tl.fma: the
rounding depends neither on where the blocks fall nor on Triton's FP-fusion default.

Forward step: gh = h_{t-1} W_hh^T + b_hh for the program's units; r, z, n; h_t = n + z(h_{t-1} - n),
stored to out[t], which is also the exchange buffer.
Backward step (gh = h_{t-1} W_hh^T + b_hh):
    A  dn = dh*(1-z), dz = dh*(h_{t-1} - n), dn_pre = dn*(1-n^2)
       dr_pre = dn_pre*gh_n*r(1-r), dz_pre = dz*z(1-z)
       dgx = (dr_pre, dz_pre, dn_pre)   dgh = (dr_pre, dz_pre, dn_pre*r) -> dgh[t], the exchange
    B  dh_{t-1} = dh*z + dgh W_hh (every program's dgh)
    dW_hh = sum dgh^T h_{t-1} and db_hh = sum dgh after the loop.
Saved for backward (store, not recompute; launch.py says why): r, z, n and gh_n (4H per step, I/O
dtype); h_{t-1} is rebuilt from the output (launch.previous_hidden).
"""

import sys

import torch
import triton
import triton.language as tl

from fastrnn.kernels import forms, launch
from fastrnn.kernels.jit import (
    _add_dout,
    _chunk_mm,
    _keep_finished,
    _load_previous_state,
    _load_rows,
    _load_step,
    _load_weights,
    _mm,
    _program_tile,
    _row_lengths,
    _sigmoid,
    _step_time,
    _store_rows,
    _store_step,
    _sync_if,
    _tanh,
    _valid_rows,
)

CELL = "gru"
# Every backward step has two phases: the gate gradients (A) and dh_{t-1} = dh*z + dgh W_hh (B).
BACKWARD_PHASES = ((True, False), (False, True))


@triton.jit
def _gru_cell_fwd(
    gx_ptr,  # (T, B, 3H) input projections, b_ih included
    acts_ptr,  # (T, B, 4H) saved r, z, n, gh_n (STORE_ACTS)
    t,
    B,
    H,
    b_gr,
    b_gz,
    b_gn,
    b_h,
    i_b,
    m_b,
    i_h,
    m_h,
    STORE_ACTS: tl.constexpr,
):
    """h_t of the program's (rows, hidden units) from the fp32 products b_g* = h_{t-1} W_hh^T +
    b_hh and h_{t-1} (b_h); the caller applies the variable-length select. Padded units are 0."""
    m_bh = m_b[:, None] & m_h[None, :]
    o_g = t.to(tl.int64) * B * 3 * H + i_b[:, None] * (3 * H) + i_h[None, :]
    p_gx = gx_ptr + o_g
    b_r = _sigmoid(tl.load(p_gx, mask=m_bh, other=0.0).to(tl.float32) + b_gr)
    b_z = _sigmoid(tl.load(p_gx + H, mask=m_bh, other=0.0).to(tl.float32) + b_gz)
    b_n = _tanh(tl.fma(b_r, b_gn, tl.load(p_gx + 2 * H, mask=m_bh, other=0.0).to(tl.float32)))
    if STORE_ACTS:
        p_acts = acts_ptr + t.to(tl.int64) * B * 4 * H + i_b[:, None] * (4 * H) + i_h[None, :]
        dtype = acts_ptr.dtype.element_ty
        tl.store(p_acts, b_r.to(dtype), mask=m_bh)
        tl.store(p_acts + H, b_z.to(dtype), mask=m_bh)
        tl.store(p_acts + 2 * H, b_n.to(dtype), mask=m_bh)
        tl.store(p_acts + 3 * H, b_gn.to(dtype), mask=m_bh)
    return tl.where(m_h[None, :], tl.fma(b_z, b_h - b_n, b_n), 0.0)


@triton.jit
def _gru_direct(acts_ptr, t, B, H, b_dh, b_dhw, i_b, m_b, i_h, m_h):
    """dh_{t-1} = dh*z + b_dhw of the program's units at step t: the part that bypasses W_hh added,
    in one explicit fma, to the product b_dhw = dgh W_hh. (A sum that started from dh*z got the
    fused dh*z + first chunk where the chunks unroll (cooperative) and a rounded dh*z where they
    loop (stepwise): the forms differed in the last bit.)"""
    p_z = acts_ptr + t.to(tl.int64) * B * 4 * H + i_b[:, None] * (4 * H) + H + i_h[None, :]
    b_z = tl.load(p_z, mask=m_b[:, None] & m_h[None, :], other=0.0).to(tl.float32)
    return tl.fma(b_dh, b_z, b_dhw)


@triton.jit
def _gru_cell_bwd(
    acts_ptr,  # (T, B, 4H) saved r, z, n, gh_n
    hprev_ptr,  # (T, B, H) the state each step started from
    dgx_ptr,  # (T, B, 3H) out
    dgh_ptr,  # (T, B, 3H) out: gradient of h_{t-1} W_hh^T + b_hh
    t,
    B,
    H,
    b_dh,
    i_b,
    m_b,
    i_h,
    m_h,
    m_valid,
):
    """Gate gradients of the program's (rows, units) at step t from dh (output gradient plus
    carry). Stores dgx_t and dgh_t (zero outside the sequence and in padded units); returns the
    fp32 dgh r, z, n blocks."""
    m_bh = m_b[:, None] & m_h[None, :]
    p_acts = acts_ptr + t.to(tl.int64) * B * 4 * H + i_b[:, None] * (4 * H) + i_h[None, :]
    b_r = tl.load(p_acts, mask=m_bh, other=0.0).to(tl.float32)
    b_z = tl.load(p_acts + H, mask=m_bh, other=0.0).to(tl.float32)
    b_n = tl.load(p_acts + 2 * H, mask=m_bh, other=0.0).to(tl.float32)
    b_ghn = tl.load(p_acts + 3 * H, mask=m_bh, other=0.0).to(tl.float32)
    p_hprev = hprev_ptr + t.to(tl.int64) * B * H + i_b[:, None] * H + i_h[None, :]
    b_hprev = tl.load(p_hprev, mask=m_bh, other=0.0).to(tl.float32)
    m_live = m_valid & m_h[None, :]
    b_dgn = b_dh * (1.0 - b_z) * (1.0 - b_n * b_n)
    b_dgr = tl.where(m_live, b_dgn * b_ghn * b_r * (1.0 - b_r), 0.0)
    b_dgz = tl.where(m_live, b_dh * (b_hprev - b_n) * b_z * (1.0 - b_z), 0.0)
    b_dgn = tl.where(m_live, b_dgn, 0.0)
    # Masked after the product: outside the sequence r comes from a discarded step and may be
    # NaN (an Inf in a finished state), and 0 * NaN would reach dW_hh.
    b_dghn = tl.where(m_live, b_dgn * b_r, 0.0)
    o_g = t.to(tl.int64) * B * 3 * H + i_b[:, None] * (3 * H) + i_h[None, :]
    dtype = dgx_ptr.dtype.element_ty
    tl.store(dgx_ptr + o_g, b_dgr.to(dtype), mask=m_bh)
    tl.store(dgx_ptr + o_g + H, b_dgz.to(dtype), mask=m_bh)
    tl.store(dgx_ptr + o_g + 2 * H, b_dgn.to(dtype), mask=m_bh)
    tl.store(dgh_ptr + o_g, b_dgr.to(dtype), mask=m_bh)
    tl.store(dgh_ptr + o_g + H, b_dgz.to(dtype), mask=m_bh)
    tl.store(dgh_ptr + o_g + 2 * H, b_dghn.to(dtype), mask=m_bh)
    return b_dgr, b_dgz, b_dghn


@triton.jit
def _gru_gate_bias(b_hh_ptr, H, i_h, m_h):
    """The r, z, n parts of b_hh (b_hh_ptr: (3H,)) at hidden units i_h as fp32 (1, BLOCK_H) rows."""
    b_br = tl.load(b_hh_ptr + i_h, mask=m_h, other=0.0).to(tl.float32)[None, :]
    b_bz = tl.load(b_hh_ptr + H + i_h, mask=m_h, other=0.0).to(tl.float32)[None, :]
    b_bn = tl.load(b_hh_ptr + 2 * H + i_h, mask=m_h, other=0.0).to(tl.float32)[None, :]
    return b_br, b_bz, b_bn


@triton.jit(do_not_specialize=["T", "S0", "STEPS", "spin_limit"])
def _gru_fwd_kernel(
    gx_ptr,  # (T, B, 3H)
    h0_ptr,  # (B, H): the state a sequence starts from
    hin_ptr,  # (B, H) the carried h this launch starts from: h0, or (STEPWISE) fp32 state
    w_hh_ptr,  # (3H, H)
    b_hh_ptr,  # (3H,) (HAS_BIAS)
    len_ptr,  # (B,) int64 (HAS_LENGTHS)
    out_ptr,  # (T, B, H); also the exchange buffer of h
    hn_ptr,  # (B, H) the carried h at the end: h_n, or (STEPWISE) the fp32 state
    acts_ptr,  # (T, B, 4H) (STORE_ACTS)
    sync_ptr,  # (batch tiles,) int32 barrier counters, zeroed per launch (SYNC)
    T,
    B,
    H,
    S0,
    STEPS,
    spin_limit,
    HAS_BIAS: tl.constexpr,
    HAS_LENGTHS: tl.constexpr,
    REVERSE: tl.constexpr,
    STORE_ACTS: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    DOT_FP32: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_O: tl.constexpr,
    BLOCK_HF: tl.constexpr,
    NUM_HF: tl.constexpr,
    SPLIT_HF: tl.constexpr,
    BLOCK_K: tl.constexpr,
    NUM_K: tl.constexpr,
    SPLIT_K: tl.constexpr,
    NUM_HT: tl.constexpr,
    LOCAL: tl.constexpr,
    SYNC: tl.constexpr,
    STEPWISE: tl.constexpr,
    BARRIER: tl.constexpr,
):
    """Forward steps S0 .. S0+STEPS-1."""
    i_bt, i_b, m_b, i_h, m_h, _, _ = _program_tile(B, H, H, BLOCK_B, BLOCK_H, BLOCK_O, NUM_HT)
    i_k = tl.arange(0, BLOCK_K)
    gate = H * H  # distance between the gates' rows of W_hh
    # Resident W_g^T slices over K = H in chunks: h (BLOCK_B rows, M >= 16) @ W^T. Stepwise
    # streams the chunks.
    b_wr, b_wz, b_wn = (), (), ()
    if not STEPWISE:
        b_wr = _load_weights(w_hh_ptr, 1, H, H, i_h, m_h, BLOCK_K, SPLIT_K, NUM_K)
        b_wz = _load_weights(w_hh_ptr + gate, 1, H, H, i_h, m_h, BLOCK_K, SPLIT_K, NUM_K)
        b_wn = _load_weights(w_hh_ptr + 2 * gate, 1, H, H, i_h, m_h, BLOCK_K, SPLIT_K, NUM_K)
    if HAS_BIAS:
        b_br, b_bz, b_bn = _gru_gate_bias(b_hh_ptr, H, i_h, m_h)
    b_len = _row_lengths(len_ptr, i_b, m_b, HAS_LENGTHS)
    b_h = _load_rows(hin_ptr, H, i_b, m_b, i_h, m_h, False)
    p_sync = sync_ptr + i_bt
    barriers = 0
    for s in range(S0, S0 + STEPS):
        t, t_prev = _step_time(s, T, REVERSE, False)
        m_valid = _valid_rows(b_len, t, m_b, HAS_LENGTHS)
        if LOCAL:
            b_gr = _mm(b_h, b_wr[0], BLOCK_B, BLOCK_K, SPLIT_K, INPUT_PRECISION, DOT_FP32)
            b_gz = _mm(b_h, b_wz[0], BLOCK_B, BLOCK_K, SPLIT_K, INPUT_PRECISION, DOT_FP32)
            b_gn = _mm(b_h, b_wn[0], BLOCK_B, BLOCK_K, SPLIT_K, INPUT_PRECISION, DOT_FP32)
        else:
            b_gr = tl.zeros((BLOCK_B, BLOCK_H), dtype=tl.float32)
            b_gz = tl.zeros((BLOCK_B, BLOCK_H), dtype=tl.float32)
            b_gn = tl.zeros((BLOCK_B, BLOCK_H), dtype=tl.float32)
            for c_dyn in range(NUM_K if STEPWISE else 1):
                for c_st in tl.static_range(1 if STEPWISE else NUM_K):
                    c = c_dyn + c_st  # stepwise: a loop over chunks; resident: unrolled
                    b_a = _load_previous_state(out_ptr, h0_ptr, t_prev, T, B, H, i_b, m_b, b_len,
                                               c * BLOCK_K + i_k, c * BLOCK_K + i_k < H, HAS_LENGTHS)
                    b_gr += _chunk_mm(b_a, b_wr, c_st, c, w_hh_ptr, 1, H, H, i_h, m_h, BLOCK_B, BLOCK_K,
                                      SPLIT_K, STEPWISE, INPUT_PRECISION, DOT_FP32)
                    b_gz += _chunk_mm(b_a, b_wz, c_st, c, w_hh_ptr + gate, 1, H, H, i_h, m_h, BLOCK_B,
                                      BLOCK_K, SPLIT_K, STEPWISE, INPUT_PRECISION, DOT_FP32)
                    b_gn += _chunk_mm(b_a, b_wn, c_st, c, w_hh_ptr + 2 * gate, 1, H, H, i_h, m_h, BLOCK_B,
                                      BLOCK_K, SPLIT_K, STEPWISE, INPUT_PRECISION, DOT_FP32)
        if HAS_BIAS:
            b_gr += b_br
            b_gz += b_bz
            b_gn += b_bn
        b_h_new = _gru_cell_fwd(gx_ptr, acts_ptr, t, B, H, b_gr, b_gz, b_gn, b_h, i_b, m_b, i_h,
                                m_h, STORE_ACTS)
        _store_step(out_ptr, t, B, H, i_b, m_b, i_h, m_h, b_h_new, m_valid)
        b_h = _keep_finished(m_valid, b_h_new, b_h, HAS_LENGTHS)
        barriers = _sync_if(SYNC, p_sync, barriers, NUM_HT, spin_limit, BARRIER)
    _store_rows(hn_ptr, H, i_b, m_b, i_h, m_h, b_h)


@triton.jit(do_not_specialize=["T", "S0", "STEPS", "spin_limit"])
def _gru_bwd_kernel(
    acts_ptr,  # (T, B, 4H)
    hprev_ptr,  # (T, B, H)
    w_hh_ptr,  # (3H, H)
    len_ptr,  # (B,) int64 (HAS_LENGTHS)
    dout_ptr,  # (T, B, H)
    dhn_ptr,  # (B, H) the carried dh this launch starts from: dh_n, or (STEPWISE) fp32 state
    dgx_ptr,  # (T, B, 3H) out
    dgh_ptr,  # (T, B, 3H) out; also the exchange buffer of phase B
    dh0_ptr,  # (B, H) out: dh0, or (STEPWISE) the fp32 state
    sync_ptr,  # (batch tiles,) int32 barrier counters, zeroed per launch (SYNC)
    T,
    B,
    H,
    S0,
    STEPS,
    spin_limit,
    HAS_LENGTHS: tl.constexpr,
    REVERSE: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    DOT_FP32: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_O: tl.constexpr,
    BLOCK_HF: tl.constexpr,
    NUM_HF: tl.constexpr,
    SPLIT_HF: tl.constexpr,
    BLOCK_K: tl.constexpr,
    NUM_K: tl.constexpr,
    SPLIT_K: tl.constexpr,
    NUM_HT: tl.constexpr,
    LOCAL: tl.constexpr,
    SYNC: tl.constexpr,
    STEPWISE: tl.constexpr,
    BARRIER: tl.constexpr,
    PHASE_A: tl.constexpr,
    PHASE_B: tl.constexpr,
):
    """Backward steps S0 .. S0+STEPS-1 in backward order (phases PHASE_A and PHASE_B of each)."""
    i_bt, i_b, m_b, i_h, m_h, _, _ = _program_tile(B, H, H, BLOCK_B, BLOCK_H, BLOCK_O, NUM_HT)
    i_hf = tl.arange(0, BLOCK_HF)
    gate = H * H  # distance between the gates' rows of W_hh
    # Resident W_g[:, own units] over K = H in chunks: dh_{t-1} = sum_g dgh_g @ W_g. Stepwise
    # streams the chunks.
    b_wr, b_wz, b_wn = (), (), ()
    if PHASE_B and not STEPWISE:
        b_wr = _load_weights(w_hh_ptr, H, 1, H, i_h, m_h, BLOCK_HF, SPLIT_HF, NUM_HF)
        b_wz = _load_weights(w_hh_ptr + gate, H, 1, H, i_h, m_h, BLOCK_HF, SPLIT_HF, NUM_HF)
        b_wn = _load_weights(w_hh_ptr + 2 * gate, H, 1, H, i_h, m_h, BLOCK_HF, SPLIT_HF, NUM_HF)
    b_len = _row_lengths(len_ptr, i_b, m_b, HAS_LENGTHS)
    b_dh = _load_rows(dhn_ptr, H, i_b, m_b, i_h, m_h, False)
    p_sync = sync_ptr + i_bt
    barriers = 0
    for s in range(S0, S0 + STEPS):
        t = _step_time(s, T, REVERSE, True)[0]
        m_valid = _valid_rows(b_len, t, m_b, HAS_LENGTHS)
        b_dht = _add_dout(b_dh, dout_ptr, t, B, H, i_b, m_b, i_h, m_h)
        if PHASE_A:
            b_dgr, b_dgz, b_dgn = _gru_cell_bwd(acts_ptr, hprev_ptr, dgx_ptr, dgh_ptr, t, B, H,
                                                b_dht, i_b, m_b, i_h, m_h, m_valid)
            barriers = _sync_if(SYNC, p_sync, barriers, NUM_HT, spin_limit, BARRIER)
        if PHASE_B:
            b_dhw = tl.zeros((BLOCK_B, BLOCK_H), dtype=tl.float32)
            if LOCAL:
                b_dhw += _mm(b_dgr, b_wr[0], BLOCK_B, BLOCK_HF, SPLIT_HF, INPUT_PRECISION, DOT_FP32)
                b_dhw += _mm(b_dgz, b_wz[0], BLOCK_B, BLOCK_HF, SPLIT_HF, INPUT_PRECISION, DOT_FP32)
                b_dhw += _mm(b_dgn, b_wn[0], BLOCK_B, BLOCK_HF, SPLIT_HF, INPUT_PRECISION, DOT_FP32)
            else:
                for c_dyn in range(NUM_HF if STEPWISE else 1):
                    for c_st in tl.static_range(1 if STEPWISE else NUM_HF):
                        c = c_dyn + c_st  # stepwise: a loop over chunks; resident: unrolled
                        i_kc = c * BLOCK_HF + i_hf
                        m_kc = i_kc < H
                        b_dg = _load_step(dgh_ptr, t, B, 3 * H, i_b, m_b, i_kc, m_kc, True)
                        b_dhw += _chunk_mm(b_dg, b_wr, c_st, c, w_hh_ptr, H, 1, H, i_h, m_h, BLOCK_B,
                                           BLOCK_HF, SPLIT_HF, STEPWISE, INPUT_PRECISION, DOT_FP32)
                        b_dg = _load_step(dgh_ptr + H, t, B, 3 * H, i_b, m_b, i_kc, m_kc, True)
                        b_dhw += _chunk_mm(b_dg, b_wz, c_st, c, w_hh_ptr + gate, H, 1, H, i_h, m_h,
                                           BLOCK_B, BLOCK_HF, SPLIT_HF, STEPWISE, INPUT_PRECISION,
                                           DOT_FP32)
                        b_dg = _load_step(dgh_ptr + 2 * H, t, B, 3 * H, i_b, m_b, i_kc, m_kc, True)
                        b_dhw += _chunk_mm(b_dg, b_wn, c_st, c, w_hh_ptr + 2 * gate, H, 1, H, i_h, m_h,
                                           BLOCK_B, BLOCK_HF, SPLIT_HF, STEPWISE, INPUT_PRECISION,
                                           DOT_FP32)
            b_dh_new = _gru_direct(acts_ptr, t, B, H, b_dht, b_dhw, i_b, m_b, i_h, m_h)
            b_dh_new = tl.where(m_h[None, :], b_dh_new, 0.0)
            b_dh = _keep_finished(m_valid, b_dh_new, b_dh, HAS_LENGTHS)
    if PHASE_B:
        _store_rows(dh0_ptr, H, i_b, m_b, i_h, m_h, b_dh)


def forward(pb, store):
    """Launch the forward; returns ((output, h_n), saved tensors for backward)."""
    plan = pb.plan
    steps, batch, hidden = pb.steps, pb.batch, pb.hidden
    gx = pb.gx
    out = launch.empty((steps, batch, hidden), gx)
    acts = launch.empty((steps, batch, 4 * hidden), gx) if store else gx
    lengths = gx if pb.lengths is None else pb.lengths
    b_hh = gx if pb.b_hh is None else pb.b_hh
    meta = {**pb.flags(), "HAS_BIAS": pb.b_hh is not None, "STORE_ACTS": store}
    grid = (plan.programs,)
    if plan.form == "stepwise":
        h_state = pb.h0.to(torch.float32, copy=True)
        with launch.device_guard(gx):
            for s in range(steps):
                _gru_fwd_kernel[grid](gx, pb.h0, h_state, pb.w_hh, b_hh, lengths, out, h_state,
                                      acts, gx, steps, batch, hidden, s, 1, 0, **meta)
        h_n = h_state.to(gx.dtype)
    else:
        h_n = launch.empty((batch, hidden), gx)
        sync = launch.counters(pb)
        launch.launch(_gru_fwd_kernel, grid, (
            gx, pb.h0, pb.h0, pb.w_hh, b_hh, lengths, out, h_n, acts, sync, steps, batch, hidden,
            0, steps, forms.SPIN_LIMIT), meta, pb, sync, "GRU forward")
    return (out, h_n), ((acts,) if store else ())


def backward(pb, saved, outputs, grads):
    """Launch the backward; returns (dgx, dh0, None, dw_hh, None, db_hh)."""
    (acts,) = saved
    out = outputs[0]
    dout, dh_n = grads
    plan = pb.plan
    steps, batch, hidden = pb.steps, pb.batch, pb.hidden
    gx = pb.gx
    lengths = gx if pb.lengths is None else pb.lengths
    h_prev = launch.previous_hidden(out, pb.h0, pb.lengths, pb.reverse)
    dgx = launch.empty(gx.shape, gx)
    dgh = launch.empty(gx.shape, gx)
    meta = pb.flags()
    grid = (plan.programs,)
    if plan.form == "stepwise":
        dh_state = dh_n.to(torch.float32, copy=True)
        with launch.device_guard(gx):
            for s in range(steps):
                for phase_a, phase_b in BACKWARD_PHASES:
                    _gru_bwd_kernel[grid](acts, h_prev, pb.w_hh, lengths, dout, dh_state, dgx,
                                          dgh, dh_state, gx, steps, batch, hidden, s, 1, 0,
                                          PHASE_A=phase_a, PHASE_B=phase_b, **meta)
        dh0 = dh_state.to(gx.dtype)
    else:
        dh0 = launch.empty((batch, hidden), gx)
        sync = launch.counters(pb)
        launch.launch(_gru_bwd_kernel, grid, (
            acts, h_prev, pb.w_hh, lengths, dout, dh_n, dgx, dgh, dh0, sync, steps, batch,
            hidden, 0, steps, forms.SPIN_LIMIT), {**meta, "PHASE_A": True, "PHASE_B": True}, pb,
            sync, "GRU backward")
    dw_hh = launch.weight_grad(dgh, h_prev)
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
    return launch.run(sys.modules[__name__], gx, h0, None, w_hh, None, b_hh, lengths=lengths,
                      reverse=reverse)
