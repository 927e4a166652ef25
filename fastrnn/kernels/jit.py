"""`@triton.jit` helpers every cell's kernels share: activations, the product, a program's tile,
variable-length masks, the state exchange through global memory and the grid barrier.

Dimensions: T time, B batch, H hidden (cell) size, H_out = P if P > 0 else H, N a generic column
count. A program owns BLOCK_B batch rows (batch tile `i_bt`) and, of them, BLOCK_H hidden units
with all their gates (hidden tile `i_ht`, NUM_HT tiles per batch tile) plus BLOCK_O columns of
H_out (the columns it produces when a product over the whole hidden state follows the cell update:
the LSTM projection and every backward's dh_{t-1}).
"""

import triton
import triton.language as tl

# The grid barrier's options, bits of one constexpr (the kernels' BARRIER; forms.barrier_bits).
BARRIER_JITTER = tl.constexpr(1)
BARRIER_POLL_LOAD = tl.constexpr(2)
# The barrier compiled out (no arrival, no wait): wrong results, for timing probes only
# (fastrnn.kernels.probe); no environment variable sets it.
BARRIER_NO_WAIT = tl.constexpr(4)


@triton.jit
def _dot(b_a, b_w, INPUT_PRECISION: tl.constexpr, DOT_FP32: tl.constexpr):
    """b_a @ b_w in fp32 accumulation with b_a cast to the weight's dtype (see forms.dot_meta)."""
    if DOT_FP32:
        b_out = tl.dot(b_a.to(tl.float32), b_w.to(tl.float32), input_precision=INPUT_PRECISION)
    else:
        b_out = tl.dot(b_a.to(b_w.dtype), b_w, input_precision=INPUT_PRECISION)
    return b_out


@triton.jit
def _sigmoid(x):
    # exp(-x) overflows to inf for x << 0, giving 1 / inf = 0: stable at both ends.
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def _tanh(x):
    # 2*sigmoid(2x) - 1 stays finite everywhere ((1 - e^-2x) / (1 + e^-2x) is inf/inf for
    # x <= -45) but cancels near 0: relative error about 6e-8/|x| in fp32, 5e-5 at x = 1e-3. Below
    # |x| = 0.25 the odd Taylor polynomial of degree 9 (error < 2e-8 relative) takes over.
    x2 = x * x
    series = x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0
                                                                     + x2 * (62.0 / 2835.0)))))
    return tl.where(tl.abs(x) < 0.25, series, 2.0 * _sigmoid(2.0 * x) - 1.0)


@triton.jit
def _relu(x):
    # tl.maximum(NaN, 0) is 0 on GPUs (fmax); torch.relu propagates NaN, and so do we.
    return tl.where(x != x, x, tl.maximum(x, 0.0))


@triton.jit
def _program_tile(B, H, H_OUT, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
                  BLOCK_O: tl.constexpr, NUM_HT: tl.constexpr):
    """This program's batch tile and slices: returns (i_bt, i_b, m_b, i_h, m_h, i_o, m_o)."""
    pid = tl.program_id(0)
    i_bt = pid // NUM_HT
    i_ht = pid % NUM_HT
    i_b = i_bt * BLOCK_B + tl.arange(0, BLOCK_B)
    i_h = i_ht * BLOCK_H + tl.arange(0, BLOCK_H)
    i_o = i_ht * BLOCK_O + tl.arange(0, BLOCK_O)
    return i_bt, i_b, i_b < B, i_h, i_h < H, i_o, i_o < H_OUT


@triton.jit
def _row_lengths(len_ptr, i_b, m_b, HAS_LENGTHS: tl.constexpr):
    """(BLOCK_B,) sequence lengths of a tile's rows (len_ptr: (B,) int64), loaded once per program;
    a placeholder without lengths (then _valid_rows ignores it)."""
    if HAS_LENGTHS:
        b_len = tl.load(len_ptr + i_b, mask=m_b, other=0)
    else:
        b_len = i_b
    return b_len


@triton.jit
def _keep_finished(m_valid, b_new, b_old, HAS_LENGTHS: tl.constexpr):
    """b_new in rows still inside their sequence at this step, b_old in finished rows.

    Without lengths every row is valid (a tile's padding rows are never stored), so no select is
    emitted; that also sidesteps an LLVM SLP-vectorizer assertion triton 3.9 hits on the fp32
    (FMA) backward when the select is over the plain batch mask.
    """
    if HAS_LENGTHS:
        b_out = tl.where(m_valid, b_new, b_old)
    else:
        b_out = b_new
    return b_out


