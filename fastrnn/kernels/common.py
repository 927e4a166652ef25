"""What the LSTM, GRU and RNN kernels share: activations, the per-step product, form selection,
host buffers and the one autograd.Function every cell runs through.

Dimensions: T time, B batch, H hidden (cell) size, P projection size (LSTM only),
H_out = P if P > 0 else H (width of the hidden state h), G gates (LSTM 4, GRU 3, RNN 1).

Forms (see `select_form`):
    persistent   one program per batch tile of BLOCK_B rows runs the whole time loop; W_hh (and W_hr)
                 is loaded on chip once, h and c live in fp32 registers. Wins while the padded
                 weights fit one SM: the per-step cost is one on-chip product, no launch, no global
                 round trip of the state.
    alternating  per step a tiled product kernel (`_matmul_kernel`, fp32 accumulation, masked
                 epilogue) plus one pointwise kernel per cell that applies the gates to a
                 (batch tile, hidden tile) with all gates of a hidden unit in the same program.
                 Works for every size and batch: the fallback.
Both forms call the same `@triton.jit` step functions of each cell (`_<cell>_step_fwd/bwd`), so the
cell math and the variable-length masking exist once per cell.

Store vs recompute (backward): the forward stores the gate activations (and LSTM's cell state) in
the I/O dtype when a gradient is needed. Recomputing them would repeat the h_{t-1} W_hh^T product of
every step on the sequential critical path of the backward, doubling its latency-bound cost, for a
memory saving that cuDNN's own reserve space does not make either. The saved set per step is G*H
(LSTM adds H for c_t; GRU stores r, z, n and W_hn h + b_hn, 4H) in the I/O dtype.

Not implemented: the persistent form split across programs with a grid barrier per step (design.md)
for weights beyond one SM; those sizes run the alternating form. `python -m fastrnn.kernels.aot`
compiles every kernel for sm_90 without a GPU and reports registers, spills and shared memory.

Forcing a form (tests, benchmarks): `with fastrnn.kernels.use_form("persistent"):` or the environment
variable FASTRNN_KERNEL_FORM=persistent|alternating; the context manager wins over the variable.
"""

import contextlib
import dataclasses
import os
import threading
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from fastrnn.backends import triton_interpreter_enabled

FORMS = ("persistent", "alternating")
FORM_ENV_VAR = "FASTRNN_KERNEL_FORM"
# Padded W_hh (+ W_hr) bytes one program keeps on chip in the persistent form: half of an H100/H200
# SM's 256 KiB register file (the other half holds h, c, the gate blocks and the saved-activation
# stores). At this budget the default persistent configurations compile for sm_90 with at most
# ~400 bytes of spill per thread (fastrnn.kernels.aot); not yet timed against the alternating form.
PERSISTENT_WEIGHT_BYTES = 128 * 1024
# IEEE fp32 (FMA) products: largest padded K of a persistent program (see select_form).
FP32_PERSISTENT_MAX_K = 64
# Batch rows per persistent program; tl.dot needs M >= 16 on GPUs, so this is also the minimum.
PERSISTENT_BLOCK_B = 16
# Batch above which the alternating form runs: one wave of 16-row programs over 132 SMs (an
# unmeasured choice; beyond it persistent programs queue behind each other).
PERSISTENT_MAX_BATCH = 16 * 132

_context = threading.local()


def _debug_poison():
    """Fill fresh outputs with NaN so an element a kernel forgot to write fails the comparison."""
    return os.environ.get("FASTRNN_POISON", "0") not in ("", "0")


def empty(shape, like, dtype=None):
    """torch.empty on like's device, NaN-poisoned under FASTRNN_POISON=1 (the tests set it)."""
    out = torch.empty(shape, device=like.device, dtype=dtype or like.dtype)
    if _debug_poison() and out.is_floating_point():
        out.fill_(float("nan"))
    return out


@contextlib.contextmanager
def use_form(form):
    """Force the kernel form ('persistent', 'alternating', or None for automatic) in this block.

    Example:
        >>> with fastrnn.kernels.use_form("alternating"):
        ...     out, h, c = fastrnn.kernels.lstm_recurrence(gx, h0, c0, w_hh)
    """
    if form is not None and form not in FORMS:
        raise ValueError(f"Unknown kernel form {form!r}. Select from {FORMS} or None.")
    previous = getattr(_context, "form", None)
    _context.form = form
    try:
        yield
    finally:
        _context.form = previous


