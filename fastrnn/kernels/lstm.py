"""LSTM recurrence kernels (forward and backward, every form), held to fastrnn.reference.lstm.

Dimensions: T time, B batch, H hidden (cell) size, P projection size, H_out = P if P > 0 else H,
G = 4 gates (order i, f, g, o). A program owns BLOCK_B batch rows, BLOCK_H hidden units with all
four gates and BLOCK_O columns of H_out (jit.py); BLOCK_HF and BLOCK_K are the padded H and H_out,
BLOCK_KC the K extent a streamed (stepwise) product stages at once.

One kernel per pass runs every form (forms.py):
    persistent   LOCAL: one program per batch tile, the whole state in registers, no exchange.
    cooperative  SYNC: NUM_HT programs per batch tile exchange the state through global memory with
                 grid barriers between the phases of a step.
    stepwise     STEPWISE: one launch per step and phase; the state is carried between launches in
                 fp32 buffers, and weights stream in K chunks when a slice would not fit on chip.

Forward step (phases; a barrier between them where the state is exchanged):
    A  gates = gx_t + h_{t-1} W_hh^T for the program's hidden units; c_t, hp = o*tanh(c_t). Without
       a projection hp is h_t: stored to out[t], which is also the exchange buffer (h_{t-1} of the
       next step is out[t_prev], or h0 before a sequence's first step).
    B  (projection) h_t[own columns] = hp W_hr^T, hp of every program through a (B, H) buffer.
Backward step (processing order reversed; dh comes from the output and the next step):
    A  dhp = dh W_hr (projection: dh of every column through a (B, P) buffer) or dh (own units)
       do = dhp*tanh(c_t);  dc = dc_next + dhp*o*(1 - tanh(c_t)^2)
       di = dc*g, df = dc*c_{t-1}, dg = dc*i, dc_{t-1} = dc*f
       dgates = (di*i(1-i), df*f(1-f), dg*(1-g^2), do*o(1-o)) -> dgx[t], also the exchange buffer
    B  dh_{t-1}[own columns] = dgates W_hh, the dgates of every program
    dW_hh = sum dgates^T h_{t-1} and dW_hr = sum dh^T hp: GEMMs after the loop.
A step outside its sequence passes dh and dc through unchanged and has zero dgates.

Saved for backward (store, not recompute; launch.py says why): i, f, g, o and c_t per step in the
I/O dtype. hp = o*tanh(c_t) for dW_hr is recomputed from them after the loop.
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

CELL = "lstm"


@triton.jit
def _tanh_gate(x, FMA: tl.constexpr):
    """jit._tanh(x), bit for bit, for the g gate's pre-activation (gx + the recurrent product).

    FMA (fp32 I/O, whose IEEE product is a chain of FMAs): the exponential branch reads x through
    a select (its value wherever that branch is taken is x itself, NaN and inf included). With x
    read directly by both branches, LLVM's SLP vectorizer in triton 3.9 aborts the process
    (`scheduleBlock: must be scheduled at this point`, an assertion, not an exception) compiling
    the fp32 forward at BLOCK_H = 64 (H = 33..64, with or without a projection): it bundles the
    four gates' pre-activations with their FMA chains into one tree and fails to schedule it.
    """
    if FMA:
        small = tl.abs(x) < 0.25
        x2 = x * x
        series = x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0
                                                                         + x2 * (62.0 / 2835.0)))))
        b_out = tl.where(small, series, 2.0 * _sigmoid(2.0 * tl.where(small, 0.0, x)) - 1.0)
    else:
        b_out = _tanh(x)
    return b_out


@triton.jit
def _lstm_cell_fwd(
    gx_ptr,  # (T, B, 4H) input projections, both biases included
    acts_ptr,  # (T, B, 4H) saved activations i, f, g, o (STORE_ACTS)
    cs_ptr,  # (T, B, H) saved cell states, frozen past a sequence's end (STORE_ACTS)
    t,
    B,
    H,
    b_gi,
    b_gf,
    b_gg,
    b_go,
    b_c,
    i_b,
    m_b,
    i_h,
    m_h,
    m_valid,
    HAS_LENGTHS: tl.constexpr,
    STORE_ACTS: tl.constexpr,
):
    """Gates of the program's (rows, hidden units) at step t given the fp32 products b_g* of
    h_{t-1} W_hh^T and c_{t-1} (b_c). Returns (c_t, hp = o*tanh(c_t)); c_t keeps c_{t-1} in rows
    outside their sequence (m_valid (BLOCK_B, 1)); padded units of hp are 0 (an inf in the state
    would otherwise turn them into NaN, which a product spreads to every unit)."""
    m_bh = m_b[:, None] & m_h[None, :]
    o_g = t.to(tl.int64) * B * 4 * H + i_b[:, None] * (4 * H) + i_h[None, :]
    p_gx = gx_ptr + o_g
    b_i = _sigmoid(tl.load(p_gx, mask=m_bh, other=0.0).to(tl.float32) + b_gi)
    b_f = _sigmoid(tl.load(p_gx + H, mask=m_bh, other=0.0).to(tl.float32) + b_gf)
    b_g = _tanh_gate(tl.load(p_gx + 2 * H, mask=m_bh, other=0.0).to(tl.float32) + b_gg,
                     gx_ptr.dtype.element_ty == tl.float32)
    b_o = _sigmoid(tl.load(p_gx + 3 * H, mask=m_bh, other=0.0).to(tl.float32) + b_go)
    b_c_new = b_f * b_c + b_i * b_g
    b_hp = tl.where(m_h[None, :], b_o * _tanh(b_c_new), 0.0)
    b_c_new = _keep_finished(m_valid, b_c_new, b_c, HAS_LENGTHS)
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
def _lstm_cell_bwd(
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
    m_b,
    i_h,
    m_h,
    m_valid,
    HAS_LENGTHS: tl.constexpr,
):
    """Gate gradients of the program's (rows, hidden units) at step t from dhp (gradient of
    o*tanh(c_t)) and dc (gradient of c_t from later steps). Stores dgx_t (zero outside the sequence
    and in padded units) and returns (dgates i, f, g, o, dc_{t-1}) in fp32."""
    m_bh = m_b[:, None] & m_h[None, :]
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
    m_live = m_valid & m_h[None, :]
    b_dgi = tl.where(m_live, b_dc_t * b_g * b_i * (1.0 - b_i), 0.0)
    b_dgf = tl.where(m_live, b_dc_t * b_c_prev * b_f * (1.0 - b_f), 0.0)
    b_dgg = tl.where(m_live, b_dc_t * b_i * (1.0 - b_g * b_g), 0.0)
    b_dgo = tl.where(m_live, b_dhp * b_tc * b_o * (1.0 - b_o), 0.0)
    p_dgx = dgx_ptr + o_g
    dtype = dgx_ptr.dtype.element_ty
    tl.store(p_dgx, b_dgi.to(dtype), mask=m_bh)
    tl.store(p_dgx + H, b_dgf.to(dtype), mask=m_bh)
    tl.store(p_dgx + 2 * H, b_dgg.to(dtype), mask=m_bh)
    tl.store(p_dgx + 3 * H, b_dgo.to(dtype), mask=m_bh)
    # Not tl.where over the plain batch mask: without lengths that select makes LLVM's SLP
    # vectorizer abort on the fp32 (FMA) backward (triton 3.9, sm_90, H = 48..64).
    b_dc_prev = _keep_finished(m_valid, b_dc_t * b_f, b_dc, HAS_LENGTHS)
    return b_dgi, b_dgf, b_dgg, b_dgo, b_dc_prev


@triton.jit(do_not_specialize=["T", "S0", "STEPS", "spin_limit"])
def _lstm_fwd_kernel(
    gx_ptr,  # (T, B, 4H)
    h0_ptr,  # (B, H_out): the state a sequence starts from
    hin_ptr,  # (B, H_out) the carried h this launch starts from: h0, or (STEPWISE) fp32 state
    cin_ptr,  # (B, H) the carried c: c0, or (STEPWISE) fp32 state
    w_hh_ptr,  # (4H, H_out)
    w_hr_ptr,  # (P, H), P = H_out (HAS_PROJ)
    len_ptr,  # (B,) int64 (HAS_LENGTHS)
    out_ptr,  # (T, B, H_out); also the exchange buffer of h
    hn_ptr,  # (B, H_out) the carried h at the end: h_n, or (STEPWISE) the fp32 state
    cn_ptr,  # (B, H) the carried c at the end: c_n, or (STEPWISE) the fp32 state
    acts_ptr,  # (T, B, 4H) (STORE_ACTS)
    cs_ptr,  # (T, B, H) (STORE_ACTS)
    hp_ptr,  # (B, H) o*tanh(c_t) exchanged between the phases (HAS_PROJ and not LOCAL)
    sync_ptr,  # (batch tiles,) int32 barrier counters, zeroed per launch (SYNC)
    T,
    B,
    H,
    H_OUT,
    S0,
    STEPS,
    spin_limit,
    HAS_PROJ: tl.constexpr,
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
    PHASE_A: tl.constexpr,
    PHASE_B: tl.constexpr,
):
    """Steps S0 .. S0+STEPS-1 of the forward (phases PHASE_A and PHASE_B of each)."""
    i_bt, i_b, m_b, i_h, m_h, i_o, m_o = _program_tile(B, H, H_OUT, BLOCK_B, BLOCK_H, BLOCK_O,
                                                         NUM_HT)
    i_k = tl.arange(0, BLOCK_K)
    i_hf = tl.arange(0, BLOCK_HF)
    gate = H * H_OUT  # distance between the gates' rows of W_hh
    # Resident weights, loaded once in K chunks: W_g^T slices over K = H_out and W_hr^T over K = H,
    # so every product is state (BLOCK_B rows, M >= 16) @ weights. Stepwise streams the chunks.
    b_wi, b_wf, b_wg, b_wo, b_wr = (), (), (), (), ()
    if PHASE_A and not STEPWISE:
        b_wi = _load_weights(w_hh_ptr, 1, H_OUT, H_OUT, i_h, m_h, BLOCK_K, SPLIT_K, NUM_K)
        b_wf = _load_weights(w_hh_ptr + gate, 1, H_OUT, H_OUT, i_h, m_h, BLOCK_K, SPLIT_K, NUM_K)
        b_wg = _load_weights(w_hh_ptr + 2 * gate, 1, H_OUT, H_OUT, i_h, m_h, BLOCK_K, SPLIT_K,
                             NUM_K)
        b_wo = _load_weights(w_hh_ptr + 3 * gate, 1, H_OUT, H_OUT, i_h, m_h, BLOCK_K, SPLIT_K,
                             NUM_K)
    if HAS_PROJ and PHASE_B and not STEPWISE:
        b_wr = _load_weights(w_hr_ptr, 1, H, H, i_o, m_o, BLOCK_HF, SPLIT_HF, NUM_HF)
    b_len = _row_lengths(len_ptr, i_b, m_b, HAS_LENGTHS)
    if PHASE_A:
        b_c = _load_rows(cin_ptr, H, i_b, m_b, i_h, m_h, False)
    # The program's own columns of h, kept for h_n (and, LOCAL, the whole state).
    if (HAS_PROJ and PHASE_B) or (not HAS_PROJ and PHASE_A):
        b_h = _load_rows(hin_ptr, H_OUT, i_b, m_b, i_o, m_o, False)
    p_sync = sync_ptr + i_bt
    barriers = 0
    for s in range(S0, S0 + STEPS):
        t, t_prev = _step_time(s, T, REVERSE, False)
        m_valid = _valid_rows(b_len, t, m_b, HAS_LENGTHS)
        if PHASE_A:
            if LOCAL:
                b_gi = _mm(b_h, b_wi[0], BLOCK_B, BLOCK_K, SPLIT_K, INPUT_PRECISION, DOT_FP32)
                b_gf = _mm(b_h, b_wf[0], BLOCK_B, BLOCK_K, SPLIT_K, INPUT_PRECISION, DOT_FP32)
                b_gg = _mm(b_h, b_wg[0], BLOCK_B, BLOCK_K, SPLIT_K, INPUT_PRECISION, DOT_FP32)
                b_go = _mm(b_h, b_wo[0], BLOCK_B, BLOCK_K, SPLIT_K, INPUT_PRECISION, DOT_FP32)
            else:
                b_gi = tl.zeros((BLOCK_B, BLOCK_H), dtype=tl.float32)
                b_gf = tl.zeros((BLOCK_B, BLOCK_H), dtype=tl.float32)
                b_gg = tl.zeros((BLOCK_B, BLOCK_H), dtype=tl.float32)
                b_go = tl.zeros((BLOCK_B, BLOCK_H), dtype=tl.float32)
                for c_dyn in range(NUM_K if STEPWISE else 1):
                    for c_st in tl.static_range(1 if STEPWISE else NUM_K):
                        c = c_dyn + c_st  # stepwise: a loop over chunks; resident: unrolled
                        b_a = _load_previous_state(out_ptr, h0_ptr, t_prev, T, B, H_OUT, i_b, m_b,
                                                   b_len, c * BLOCK_K + i_k, c * BLOCK_K + i_k < H_OUT,
                                                   HAS_LENGTHS)
                        b_gi += _chunk_mm(b_a, b_wi, c_st, c, w_hh_ptr, 1, H_OUT, H_OUT, i_h, m_h, BLOCK_B,
                                          BLOCK_K, SPLIT_K, STEPWISE, INPUT_PRECISION, DOT_FP32)
                        b_gf += _chunk_mm(b_a, b_wf, c_st, c, w_hh_ptr + gate, 1, H_OUT, H_OUT, i_h, m_h,
                                          BLOCK_B, BLOCK_K, SPLIT_K, STEPWISE, INPUT_PRECISION,
                                          DOT_FP32)
                        b_gg += _chunk_mm(b_a, b_wg, c_st, c, w_hh_ptr + 2 * gate, 1, H_OUT, H_OUT, i_h, m_h,
                                          BLOCK_B, BLOCK_K, SPLIT_K, STEPWISE, INPUT_PRECISION,
                                          DOT_FP32)
                        b_go += _chunk_mm(b_a, b_wo, c_st, c, w_hh_ptr + 3 * gate, 1, H_OUT, H_OUT, i_h, m_h,
                                          BLOCK_B, BLOCK_K, SPLIT_K, STEPWISE, INPUT_PRECISION,
                                          DOT_FP32)
            b_c, b_hp = _lstm_cell_fwd(gx_ptr, acts_ptr, cs_ptr, t, B, H, b_gi, b_gf, b_gg, b_go,
                                       b_c, i_b, m_b, i_h, m_h, m_valid, HAS_LENGTHS, STORE_ACTS)
            if HAS_PROJ:
                if not LOCAL:
                    _store_rows(hp_ptr, H, i_b, m_b, i_h, m_h, b_hp)
            else:
                _store_step(out_ptr, t, B, H_OUT, i_b, m_b, i_o, m_o, b_hp, m_valid)
                b_h = _keep_finished(m_valid, b_hp, b_h, HAS_LENGTHS)
        if HAS_PROJ:
            barriers = _sync_if(SYNC, p_sync, barriers, NUM_HT, spin_limit, BARRIER)
            if PHASE_B:
                if LOCAL:
                    b_h_new = _mm(b_hp, b_wr[0], BLOCK_B, BLOCK_HF, SPLIT_HF, INPUT_PRECISION,
                                  DOT_FP32)
                else:
                    b_h_new = tl.zeros((BLOCK_B, BLOCK_O), dtype=tl.float32)
                    for c_dyn in range(NUM_HF if STEPWISE else 1):
                        for c_st in tl.static_range(1 if STEPWISE else NUM_HF):
                            c = c_dyn + c_st  # stepwise: a loop over chunks; resident: unrolled
                            b_a = _load_rows(hp_ptr, H, i_b, m_b, c * BLOCK_HF + i_hf,
                                             c * BLOCK_HF + i_hf < H, True)
                            b_h_new += _chunk_mm(b_a, b_wr, c_st, c, w_hr_ptr, 1, H, H, i_o, m_o, BLOCK_B,
                                                 BLOCK_HF, SPLIT_HF, STEPWISE, INPUT_PRECISION,
                                                 DOT_FP32)
                b_h_new = tl.where(m_o[None, :], b_h_new, 0.0)
                _store_step(out_ptr, t, B, H_OUT, i_b, m_b, i_o, m_o, b_h_new, m_valid)
                b_h = _keep_finished(m_valid, b_h_new, b_h, HAS_LENGTHS)
        barriers = _sync_if(SYNC, p_sync, barriers, NUM_HT, spin_limit, BARRIER)
    if PHASE_A:
        _store_rows(cn_ptr, H, i_b, m_b, i_h, m_h, b_c)
    if (HAS_PROJ and PHASE_B) or (not HAS_PROJ and PHASE_A):
        _store_rows(hn_ptr, H_OUT, i_b, m_b, i_o, m_o, b_h)


@triton.jit(do_not_specialize=["T", "S0", "STEPS", "spin_limit"])
def _lstm_bwd_kernel(
    acts_ptr,  # (T, B, 4H)
    cs_ptr,  # (T, B, H)
    c0_ptr,  # (B, H)
    w_hh_ptr,  # (4H, H_out)
    w_hr_ptr,  # (P, H) (HAS_PROJ)
    len_ptr,  # (B,) int64 (HAS_LENGTHS)
    dout_ptr,  # (T, B, H_out)
    dhn_ptr,  # (B, H_out) the carried dh this launch starts from: dh_n, or (STEPWISE) fp32 state
    dcn_ptr,  # (B, H) the carried dc: dc_n, or (STEPWISE) fp32 state
    dgx_ptr,  # (T, B, 4H) out; also the exchange buffer of dgates
    dhr_ptr,  # (T, B, P) fp32 out: dh of each valid step, for dW_hr (HAS_PROJ)
    dex_ptr,  # (B, P) fp32 dh exchanged between the phases (HAS_PROJ and not LOCAL)
    dh0_ptr,  # (B, H_out) out: dh0, or (STEPWISE) the fp32 state
    dc0_ptr,  # (B, H) out: dc0, or (STEPWISE) the fp32 state
    sync_ptr,  # (batch tiles,) int32 barrier counters, zeroed per launch (SYNC)
    T,
    B,
    H,
    H_OUT,
    S0,
    STEPS,
    spin_limit,
    HAS_PROJ: tl.constexpr,
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
    i_bt, i_b, m_b, i_h, m_h, i_o, m_o = _program_tile(B, H, H_OUT, BLOCK_B, BLOCK_H, BLOCK_O,
                                                         NUM_HT)
    i_k = tl.arange(0, BLOCK_K)
    i_hf = tl.arange(0, BLOCK_HF)
    gate = H * H_OUT  # distance between the gates' rows of W_hh
    # Resident weights in K chunks: W_hr[:, own units] over K = P and W_g[:, own columns] over
    # K = H, so dhp = dh @ W_hr and dh_{t-1} = sum_g dgates_g @ W_g. Stepwise streams the chunks.
    b_wr, b_wi, b_wf, b_wg, b_wo = (), (), (), (), ()
    if HAS_PROJ and PHASE_A and not STEPWISE:
        b_wr = _load_weights(w_hr_ptr, H, 1, H_OUT, i_h, m_h, BLOCK_K, SPLIT_K, NUM_K)
    if PHASE_B and not STEPWISE:
        b_wi = _load_weights(w_hh_ptr, H_OUT, 1, H, i_o, m_o, BLOCK_HF, SPLIT_HF, NUM_HF)
        b_wf = _load_weights(w_hh_ptr + gate, H_OUT, 1, H, i_o, m_o, BLOCK_HF, SPLIT_HF, NUM_HF)
        b_wg = _load_weights(w_hh_ptr + 2 * gate, H_OUT, 1, H, i_o, m_o, BLOCK_HF, SPLIT_HF,
                             NUM_HF)
        b_wo = _load_weights(w_hh_ptr + 3 * gate, H_OUT, 1, H, i_o, m_o, BLOCK_HF, SPLIT_HF,
                             NUM_HF)
    b_len = _row_lengths(len_ptr, i_b, m_b, HAS_LENGTHS)
    if PHASE_A:
        b_dc = _load_rows(dcn_ptr, H, i_b, m_b, i_h, m_h, False)
    # The program's own columns of the dh carry (LOCAL: all of them).
    if PHASE_B or not HAS_PROJ:
        b_dh = _load_rows(dhn_ptr, H_OUT, i_b, m_b, i_o, m_o, False)
    p_sync = sync_ptr + i_bt
    barriers = 0
    for s in range(S0, S0 + STEPS):
        t, t_prev = _step_time(s, T, REVERSE, True)
        m_valid = _valid_rows(b_len, t, m_b, HAS_LENGTHS)
        if PHASE_A:
            if not HAS_PROJ:
                b_dhp = _add_dout(b_dh, dout_ptr, t, B, H_OUT, i_b, m_b, i_o, m_o)
            elif LOCAL:
                b_dht = _add_dout(b_dh, dout_ptr, t, B, H_OUT, i_b, m_b, i_o, m_o)
                _store_step(dhr_ptr, t, B, H_OUT, i_b, m_b, i_o, m_o, b_dht, m_valid)
                b_dhp = _mm(b_dht, b_wr[0], BLOCK_B, BLOCK_K, SPLIT_K, INPUT_PRECISION, DOT_FP32)
            else:
                b_dhp = tl.zeros((BLOCK_B, BLOCK_H), dtype=tl.float32)
                for c_dyn in range(NUM_K if STEPWISE else 1):
                    for c_st in tl.static_range(1 if STEPWISE else NUM_K):
                        c = c_dyn + c_st  # stepwise: a loop over chunks; resident: unrolled
                        i_kc = c * BLOCK_K + i_k
                        b_dht = _load_rows(dex_ptr, H_OUT, i_b, m_b, i_kc, i_kc < H_OUT, True)
                        b_dht = _add_dout(b_dht, dout_ptr, t, B, H_OUT, i_b, m_b, i_kc, i_kc < H_OUT)
                        b_dhp += _chunk_mm(b_dht, b_wr, c_st, c, w_hr_ptr, H, 1, H_OUT, i_h, m_h, BLOCK_B,
                                           BLOCK_K, SPLIT_K, STEPWISE, INPUT_PRECISION, DOT_FP32)
            b_dgi, b_dgf, b_dgg, b_dgo, b_dc = _lstm_cell_bwd(
                acts_ptr, cs_ptr, c0_ptr, dgx_ptr, t, t_prev, T, B, H, b_dhp, b_dc, i_b, m_b, i_h,
                m_h, m_valid, HAS_LENGTHS)
            barriers = _sync_if(SYNC, p_sync, barriers, NUM_HT, spin_limit, BARRIER)
        if PHASE_B:
            if LOCAL:
                b_dh_new = _mm(b_dgi, b_wi[0], BLOCK_B, BLOCK_HF, SPLIT_HF, INPUT_PRECISION,
                               DOT_FP32)
                b_dh_new += _mm(b_dgf, b_wf[0], BLOCK_B, BLOCK_HF, SPLIT_HF, INPUT_PRECISION,
                                DOT_FP32)
                b_dh_new += _mm(b_dgg, b_wg[0], BLOCK_B, BLOCK_HF, SPLIT_HF, INPUT_PRECISION,
                                DOT_FP32)
                b_dh_new += _mm(b_dgo, b_wo[0], BLOCK_B, BLOCK_HF, SPLIT_HF, INPUT_PRECISION,
                                DOT_FP32)
            else:
                b_dh_new = tl.zeros((BLOCK_B, BLOCK_O), dtype=tl.float32)
                for c_dyn in range(NUM_HF if STEPWISE else 1):
                    for c_st in tl.static_range(1 if STEPWISE else NUM_HF):
                        c = c_dyn + c_st  # stepwise: a loop over chunks; resident: unrolled
                        i_kc = c * BLOCK_HF + i_hf
                        m_kc = i_kc < H
                        b_dg = _load_step(dgx_ptr, t, B, 4 * H, i_b, m_b, i_kc, m_kc, True)
                        b_dh_new += _chunk_mm(b_dg, b_wi, c_st, c, w_hh_ptr, H_OUT, 1, H, i_o, m_o, BLOCK_B,
                                              BLOCK_HF, SPLIT_HF, STEPWISE, INPUT_PRECISION, DOT_FP32)
                        b_dg = _load_step(dgx_ptr + H, t, B, 4 * H, i_b, m_b, i_kc, m_kc, True)
                        b_dh_new += _chunk_mm(b_dg, b_wf, c_st, c, w_hh_ptr + gate, H_OUT, 1, H, i_o, m_o,
                                              BLOCK_B, BLOCK_HF, SPLIT_HF, STEPWISE, INPUT_PRECISION,
                                              DOT_FP32)
                        b_dg = _load_step(dgx_ptr + 2 * H, t, B, 4 * H, i_b, m_b, i_kc, m_kc, True)
                        b_dh_new += _chunk_mm(b_dg, b_wg, c_st, c, w_hh_ptr + 2 * gate, H_OUT, 1, H, i_o,
                                              m_o, BLOCK_B, BLOCK_HF, SPLIT_HF, STEPWISE,
                                              INPUT_PRECISION, DOT_FP32)
                        b_dg = _load_step(dgx_ptr + 3 * H, t, B, 4 * H, i_b, m_b, i_kc, m_kc, True)
                        b_dh_new += _chunk_mm(b_dg, b_wo, c_st, c, w_hh_ptr + 3 * gate, H_OUT, 1, H, i_o,
                                              m_o, BLOCK_B, BLOCK_HF, SPLIT_HF, STEPWISE,
                                              INPUT_PRECISION, DOT_FP32)
            b_dh_new = tl.where(m_o[None, :], b_dh_new, 0.0)
            if HAS_PROJ and not LOCAL:
                b_dht = _add_dout(b_dh, dout_ptr, t, B, H_OUT, i_b, m_b, i_o, m_o)
                _store_step(dhr_ptr, t, B, H_OUT, i_b, m_b, i_o, m_o, b_dht, m_valid)
            b_dh = _keep_finished(m_valid, b_dh_new, b_dh, HAS_LENGTHS)
            if HAS_PROJ and not LOCAL:
                _store_rows(dex_ptr, H_OUT, i_b, m_b, i_o, m_o, b_dh)
                barriers = _sync_if(SYNC, p_sync, barriers, NUM_HT, spin_limit, BARRIER)
    if PHASE_A:
        _store_rows(dc0_ptr, H, i_b, m_b, i_h, m_h, b_dc)
    if PHASE_B:
        _store_rows(dh0_ptr, H_OUT, i_b, m_b, i_o, m_o, b_dh)


def _phases(pb):
    """(PHASE_A, PHASE_B) of each launch of one stepwise step."""
    two = pb.w_hr is not None
    return ((True, False), (False, True)) if two else ((True, True),)


# Every backward step has two phases: the cell update (A) and dh_{t-1} = dgates W_hh (B).
BACKWARD_PHASES = ((True, False), (False, True))


def forward(pb, store):
    """Launch the forward; returns ((output, h_n, c_n), saved tensors for backward)."""
    plan = pb.plan
    steps, batch, hidden, h_out = pb.steps, pb.batch, pb.hidden, pb.h_out
    gx = pb.gx
    has_proj = pb.w_hr is not None
    out = launch.empty((steps, batch, h_out), gx)
    acts = launch.empty((steps, batch, 4 * hidden), gx) if store else gx
    cs = launch.empty((steps, batch, hidden), gx) if store else gx
    lengths = gx if pb.lengths is None else pb.lengths
    w_hr = pb.w_hh if pb.w_hr is None else pb.w_hr
    hp = launch.empty((batch, hidden), gx) if has_proj and not plan.local else gx
    meta = {**pb.flags(), "HAS_PROJ": has_proj, "STORE_ACTS": store}
    grid = (plan.programs,)
    if plan.form == "stepwise":
        h_state = pb.h0.to(torch.float32, copy=True)
        c_state = pb.c0.to(torch.float32, copy=True)
        phases = _phases(pb)
        with launch.device_guard(gx):
            for s in range(steps):
                for phase_a, phase_b in phases:
                    _lstm_fwd_kernel[grid](
                        gx, pb.h0, h_state, c_state, pb.w_hh, w_hr, lengths, out, h_state,
                        c_state, acts, cs, hp, gx, steps, batch, hidden, h_out, s, 1, 0,
                        PHASE_A=phase_a, PHASE_B=phase_b, **meta)
        h_n, c_n = h_state.to(gx.dtype), c_state.to(gx.dtype)
    else:
        h_n = launch.empty((batch, h_out), gx)
        c_n = launch.empty((batch, hidden), gx)
        sync = launch.counters(pb)
        launch.launch(_lstm_fwd_kernel, grid, (
            gx, pb.h0, pb.h0, pb.c0, pb.w_hh, w_hr, lengths, out, h_n, c_n, acts, cs, hp, sync,
            steps, batch, hidden, h_out, 0, steps, forms.SPIN_LIMIT), {
            **meta, "PHASE_A": True, "PHASE_B": True}, pb, sync, "LSTM forward")
    return (out, h_n, c_n), ((acts, cs) if store else ())


def backward(pb, saved, outputs, grads):
    """Launch the backward; returns (dgx, dh0, dc0, dw_hh, dw_hr, None)."""
    acts, cs = saved
    out = outputs[0]
    dout, dh_n, dc_n = grads
    plan = pb.plan
    steps, batch, hidden, h_out = pb.steps, pb.batch, pb.hidden, pb.h_out
    gx = pb.gx
    f32 = torch.float32
    has_proj = pb.w_hr is not None
    lengths = gx if pb.lengths is None else pb.lengths
    w_hr = pb.w_hh if pb.w_hr is None else pb.w_hr
    dgx = launch.empty(gx.shape, gx)
    dhr = launch.empty((steps, batch, h_out), gx, f32) if has_proj else dgx
    meta = {**pb.flags(), "HAS_PROJ": has_proj}
    grid = (plan.programs,)
    if plan.form == "stepwise":
        dh_state = dh_n.to(f32, copy=True)
        dc_state = dc_n.to(f32, copy=True)
        with launch.device_guard(gx):
            for s in range(steps):
                for phase_a, phase_b in BACKWARD_PHASES:
                    _lstm_bwd_kernel[grid](
                        acts, cs, pb.c0, pb.w_hh, w_hr, lengths, dout, dh_state, dc_state, dgx,
                        dhr, dh_state, dh_state, dc_state, gx, steps, batch, hidden, h_out, s, 1,
                        0, PHASE_A=phase_a, PHASE_B=phase_b, **meta)
        dh0, dc0 = dh_state.to(gx.dtype), dc_state.to(gx.dtype)
    else:
        dh0 = launch.empty((batch, h_out), gx)
        dc0 = launch.empty((batch, hidden), gx)
        dex = dh_n.to(f32, copy=True) if has_proj and not plan.local else dgx
        sync = launch.counters(pb)
        launch.launch(_lstm_bwd_kernel, grid, (
            acts, cs, pb.c0, pb.w_hh, w_hr, lengths, dout, dh_n, dc_n, dgx, dhr, dex, dh0, dc0,
            sync, steps, batch, hidden, h_out, 0, steps, forms.SPIN_LIMIT), {
            **meta, "PHASE_A": True, "PHASE_B": True}, pb, sync, "LSTM backward")
    h_prev = launch.previous_hidden(out, pb.h0, pb.lengths, pb.reverse)
    dw_hh = launch.weight_grad(dgx, h_prev)
    dw_hr = None
    if has_proj:
        # hp = o*tanh(c_t) is recomputed from the saved activations instead of being stored.
        hp = launch.zero_outside(acts[..., 3 * hidden:].to(f32) * torch.tanh(cs.to(f32)),
                                 pb.lengths)
        dw_hr = launch.weight_grad(dhr, hp).to(gx.dtype)
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
    return launch.run(sys.modules[__name__], gx, h0, c0, w_hh, w_hr, None, lengths=lengths,
                      reverse=reverse)