@triton.jit
def _step_time(s, T, REVERSE: tl.constexpr, BACKWARD: tl.constexpr):
    """(t, t_prev) of the s-th step a pass runs: the forward processes j = s, the backward
    j = T-1-s; j runs at t = j (or T-1-j in reverse); t_prev is the time the state entering step t
    came from (-1 or T before the first step)."""
    if BACKWARD:
        j = T - 1 - s
    else:
        j = s
    if REVERSE:
        t = T - 1 - j
        t_prev = t + 1
    else:
        t = j
        t_prev = t - 1
    return t, t_prev


@triton.jit
def _store_step(out_ptr, t, B, N, i_b, m_b, i_n, m_n, b_x, m_valid):
    """Store columns i_n of step t of a per-step result (out_ptr: (T, B, N), e.g. the output): b_x
    in valid rows, 0 past a sequence's end (m_valid (BLOCK_B, 1))."""
    p_out = out_ptr + t.to(tl.int64) * B * N + i_b[:, None] * N + i_n[None, :]
    tl.store(p_out, tl.where(m_valid, b_x, 0.0).to(out_ptr.dtype.element_ty),
             mask=m_b[:, None] & m_n[None, :])


@triton.jit
def _load_rows(x_ptr, N, i_b, m_b, i_n, m_n, SHARED: tl.constexpr):
    """(BLOCK_B, BLOCK_N) fp32 columns i_n of a (B, N) tensor. SHARED: the values were written by
    other programs of this launch, so read them from L2 (`.cg`), never from a stale L1 line."""
    p_x = x_ptr + i_b[:, None] * N + i_n[None, :]
    m_x = m_b[:, None] & m_n[None, :]
    if SHARED:
        b_x = tl.load(p_x, mask=m_x, other=0.0, cache_modifier=".cg")
    else:
        b_x = tl.load(p_x, mask=m_x, other=0.0)
    return b_x.to(tl.float32)


@triton.jit
def _load_step(x_ptr, t, B, N, i_b, m_b, i_n, m_n, SHARED: tl.constexpr):
    """(BLOCK_B, BLOCK_N) fp32 columns i_n of step t of x_ptr (T, B, N); SHARED as in _load_rows."""
    return _load_rows(x_ptr + t.to(tl.int64) * B * N, N, i_b, m_b, i_n, m_n, SHARED)


@triton.jit
def _store_rows(x_ptr, N, i_b, m_b, i_n, m_n, b_x):
    """Store b_x (BLOCK_B, BLOCK_N) into columns i_n of a (B, N) tensor in its dtype."""
    tl.store(x_ptr + i_b[:, None] * N + i_n[None, :], b_x.to(x_ptr.dtype.element_ty),
             mask=m_b[:, None] & m_n[None, :])


@triton.jit
def _load_previous_state(out_ptr, h0_ptr, t_prev, T, B, N, i_b, m_b, b_len, i_n, m_n,
                         HAS_LENGTHS: tl.constexpr):
    """(BLOCK_B, BLOCK_N) the state h_{t-1} each row enters a step with, columns i_n, from global
    memory: the output of the previous processed step t_prev (out_ptr: (T, B, N), written by every
    program of the launch, so read through L2) where that step was inside the row's sequence, else
    h0 (h0_ptr: (B, N)): before the first step, and in reverse before a sequence's own last step.
    Rows that are not inside the current step get a value that is never used.
    """
    # Broadcast t_prev to a row block before comparing: the interpreter mishandles masks built
    # from a scalar predicate.
    t_prev_b = i_b * 0 + t_prev
    m_prev = m_b & (t_prev_b >= 0) & (t_prev_b < T)
    if HAS_LENGTHS:
        m_prev = m_prev & (t_prev_b < b_len)
    # Clamped so that even the masked-off address stays inside the tensor.
    t_load = tl.minimum(tl.maximum(t_prev, 0), T - 1)
    b_prev = _load_step(out_ptr, t_load, B, N, i_b, m_prev, i_n, m_n, True)
    b_h0 = _load_rows(h0_ptr, N, i_b, m_b & (m_prev == 0), i_n, m_n, False)
    return tl.where(m_prev[:, None], b_prev, b_h0)


@triton.jit
def _load_acquire(p_x):
    """*p_x (a scalar int32 pointer) read with an acquire load at GPU scope: PTX
    `ld.acquire.gpu.global.b32`, which Triton has no operation for (tl.load has no memory
    semantics, tl.atomic_* are read-modify-writes). Every thread of the program executes it; loads
    of one address by a warp are one request. Not pure, so the compiler neither merges repeated
    polls nor hoists one out of a loop. Inline PTX: never under the interpreter (forms.plan_meta)."""
    return tl.inline_asm_elementwise("ld.acquire.gpu.global.b32 $0, [$1];", "=r,l", [p_x],
                                     dtype=tl.int32, is_pure=False, pack=1)