@contextlib.contextmanager
def record_forms():
    """Collect the kernel form of every recurrence run in this block (benchmark rows record it).

    Yields a list that gets one dict per kernel call: {'cell': 'lstm'|'gru'|'rnn', 'pass':
    'forward'|'backward', 'form': one of FORMS, 'reason': why that form ran}.

    Example:
        >>> with fastrnn.kernels.record_forms() as forms:
        ...     out, (h, c) = lstm(x)
        >>> forms[0]["form"]
        'persistent'
    """
    records = []
    stack = _context.__dict__.setdefault("recorders", [])
    stack.append(records)
    try:
        yield records
    finally:
        stack.remove(records)


def note_form(cell, pass_name, form, reason):
    """Append one kernel call to every active `record_forms` list."""
    for records in getattr(_context, "recorders", ()):
        records.append({"cell": cell, "pass": pass_name, "form": form, "reason": reason})


def forced_form():
    """The form forced by `use_form` or FASTRNN_KERNEL_FORM, else None."""
    form = getattr(_context, "form", None)
    if form is not None:
        return form
    env = os.environ.get(FORM_ENV_VAR, "").strip().lower()
    if env in ("", "auto"):
        return None
    if env not in FORMS:
        raise ValueError(f"{FORM_ENV_VAR}={env!r}: select from {FORMS} or 'auto'.")
    return env


def pad(n):
    """Padded block extent: a power of two (tl.arange) and at least 16 (tl.dot on GPUs)."""
    return max(16, triton.next_power_of_2(n))


def persistent_weight_bytes(gates, hidden, h_out, proj, dtype):
    """On-chip bytes of the padded weights one persistent program holds."""
    size = torch.empty((), dtype=dtype).element_size()
    elements = gates * pad(hidden) * pad(h_out) + (pad(proj) * pad(hidden) if proj else 0)
    return elements * size


def select_form(gates, hidden, h_out, proj, dtype, capability, batch):
    """Pick 'persistent' or 'alternating' for one recurrence.

    Args:
        gates: G (4 LSTM, 3 GRU, 1 RNN).  hidden: H.  h_out: H_out.  proj: P (0 if none).
        dtype: I/O dtype.  capability: (major, minor) of the CUDA device, None on the interpreter.
        batch: B.
    Returns:
        'persistent' when the padded weights fit one SM (PERSISTENT_WEIGHT_BYTES; for IEEE fp32
        also padded H, H_out <= FP32_PERSISTENT_MAX_K) and the batch is not so large that per-step
        tiles over the batch win; 'alternating' otherwise. Resulting limits on H (no projection):
        LSTM and GRU H <= 64 in fp32, <= 128 in fp16/bf16; RNN H <= 64 in fp32, <= 256 in
        fp16/bf16. A form forced
        by `use_form` / FASTRNN_KERNEL_FORM wins.
    """
    forced = forced_form()
    if forced is not None:
        return forced
    del capability  # every supported device (sm80+) has the same 256 KiB register file per SM
    fits = persistent_weight_bytes(gates, hidden, h_out, proj, dtype) <= PERSISTENT_WEIGHT_BYTES
    if dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32:
        # IEEE fp32 products run on FMA units, whose operand layout keeps a K-long strip per
        # thread: past K = 64 they spill to local memory (seen in `python -m fastrnn.kernels.aot`).
        fits = fits and max(pad(hidden), pad(h_out)) <= FP32_PERSISTENT_MAX_K
    return "persistent" if fits and batch <= PERSISTENT_MAX_BATCH else "alternating"


GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def choose_form(cell, hidden, proj, dtype, device, batch):
    """(form, reason): the kernel form a recurrence of these sizes runs on `device`, and why.

    Args:
        cell: 'lstm', 'gru' or 'rnn'.  hidden: H.  proj: P (LSTM projection, 0 if none).
        dtype: I/O dtype.  device: torch.device (CUDA, or CPU under the interpreter).  batch: B.
    """
    forced = forced_form()
    if forced is not None:
        return forced, "forced by use_form() or " + FORM_ENV_VAR
    device = torch.device(device)
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    h_out = proj or hidden
    form = select_form(GATES[cell], hidden, h_out, proj, dtype, capability, batch)
    if form == "persistent":
        return form, (f"the padded weights fit one program's on-chip budget "
                      f"({PERSISTENT_WEIGHT_BYTES // 1024} KiB) and B={batch} fits one wave")
    return form, "the padded weights exceed one program's on-chip budget, or the batch is too large"


