"""Elman RNN recurrence kernels (tanh or relu; forward and backward, every form), held to
fastrnn.reference.rnn.

Dimensions: T time, B batch, H hidden size, G = 1. A program owns BLOCK_B batch rows and BLOCK_H
hidden units (BLOCK_O = BLOCK_H: its columns of h); BLOCK_HF = BLOCK_K is the padded H, BLOCK_KC
the K extent a streamed (stepwise) product stages. The forms (persistent: LOCAL, cooperative:
SYNC, stepwise: STEPWISE) are described in lstm.py.

Forward step: h_t = act(gx_t + h_{t-1} W_hh^T) for the program's units, stored to out[t], which is
also the exchange buffer.
Backward step: A  dpre = dh * act'(pre), with act' from the output itself (tanh: 1 - h^2, relu:
h > 0), so nothing but the output is saved -> dgx[t], also the exchange buffer;
B  dh_{t-1} = dpre W_hh (every program's dpre). dW_hh = sum dpre^T h_{t-1} after the loop.
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
    _relu,
    _row_lengths,
    _step_time,
    _store_rows,
    _store_step,
    _sync_if,
    _tanh,
    _valid_rows,
)

CELL = "rnn"
# Every backward step has two phases: dpre (A) and dh_{t-1} = dpre W_hh (B).
BACKWARD_PHASES = ((True, False), (False, True))


@triton.jit
def _rnn_cell_fwd(gx_ptr, t, B, H, b_gh, i_b, m_b, i_h, m_h, RELU: tl.constexpr):
    """h_t of the program's (rows, units) from the fp32 product b_gh = h_{t-1} W_hh^T (gx_ptr:
    (T, B, H) input projections, both biases included); padded units are 0."""
    m_bh = m_b[:, None] & m_h[None, :]
    p_gx = gx_ptr + t.to(tl.int64) * B * H + i_b[:, None] * H + i_h[None, :]
    b_pre = tl.load(p_gx, mask=m_bh, other=0.0).to(tl.float32) + b_gh
    if RELU:
        b_h = _relu(b_pre)
    else:
        b_h = _tanh(b_pre)
    return tl.where(m_h[None, :], b_h, 0.0)


@triton.jit
def _rnn_cell_bwd(
    out_ptr,  # (T, B, H) outputs: h_t inside each sequence
    dgx_ptr,  # (T, B, H) out
    t,
    B,
    H,
    b_dh,
    i_b,
    m_b,
    i_h,
    m_h,
    m_valid,
    RELU: tl.constexpr,
):
    """Pre-activation gradient of the program's (rows, units) at step t (zero outside the
    sequence and in padded units); stores dgx_t and returns it in fp32."""
    m_bh = m_b[:, None] & m_h[None, :]
    o_t = t.to(tl.int64) * B * H + i_b[:, None] * H + i_h[None, :]
    b_h = tl.load(out_ptr + o_t, mask=m_bh, other=0.0).to(tl.float32)
    if RELU:
        # torch's threshold_backward: zero where the output is <= 0, the gradient elsewhere, so
        # a NaN output (NaN <= 0 is false) passes it, as in torch.nn.
        b_dpre = tl.where(b_h <= 0.0, 0.0, b_dh)
    else:
        b_dpre = b_dh * (1.0 - b_h * b_h)
    b_dpre = tl.where(m_valid & m_h[None, :], b_dpre, 0.0)
    tl.store(dgx_ptr + o_t, b_dpre.to(dgx_ptr.dtype.element_ty), mask=m_bh)
    return b_dpre


@triton.jit(do_not_specialize=["T", "S0", "STEPS", "spin_limit"])
def _rnn_fwd_kernel(
    gx_ptr,  # (T, B, H)
    h0_ptr,  # (B, H): the state a sequence starts from
    hin_ptr,  # (B, H) the carried h this launch starts from: h0, or (STEPWISE) fp32 state
    w_hh_ptr,  # (H, H)
    len_ptr,  # (B,) int64 (HAS_LENGTHS)
    out_ptr,  # (T, B, H); also the exchange buffer of h
    hn_ptr,  # (B, H) the carried h at the end: h_n, or (STEPWISE) the fp32 state
    sync_ptr,  # (batch tiles,) int32 barrier counters, zeroed per launch (SYNC)
    T,
    B,
    H,
    S0,
    STEPS,
    spin_limit,
    RELU: tl.constexpr,
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
):
    """Forward steps S0 .. S0+STEPS-1."""
    i_bt, i_b, m_b, i_h, m_h, _, _ = _program_tile(B, H, H, BLOCK_B, BLOCK_H, BLOCK_O, NUM_HT)
    i_k = tl.arange(0, BLOCK_K)
    # Resident W_hh^T slice over K = H in chunks: h (BLOCK_B rows, M >= 16) @ W^T. Stepwise
    # streams the chunks.
    b_w = ()
    if not STEPWISE:
        b_w = _load_weights(w_hh_ptr, 1, H, H, i_h, m_h, BLOCK_K, SPLIT_K, NUM_K)
    b_len = _row_lengths(len_ptr, i_b, m_b, HAS_LENGTHS)
    b_h = _load_rows(hin_ptr, H, i_b, m_b, i_h, m_h, False)
    p_sync = sync_ptr + i_bt
    barriers = 0
    for s in range(S0, S0 + STEPS):
        t, t_prev = _step_time(s, T, REVERSE, False)
        m_valid = _valid_rows(b_len, t, m_b, HAS_LENGTHS)
        if LOCAL:
            b_gh = _mm(b_h, b_w[0], BLOCK_B, BLOCK_K, SPLIT_K, INPUT_PRECISION, DOT_FP32)
        else:
            b_gh = tl.zeros((BLOCK_B, BLOCK_H), dtype=tl.float32)
            for c_dyn in range(NUM_K if STEPWISE else 1):
                for c_st in tl.static_range(1 if STEPWISE else NUM_K):
                    c = c_dyn + c_st  # stepwise: a loop over chunks; resident: unrolled
                    b_a = _load_previous_state(out_ptr, h0_ptr, t_prev, T, B, H, i_b, m_b, b_len,
                                               c * BLOCK_K + i_k, c * BLOCK_K + i_k < H, HAS_LENGTHS)
                    b_gh += _chunk_mm(b_a, b_w, c_st, c, w_hh_ptr, 1, H, H, i_h, m_h, BLOCK_B, BLOCK_K,
                                      SPLIT_K, STEPWISE, INPUT_PRECISION, DOT_FP32)
        b_h_new = _rnn_cell_fwd(gx_ptr, t, B, H, b_gh, i_b, m_b, i_h, m_h, RELU)
        _store_step(out_ptr, t, B, H, i_b, m_b, i_h, m_h, b_h_new, m_valid)
        b_h = _keep_finished(m_valid, b_h_new, b_h, HAS_LENGTHS)
        barriers = _sync_if(SYNC, p_sync, barriers, NUM_HT, spin_limit, BARRIER)
    _store_rows(hn_ptr, H, i_b, m_b, i_h, m_h, b_h)


@triton.jit(do_not_specialize=["T", "S0", "STEPS", "spin_limit"])
def _rnn_bwd_kernel(
    out_ptr,  # (T, B, H)
    w_hh_ptr,  # (H, H)
    len_ptr,  # (B,) int64 (HAS_LENGTHS)
    dout_ptr,  # (T, B, H)
    dhn_ptr,  # (B, H) the carried dh this launch starts from: dh_n, or (STEPWISE) fp32 state
    dgx_ptr,  # (T, B, H) out; also the exchange buffer of phase B
    dh0_ptr,  # (B, H) out: dh0, or (STEPWISE) the fp32 state
    sync_ptr,  # (batch tiles,) int32 barrier counters, zeroed per launch (SYNC)
    T,
    B,
    H,
    S0,
    STEPS,
    spin_limit,
    RELU: tl.constexpr,
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
    # Resident W_hh[:, own units] over K = H in chunks: dh_{t-1} = dpre @ W_hh. Stepwise streams
    # the chunks.
    b_w = ()
    if PHASE_B and not STEPWISE:
        b_w = _load_weights(w_hh_ptr, H, 1, H, i_h, m_h, BLOCK_HF, SPLIT_HF, NUM_HF)
    b_len = _row_lengths(len_ptr, i_b, m_b, HAS_LENGTHS)
    b_dh = _load_rows(dhn_ptr, H, i_b, m_b, i_h, m_h, False)
    p_sync = sync_ptr + i_bt
    barriers = 0
    for s in range(S0, S0 + STEPS):
        t = _step_time(s, T, REVERSE, True)[0]
        m_valid = _valid_rows(b_len, t, m_b, HAS_LENGTHS)
        if PHASE_A:
            b_dht = _add_dout(b_dh, dout_ptr, t, B, H, i_b, m_b, i_h, m_h)
            b_dpre = _rnn_cell_bwd(out_ptr, dgx_ptr, t, B, H, b_dht, i_b, m_b, i_h, m_h, m_valid,
                                   RELU)
            barriers = _sync_if(SYNC, p_sync, barriers, NUM_HT, spin_limit, BARRIER)
        if PHASE_B:
            if LOCAL:
                b_dh_new = _mm(b_dpre, b_w[0], BLOCK_B, BLOCK_HF, SPLIT_HF, INPUT_PRECISION,
                               DOT_FP32)
            else:
                b_dh_new = tl.zeros((BLOCK_B, BLOCK_H), dtype=tl.float32)
                for c_dyn in range(NUM_HF if STEPWISE else 1):
                    for c_st in tl.static_range(1 if STEPWISE else NUM_HF):
                        c = c_dyn + c_st  # stepwise: a loop over chunks; resident: unrolled
                        i_kc = c * BLOCK_HF + i_hf
                        b_a = _load_step(dgx_ptr, t, B, H, i_b, m_b, i_kc, i_kc < H, True)
                        b_dh_new += _chunk_mm(b_a, b_w, c_st, c, w_hh_ptr, H, 1, H, i_h, m_h, BLOCK_B,
                                              BLOCK_HF, SPLIT_HF, STEPWISE, INPUT_PRECISION, DOT_FP32)
            b_dh_new = tl.where(m_h[None, :], b_dh_new, 0.0)
            b_dh = _keep_finished(m_valid, b_dh_new, b_dh, HAS_LENGTHS)
    if PHASE_B:
        _store_rows(dh0_ptr, H, i_b, m_b, i_h, m_h, b_dh)


def forward(pb, store):
    """Launch the forward; returns ((output, h_n), saved tensors for backward: none, the output
    itself carries the activation)."""
    del store  # the output is all the backward needs
    plan = pb.plan
    steps, batch, hidden = pb.steps, pb.batch, pb.hidden
    gx = pb.gx
    out = launch.empty((steps, batch, hidden), gx)
    lengths = gx if pb.lengths is None else pb.lengths
    meta = {**pb.flags(), "RELU": pb.nonlinearity == "relu"}
    grid = (plan.programs,)
    if plan.form == "stepwise":
        h_state = pb.h0.to(torch.float32, copy=True)
        with launch.device_guard(gx):
            for s in range(steps):
                _rnn_fwd_kernel[grid](gx, pb.h0, h_state, pb.w_hh, lengths, out, h_state, gx,
                                      steps, batch, hidden, s, 1, 0, **meta)
        h_n = h_state.to(gx.dtype)
    else:
        h_n = launch.empty((batch, hidden), gx)
        sync = launch.counters(pb)
        launch.launch(_rnn_fwd_kernel, grid, (
            gx, pb.h0, pb.h0, pb.w_hh, lengths, out, h_n, sync, steps, batch, hidden, 0, steps,
            forms.SPIN_LIMIT), meta, pb, sync, "RNN forward")
    return (out, h_n), ()


def backward(pb, saved, outputs, grads):
    """Launch the backward; returns (dgx, dh0, None, dw_hh, None, None)."""
    del saved
    out = outputs[0]
    dout, dh_n = grads
    plan = pb.plan
    steps, batch, hidden = pb.steps, pb.batch, pb.hidden
    gx = pb.gx
    lengths = gx if pb.lengths is None else pb.lengths
    meta = {**pb.flags(), "RELU": pb.nonlinearity == "relu"}
    dgx = launch.empty(gx.shape, gx)
    grid = (plan.programs,)
    if plan.form == "stepwise":
        dh_state = dh_n.to(torch.float32, copy=True)
        with launch.device_guard(gx):
            for s in range(steps):
                for phase_a, phase_b in BACKWARD_PHASES:
                    _rnn_bwd_kernel[grid](out, pb.w_hh, lengths, dout, dh_state, dgx, dh_state,
                                          gx, steps, batch, hidden, s, 1, 0, PHASE_A=phase_a,
                                          PHASE_B=phase_b, **meta)
        dh0 = dh_state.to(gx.dtype)
    else:
        dh0 = launch.empty((batch, hidden), gx)
        sync = launch.counters(pb)
        launch.launch(_rnn_bwd_kernel, grid, (
            out, pb.w_hh, lengths, dout, dh_n, dgx, dh0, sync, steps, batch, hidden, 0, steps,
            forms.SPIN_LIMIT), {**meta, "PHASE_A": True, "PHASE_B": True}, pb, sync,
            "RNN backward")
    h_prev = launch.previous_hidden(out, pb.h0, pb.lengths, pb.reverse)
    dw_hh = launch.weight_grad(dgx, h_prev)
    return dgx, dh0, None, dw_hh, None, None


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
        >>> out, h = fastrnn.kernels.rnn_recurrence(gx, h0, w_hh, "tanh")
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
    return launch.run(sys.modules[__name__], gx, h0, None, w_hh, None, None, lengths=lengths,
                      reverse=reverse, nonlinearity=nonlinearity)