@triton.jit
def _poll(sync_ptr, POLL_LOAD: tl.constexpr):
    """The barrier counter as an acquire read: an acquire load (POLL_LOAD) or, by default, an
    acquire atomic add of 0 (the compiler predicates it on one thread and broadcasts the value
    through shared memory with a CTA barrier, on every poll)."""
    if POLL_LOAD:
        seen = _load_acquire(sync_ptr)
    else:
        seen = tl.atomic_add(sync_ptr, 0, sem="acquire", scope="gpu")
    return seen


@triton.jit
def _grid_sync(sync_ptr, target, spin_limit, POLL_LOAD: tl.constexpr):
    """Barrier of the NUM_HT programs of one batch tile, the `target // NUM_HT`-th of the launch.

    sync_ptr: this batch tile's int32 counter, zeroed before the launch and only ever increased,
    so no reset can race with a late reader. Every program adds 1 with release semantics after
    its stores (the CTA barrier first makes every thread's stores part of that release), then
    polls with acquire semantics until all NUM_HT arrived (target = barriers so far * NUM_HT).
    The poll is bounded: after `spin_limit` polls the program sets the counter's bit 30, which
    releases every waiter of this tile now and at every later barrier (they all compare below
    2^30), and the host turns the bit into an error. A GPU never hangs on a program that is not
    resident; the cooperative launch makes that a bug, not a scheduling accident.

    POLL_LOAD (FASTRNN_BARRIER_POLL=load, forms.barrier_poll) polls with an acquire load instead
    of an atomic: each thread polls and leaves the loop on its own. The bit-30 error is decided by
    the thread that runs the scalar atomic_or (thread 0, as the compiler predicates it), the one
    that also arrived: if it saw every arrival, the CTA barrier after the loop extends its acquire
    to the whole program, so a thread that gave up polling still reads the released stores.
    """
    tl.debug_barrier()
    tl.atomic_add(sync_ptr, 1, sem="release", scope="gpu")
    seen = _poll(sync_ptr, POLL_LOAD)
    spins = 0
    while (seen < target) & (spins < spin_limit):
        seen = _poll(sync_ptr, POLL_LOAD)
        spins += 1
    if seen < target:
        tl.atomic_or(sync_ptr, 1 << 30, sem="relaxed", scope="gpu")
    tl.debug_barrier()


@triton.jit
def _sync_if(SYNC: tl.constexpr, sync_ptr, barriers, NUM_HT: tl.constexpr, spin_limit,
             BARRIER: tl.constexpr):
    """The `barriers`-th grid barrier of this launch when SYNC (cooperative form), else nothing;
    returns the count of barriers passed.

    BARRIER: the barrier's options as BARRIER_* bits (the kernels' BARRIER constexpr,
    forms.plan_meta; 0 is the plain barrier). BARRIER_JITTER (tests only,
    FASTRNN_BARRIER_JITTER=1) makes each program arrive late by a pseudo-random number of polls,
    so that a GPU test can show the barrier holds when programs do not run in lockstep.
    BARRIER_POLL_LOAD polls with an acquire load (_grid_sync). BARRIER_NO_WAIT compiles the
    barrier out: wrong results, for timing probes only (fastrnn.kernels.probe), never set by a
    user-facing switch.
    """
    if SYNC:
        if BARRIER_JITTER & BARRIER:  # the global first: the interpreter's int has no & constexpr
            delay = (tl.program_id(0) * 7919 + barriers * 104729) % 97
            for _ in range(delay):
                tl.atomic_add(sync_ptr, 0, sem="relaxed", scope="gpu")
        if (BARRIER_NO_WAIT & BARRIER) == 0:
            _grid_sync(sync_ptr, (barriers + 1) * NUM_HT, spin_limit,
                       (BARRIER_POLL_LOAD & BARRIER) != 0)
    return barriers + 1


@triton.jit
def _add_dout(b_dh, dout_ptr, t, B, N, i_b, m_b, i_n, m_n):
    """dh of step t: the fp32 carry b_dh from later steps plus the output's gradient dout_t
    (dout_ptr: (T, B, N))."""
    return b_dh + _load_step(dout_ptr, t, B, N, i_b, m_b, i_n, m_n, False)