def persistent_warps(weight_elements, dtype):
    """Warps of a persistent program: enough threads that the resident weight blocks take at most
    ~64 32-bit registers per thread (the rest of the 255 hold h, c, gates and addresses). IEEE fp32
    products run on FMA units with K-long operand strips per thread: at least 8 warps there (4
    spill at H = 64, see `python -m fastrnn.kernels.aot`)."""
    if weight_elements <= 4096 and dot_meta(dtype)["INPUT_PRECISION"] != "ieee":
        return 4
    return 8 if weight_elements <= 16384 else 16


def dot_meta(dtype):
    """tl.dot settings for an I/O dtype: INPUT_PRECISION and DOT_FP32.

    fp32 uses IEEE precision unless TF32 was enabled explicitly (torch's own switch); fp16/bf16
    operands go to the tensor cores with fp32 accumulation (precision None: the default).
    DOT_FP32 upcasts the operands to fp32 instead: only under the interpreter with bf16, whose
    bf16 tl.dot returns garbage (triton 3.9). A bf16 x bf16 product is exact in fp32, so the
    upcast computes the same sums as the GPU's bf16 tensor-core dot, up to summation order.
    """
    upcast = dtype == torch.bfloat16 and triton_interpreter_enabled()
    if dtype == torch.float32 or upcast:
        precision = "tf32" if torch.backends.cuda.matmul.allow_tf32 and not upcast else "ieee"
    else:
        precision = None
    return {"INPUT_PRECISION": precision, "DOT_FP32": upcast}


@triton.jit
def _dot(b_a, b_w, INPUT_PRECISION: tl.constexpr, DOT_FP32: tl.constexpr):
    """b_a @ b_w in fp32 accumulation with b_a cast to the weight's dtype (see dot_meta)."""
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
    # 2*sigmoid(2x) - 1 stays finite everywhere; (1 - e^-2x) / (1 + e^-2x) is inf/inf for x <= -45.
    return 2.0 * _sigmoid(2.0 * x) - 1.0


@triton.jit
def _row_lengths(len_ptr, i_b, m_b, HAS_LENGTHS: tl.constexpr):
    """(BLOCK_B,) sequence lengths of a tile's rows (len_ptr: (B,) int64), loaded once per program;
    a placeholder without lengths (then _row_valid ignores it)."""
    if HAS_LENGTHS:
        b_len = tl.load(len_ptr + i_b, mask=m_b, other=0)
    else:
        b_len = i_b
    return b_len


@triton.jit
def _row_valid(b_len, t, m_b, HAS_LENGTHS: tl.constexpr):
    """(BLOCK_B,) mask of the rows whose sequence is inside step t."""
    if HAS_LENGTHS:
        m_valid = m_b & (t < b_len)
    else:
        m_valid = m_b
    return m_valid


@triton.jit
def _keep_finished(m_valid, b_new, b_old, HAS_LENGTHS: tl.constexpr):
    """b_new in rows still inside their sequence at this step, b_old in finished rows.

    Without lengths every row is valid (a tile's padding rows are never stored), so no select is
    emitted; that also sidesteps an LLVM SLP-vectorizer assertion triton 3.9 hits on the fp32
    (FMA) persistent backward when the select is over the plain batch mask.
    """
    if HAS_LENGTHS:
        b_out = tl.where(m_valid, b_new, b_old)
    else:
        b_out = b_new
    return b_out


@triton.jit
def _persistent_tile(B, H, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    """Rows of a persistent program's batch tile and the whole padded hidden range: returns
    (i_b, i_h, m_b, m_h, m_bh). The state offsets and lengths come after the weight loads in the
    kernels: that order spills less on sm_90 (fastrnn.kernels.aot)."""
    i_b = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    i_h = tl.arange(0, BLOCK_H)
    m_b = i_b < B
    m_h = i_h < H
    m_bh = m_b[:, None] & m_h[None, :]
    return i_b, i_h, m_b, m_h, m_bh


@triton.jit
def _time_index(j, T, b_len, m_b, REVERSE: tl.constexpr, HAS_LENGTHS: tl.constexpr):
    """Time index t of the j-th step in forward processing order (the device twin of time_index)
    and the (BLOCK_B, 1) mask of the rows inside their sequence at t."""
    if REVERSE:
        t = T - 1 - j
    else:
        t = j
    m_valid = _row_valid(b_len, t, m_b, HAS_LENGTHS)[:, None]
    return t, m_valid


@triton.jit
def _step_tile(len_ptr, t, B, H, HAS_LENGTHS: tl.constexpr, BLOCK_B: tl.constexpr,
               BLOCK_H: tl.constexpr):
    """The (batch tile, hidden tile) of an alternating-form step program (grid axes 0 and 1) and its
    rows' validity at step t (len_ptr: (B,) int64). Returns (i_b, i_h, m_h, m_bh, o_bh, m_valid);
    o_bh addresses a (B, H) tensor, m_valid is (BLOCK_B, 1)."""
    i_b = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    i_h = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    m_b = i_b < B
    m_h = i_h < H
    m_bh = m_b[:, None] & m_h[None, :]
    o_bh = i_b[:, None] * H + i_h[None, :]
    b_len = _row_lengths(len_ptr, i_b, m_b, HAS_LENGTHS)
    m_valid = _row_valid(b_len, t, m_b, HAS_LENGTHS)[:, None]
    return i_b, i_h, m_h, m_bh, o_bh, m_valid


@triton.jit
def _store_step(out_ptr, t, B, N, o_bn, m_bn, b_h, m_valid):
    """Store step t of a per-step result (out_ptr: (T, B, N), e.g. the output): b_h in valid rows,
    0 past a sequence's end."""
    p_out = out_ptr + t.to(tl.int64) * B * N + o_bn
    tl.store(p_out, tl.where(m_valid, b_h, 0.0).to(out_ptr.dtype.element_ty), mask=m_bn)


@triton.jit
def _add_dout(b_dh, dout_ptr, t, B, N, o_bn, m_bn):
    """dh of step t: the fp32 carry b_dh from later steps plus the output's gradient dout_t
    (dout_ptr: (T, B, N))."""
    p_dout = dout_ptr + t.to(tl.int64) * B * N + o_bn
    return b_dh + tl.load(p_dout, mask=m_bn, other=0.0).to(tl.float32)


@triton.jit(do_not_specialize=["t"])
def _matmul_kernel(
    a_ptr,  # (M, K) contiguous, any float dtype; cast to b's dtype for the product
    b_ptr,  # (K, N) addressed through stride_bk / stride_bn (a weight or its transpose)
    c_ptr,  # (M, N) contiguous result
    old_ptr,  # (M, N) contiguous: kept in rows that are not valid at step t (HAS_OLD)
    e_ptr,  # (M, N) contiguous fp32 addend for valid rows (HAS_E)
    y_ptr,  # (M, N) contiguous: acc where valid, 0 elsewhere, in y's dtype (HAS_Y)
    len_ptr,  # (M,) int64 sequence lengths (HAS_LENGTHS)
    t,
    M,
    N,
    K,
    stride_bk,
    stride_bn,
    HAS_OLD: tl.constexpr,
    HAS_E: tl.constexpr,
    HAS_Y: tl.constexpr,
    HAS_LENGTHS: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    DOT_FP32: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """One step's product for the alternating form, with the variable-length select in the epilogue
    so the state update of a finished sequence costs no extra kernel."""
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    i_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    i_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    m_m = i_m < M
    m_n = i_n < N
    b_acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        i_k = k0 + tl.arange(0, BLOCK_K)
        m_k = i_k < K
        b_a = tl.load(a_ptr + i_m[:, None] * K + i_k[None, :], mask=m_m[:, None] & m_k[None, :],
                      other=0.0)
        b_b = tl.load(b_ptr + i_k[:, None] * stride_bk + i_n[None, :] * stride_bn,
                      mask=m_k[:, None] & m_n[None, :], other=0.0)
        b_acc += _dot(b_a, b_b, INPUT_PRECISION, DOT_FP32)
    o_c = i_m[:, None] * N + i_n[None, :]
    m_c = m_m[:, None] & m_n[None, :]
    b_len = _row_lengths(len_ptr, i_m, m_m, HAS_LENGTHS)
    m_valid = _row_valid(b_len, t, m_m, HAS_LENGTHS)[:, None]
    b_res = b_acc
    if HAS_E:
        b_res += tl.load(e_ptr + o_c, mask=m_c, other=0.0)
    if HAS_OLD:
        b_res = tl.where(m_valid, b_res, tl.load(old_ptr + o_c, mask=m_c, other=0.0).to(tl.float32))
    tl.store(c_ptr + o_c, b_res.to(c_ptr.dtype.element_ty), mask=m_c)
    if HAS_Y:
        tl.store(y_ptr + o_c, tl.where(m_valid, b_acc, 0.0).to(y_ptr.dtype.element_ty), mask=m_c)


def step_product(a, w, out, *, transpose_w, t=0, lengths=None, old=None, extra=None, y=None):
    """out = a @ (w^T if transpose_w else w) for one step, fp32 accumulation.

    a (M, K), w (N, K) if transpose_w else (K, N), out/old/extra/y (M, N); with `old`, rows whose
    sequence is not valid at step t keep `old`; `extra` (fp32) is added in valid rows; `y` gets the
    product where valid and 0 elsewhere. Reads `old` and writes `out`: they must not alias.
    """
    m, k = a.shape
    n = out.shape[1]
    stride_bk, stride_bn = (w.stride(1), w.stride(0)) if transpose_w else (w.stride(0), w.stride(1))
    block_m = 16 if m <= 16 else 32 if m <= 32 else 64
    grid = (triton.cdiv(m, block_m), triton.cdiv(n, 64))
    dummy = out
    _matmul_kernel[grid](
        a, w, out, dummy if old is None else old, dummy if extra is None else extra,
        dummy if y is None else y, dummy if lengths is None else lengths, t, m, n, k,
        stride_bk, stride_bn,
        HAS_OLD=old is not None, HAS_E=extra is not None, HAS_Y=y is not None,
        HAS_LENGTHS=lengths is not None, **dot_meta(w.dtype),
        BLOCK_M=block_m, BLOCK_N=64, BLOCK_K=32,
    )


def step_launch(pb):
    """(grid, BLOCK_* meta) of the alternating form's per-step pointwise kernels."""
    block_h = min(64, triton.next_power_of_2(pb.hidden))
    grid = (triton.cdiv(pb.batch, PERSISTENT_BLOCK_B), triton.cdiv(pb.hidden, block_h))
    return grid, {"BLOCK_B": PERSISTENT_BLOCK_B, "BLOCK_H": block_h}


def persistent_launch(pb):
    """(grid, meta) of a persistent kernel: one program per batch tile, BLOCK_H = padded H, the
    tl.dot settings and warps for the resident weights (LSTM adds BLOCK_K = padded H_out)."""
    block_h, block_k = pad(pb.hidden), pad(pb.h_out)
    weight_elements = (pb.gates + (pb.proj > 0)) * block_h * block_k
    meta = {
        "BLOCK_B": PERSISTENT_BLOCK_B, "BLOCK_H": block_h, **dot_meta(pb.gx.dtype),
        "num_warps": persistent_warps(weight_elements, pb.gx.dtype),
    }
    return (triton.cdiv(pb.batch, PERSISTENT_BLOCK_B),), meta


def time_index(step, steps, reverse):
    """The time index the `step`-th processed step (in forward order) runs at."""
    return steps - 1 - step if reverse else step


def previous_hidden(output, h0, lengths, reverse):
    """(T, B, H_out): the hidden state each step started from (h_{t-1} in processing order).

    A step's previous state is the previous processed step's output when that step was inside the
    sequence, else h0 (the reverse direction starts each sequence at its own end from h0). Only
    valid steps use it (invalid steps have zero gate gradients).
    """
    if reverse:
        shifted = torch.cat([output[1:], h0.unsqueeze(0)])
    else:
        shifted = torch.cat([h0.unsqueeze(0), output[:-1]])
    if lengths is None or not reverse:
        # Forward direction: a valid step t >= 1 always follows a valid step t - 1.
        return shifted
    steps = output.shape[0]
    t = torch.arange(steps, device=output.device).unsqueeze(1)
    prev_valid = ((t + 1) < lengths.unsqueeze(0)).unsqueeze(2)
    return torch.where(prev_valid, shifted, h0.unsqueeze(0))


def weight_grad(dgates, inputs):
    """sum_t dgates_t^T inputs_t: (T, B, N), (T, B, K) -> (N, K), one GEMM after the loop."""
    return dgates.reshape(-1, dgates.shape[-1]).t().matmul(inputs.reshape(-1, inputs.shape[-1]))


@dataclass
class Problem:
    """One recurrence call: tensors made contiguous and the sizes the launchers need."""

    cell: str  # 'lstm', 'gru', 'rnn'
    gx: torch.Tensor  # (T, B, G*H)
    h0: torch.Tensor  # (B, H_out)
    c0: torch.Tensor | None  # (B, H), LSTM
    w_hh: torch.Tensor  # (G*H, H_out)
    w_hr: torch.Tensor | None  # (P, H), LSTM with projection
    b_hh: torch.Tensor | None  # (3H,), GRU
    lengths: torch.Tensor | None  # (B,) int64
    reverse: bool
    nonlinearity: str  # RNN: 'tanh' or 'relu'
    form: str
    reason: str  # why `form` runs (forced, or the selection's reason)

    @property
    def steps(self):
        return self.gx.shape[0]

    @property
    def batch(self):
        return self.gx.shape[1]

    @property
    def h_out(self):
        return self.w_hh.shape[1]

    @property
    def gates(self):
        return {"lstm": 4, "gru": 3, "rnn": 1}[self.cell]

    @property
    def hidden(self):
        return self.w_hh.shape[0] // self.gates

    @property
    def proj(self):
        return 0 if self.w_hr is None else self.w_hr.shape[0]


def _check(cell, gx, h0, c0, w_hh, w_hr, b_hh, lengths):
    """Validate shapes, dtypes and devices the way a launcher must before touching raw pointers."""
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    if gx.dim() != 3:
        raise ValueError(f"gx must be (T, B, {gates}*H), got shape {tuple(gx.shape)}")
    steps, batch, width = gx.shape
    if w_hh.dim() != 2 or w_hh.shape[0] != width or width % gates:
        raise ValueError(f"w_hh must be ({width}, H_out) for gx of width {width}, "
                         f"got {tuple(w_hh.shape)}")
    hidden, h_out = width // gates, w_hh.shape[1]
    if w_hr is not None and tuple(w_hr.shape) != (h_out, hidden):
        raise ValueError(f"w_hr must be ({h_out}, {hidden}), got {tuple(w_hr.shape)}")
    if w_hr is None and h_out != hidden:
        raise ValueError(f"w_hh must be ({width}, {hidden}) without a projection, "
                         f"got {tuple(w_hh.shape)}")
    if tuple(h0.shape) != (batch, h_out):
        raise ValueError(f"h0 must be ({batch}, {h_out}), got {tuple(h0.shape)}")
    if c0 is not None and tuple(c0.shape) != (batch, hidden):
        raise ValueError(f"c0 must be ({batch}, {hidden}), got {tuple(c0.shape)}")
    if b_hh is not None and tuple(b_hh.shape) != (width,):
        raise ValueError(f"b_hh must be ({width},), got {tuple(b_hh.shape)}")
    tensors = [t for t in (gx, h0, c0, w_hh, w_hr, b_hh) if t is not None]
    if any(t.dtype != gx.dtype for t in tensors):
        raise TypeError(f"all tensors must share gx's dtype {gx.dtype}, got "
                        f"{sorted({str(t.dtype) for t in tensors})}")
    if gx.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"the triton kernels support float32, float16 and bfloat16, got {gx.dtype}")
    if any(t.device != gx.device for t in tensors):
        raise ValueError("all tensors must be on gx's device")
    if steps == 0 or batch == 0:
        raise ValueError(f"gx must have T >= 1 and B >= 1, got shape {tuple(gx.shape)}")
    if lengths is not None:
        if tuple(lengths.shape) != (batch,) or lengths.dtype != torch.int64:
            raise ValueError(f"lengths must be a ({batch},) int64 tensor")
        if lengths.device != gx.device:
            raise ValueError("lengths must be on gx's device")


def make_problem(cell, gx, h0, c0, w_hh, w_hr, b_hh, lengths, reverse, nonlinearity="tanh"):
    _check(cell, gx, h0, c0, w_hh, w_hr, b_hh, lengths)
    capability = torch.cuda.get_device_capability(gx.device) if gx.is_cuda else None
    contiguous = [None if t is None else t.contiguous() for t in (gx, h0, c0, w_hh, w_hr, b_hh)]
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    hidden = w_hh.shape[0] // gates
    proj = 0 if w_hr is None else w_hr.shape[0]
    form, reason = choose_form(cell, hidden, proj, gx.dtype, gx.device, gx.shape[1])
    return Problem(cell, *contiguous, None if lengths is None else lengths.contiguous(),
                   bool(reverse), nonlinearity, form, reason)


TENSOR_FIELDS = ("gx", "h0", "c0", "w_hh", "w_hr", "b_hh", "lengths")

DOUBLE_BACKWARD_ERROR = (
    "double backward is not supported by the triton backend; use backend='reference'"
)


class RecurrenceFunction(torch.autograd.Function):
    """Autograd for every cell: forward and backward dispatch to the cell's host launchers.

    Inputs: (launchers, problem_args, gx, h0, c0, w_hh, w_hr, b_hh); outputs (output, h_n[, c_n]).
    `launchers` has forward(problem, store) -> (outputs, saved) and
    backward(problem, saved, outputs, grads) -> (dgx, dh0, dc0, dw_hh, dw_hr, db_hh).
    """

    @staticmethod
    def forward(ctx, launchers, options, gx, h0, c0, w_hh, w_hr, b_hh):
        problem = make_problem(launchers.CELL, gx, h0, c0, w_hh, w_hr, b_hh, **options)
        note_form(problem.cell, "forward", problem.form, problem.reason)
        store = any(ctx.needs_input_grad[2:])
        outputs, saved = launchers.forward(problem, store)
        if store:
            ctx.launchers = launchers
            # Tensors go through save_for_backward (version checks, no reference cycles); the
            # problem keeps only its non-tensor fields on ctx.
            ctx.meta = dataclasses.replace(problem, **{name: None for name in TENSOR_FIELDS})
            ctx.save_for_backward(*(getattr(problem, name) for name in TENSOR_FIELDS), *saved,
                                  *outputs)
            ctx.num_saved = len(saved)
        return outputs

    @staticmethod
    def backward(ctx, *grads):
        if torch.is_grad_enabled():
            raise RuntimeError(DOUBLE_BACKWARD_ERROR)
        tensors = ctx.saved_tensors
        count = len(TENSOR_FIELDS)
        problem = dataclasses.replace(ctx.meta, **dict(zip(TENSOR_FIELDS, tensors[:count])))
        saved = tensors[count : count + ctx.num_saved]
        outputs = tensors[count + ctx.num_saved :]
        grads = [g.contiguous() for g in grads]
        note_form(problem.cell, "backward", problem.form, problem.reason)
        result = ctx.launchers.backward(problem, saved, outputs, grads)
        # Gradients only for the tensors autograd asked about.
        result = [g if need else None for g, need in zip(result, ctx.needs_input_grad[2:])]
        return (None, None, *result)


@torch.compiler.disable
def run(launchers, gx, h0, c0, w_hh, w_hr, b_hh, **options):
    """Apply RecurrenceFunction (autograd.Function.apply takes positional arguments only).

    Excluded from torch.compile: Dynamo would trace into the host launchers' time loop (and, under
    the interpreter, into triton's numpy code, which fails); a compiled model graph-breaks here
    and runs the kernels eagerly. A traceable op needs torch.library.triton_op (not done yet).

    An empty batch or a zero hidden size has nothing to compute (and a zero grid is not a valid
    CUDA launch): it runs the reference's loop, which only builds empty or zero-width tensors.
    """
    if gx.dim() == 3 and (gx.shape[1] == 0 or gx.shape[2] == 0):
        from fastrnn import reference

        name = launchers.CELL
        if name == "lstm":
            return reference.lstm_recurrence(gx, h0, c0, w_hh, w_hr, options.get("lengths"),
                                             options.get("reverse", False))
        if name == "gru":
            return reference.gru_recurrence(gx, h0, w_hh, b_hh, options.get("lengths"),
                                            options.get("reverse", False))
        return reference.rnn_recurrence(gx, h0, w_hh, options.get("nonlinearity", "tanh"),
                                        options.get("lengths"), options.get("reverse", False))
    return RecurrenceFunction.apply(launchers, options, gx, h0, c0, w_hh, w_hr, b_hh)