@triton.jit
def _load_weight(w_ptr, stride_k, stride_n, K, i_n, m_n, BLOCK_K: tl.constexpr,
                 SPLIT: tl.constexpr):
    """A weight block for a product over K: element (k, n) is w_ptr[k*stride_k + n*stride_n] for
    k < K and columns i_n, 0 elsewhere (which keeps padded units at exactly 0), shaped
    (SPLIT, BLOCK_K // SPLIT, BLOCK_N): K split into SPLIT slabs for _mm."""
    i_s = tl.arange(0, SPLIT)
    i_kk = tl.arange(0, BLOCK_K // SPLIT)
    i_k = i_s[:, None, None] * (BLOCK_K // SPLIT) + i_kk[None, :, None]
    p_w = w_ptr + i_k * stride_k + i_n[None, None, :] * stride_n
    return tl.load(p_w, mask=(i_k < K) & m_n[None, None, :], other=0.0)


@triton.jit
def _load_weights(w_ptr, stride_k, stride_n, K, i_n, m_n, BLOCK_K: tl.constexpr,
                  SPLIT: tl.constexpr, NUM_K: tl.constexpr):
    """The weight blocks of a product over K as a tuple of NUM_K chunks of BLOCK_K rows (each a
    _load_weight block), loaded once and held on chip. Chunks keep K = 768 or 1536 from padding to
    a power of two, and let the product stage its other operand one chunk at a time."""
    b_ws = ()
    for c in tl.static_range(NUM_K):
        b_ws = b_ws + (_load_weight(w_ptr + c * BLOCK_K * stride_k, stride_k, stride_n,
                                    K - c * BLOCK_K, i_n, m_n, BLOCK_K, SPLIT),)
    return b_ws


@triton.jit
def _weight_chunk(b_ws, c_st: tl.constexpr, c, w_ptr, stride_k, stride_n, K, i_n, m_n,
                  BLOCK_K: tl.constexpr, SPLIT: tl.constexpr, STREAM: tl.constexpr):
    """Chunk c of a product's weights: entry c_st of the resident tuple b_ws (_load_weights; then
    c == c_st), or, STREAM (stepwise), loaded now from global memory (L2 after the first program).

    Stepwise walks the chunks in a real loop (c runtime, c_st 0): unrolled, the compiler stages every
    chunk's operands at once (260 KiB of shared memory at H = 2048). The resident tuple can only be
    indexed by a compile-time c_st, so resident products unroll (`python -m fastrnn.kernels.aot`).
    """
    if STREAM:
        b_w = _load_weight(w_ptr + c * BLOCK_K * stride_k, stride_k, stride_n, K - c * BLOCK_K,
                           i_n, m_n, BLOCK_K, SPLIT)
    else:
        b_w = b_ws[c_st]
    return b_w


@triton.jit
def _chunk_mm(b_a, b_ws, c_st: tl.constexpr, c, w_ptr, stride_k, stride_n, K, i_n, m_n,
              BLOCK_B: tl.constexpr, BLOCK_K: tl.constexpr, SPLIT: tl.constexpr,
              STREAM: tl.constexpr, INPUT_PRECISION: tl.constexpr, DOT_FP32: tl.constexpr):
    """b_a (BLOCK_B, BLOCK_K), the c-th K chunk of a product's other operand, @ the weights' chunk
    c (_weight_chunk, whose tuple entry is c_st): (BLOCK_B, N) in fp32."""
    b_w = _weight_chunk(b_ws, c_st, c, w_ptr, stride_k, stride_n, K, i_n, m_n, BLOCK_K, SPLIT,
                        STREAM)
    return _mm(b_a, b_w, BLOCK_B, BLOCK_K, SPLIT, INPUT_PRECISION, DOT_FP32)


@triton.jit
def _mm(b_a, b_w, BLOCK_B: tl.constexpr, BLOCK_K: tl.constexpr, SPLIT: tl.constexpr,
        INPUT_PRECISION: tl.constexpr, DOT_FP32: tl.constexpr):
    """b_a (BLOCK_B, BLOCK_K) @ w, w from _load_weight (SPLIT, BLOCK_K // SPLIT, N): (BLOCK_B, N)
    in fp32.

    Split-K: with a small batch tile and few columns (M = N = 16) the warps of a program cannot
    share the output tile, so a plain product gives every warp the whole K-long operand strip and
    spills at K = 1024 (255 registers). As SPLIT batched products over K slabs summed afterwards,
    the slabs spread over the warps: 128 registers and no spill at K = 1024 with 8 warps
    (python -m fastrnn.kernels.aot).
    """
    if SPLIT == 1:
        b_out = _dot(b_a, tl.reshape(b_w, (b_w.shape[1], b_w.shape[2])), INPUT_PRECISION,
                     DOT_FP32)
    else:
        b_a3 = tl.permute(tl.reshape(b_a, (BLOCK_B, SPLIT, BLOCK_K // SPLIT)), (1, 0, 2))
        b_out = tl.sum(_dot(b_a3, b_w, INPUT_PRECISION, DOT_FP32), axis=0)
    return b_out


@triton.jit
def _valid_rows(b_len, t, m_b, HAS_LENGTHS: tl.constexpr):
    """(BLOCK_B, 1) mask of the rows inside their sequence at step t."""
    if HAS_LENGTHS:
        m_valid = m_b & (t < b_len)
    else:
        m_valid = m_b
    return m_valid[:, None]

