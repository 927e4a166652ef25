"""Kernel forms: which one runs a recurrence, with which tiles, and why.

Dimensions: B batch, H hidden size, P projection size (0: none), H_out = P or H, G gates.

Forms, in the order `plan` tries them:
    persistent   one program per batch tile of 16 rows runs the whole time loop with all of W_hh
                 (and W_hr) on chip and the state in fp32 registers: no exchange, no barrier. Runs
                 while the padded weights fit one program's shared memory (IEEE fp32 also needs
                 padded H, H_out <= 64: FMA products spill past that).
    cooperative  the same loop split over NUM_HT programs per batch tile, each holding the weight
                 rows of BLOCK_H hidden units (all their gates) on chip; the state is exchanged
                 through global memory with one grid barrier per step (two with a projection and
                 in the LSTM-projection backward), launched as a cooperative grid so that every
                 program is resident. Runs while the slice and the exchanged state fit a program's
                 shared memory and the programs fit the SMs (one program each).
    stepwise     one launch per step (two where a step has two phases) running the same step body
                 with the kernel boundary as the barrier: every size, the fallback. Weights come
                 from L2 each step (in K chunks when a slice would not fit on chip).

Selection uses the device's facts (SM count, shared memory per block) and is corrected by the
compiled kernel's own (forms a launch could not run are remembered per shape, see launch.py).
Force a form with `use_form(...)` or FASTRNN_KERNEL_FORM; a forced form that cannot run a shape
raises BackendUnavailableError with the reason. Under the Triton interpreter, which runs programs
one after another, a spin barrier between programs cannot work: `auto` never picks `cooperative`
there, and a forced `cooperative` runs one program per batch tile (every barrier passes at once),
which still exercises its loop, its exchange through global memory and its barrier code.
"""

import contextlib
import contextvars
import dataclasses
import functools
import os
from dataclasses import dataclass

import torch
import triton

from fastrnn.backends import BackendUnavailableError, triton_interpreter_enabled
from fastrnn.kernels import jit

FORMS = ("persistent", "cooperative", "stepwise")
FORM_ENV_VAR = "FASTRNN_KERNEL_FORM"
# Tests only: cooperative programs arrive at each grid barrier after a pseudo-random delay.
JITTER_ENV_VAR = "FASTRNN_BARRIER_JITTER"
# How a cooperative program polls its grid barrier (jit._grid_sync): 'rmw', an acquire atomic add
# of 0 (the default), or 'load', an acquire load in inline PTX (GPU only: under the interpreter,
# which cannot run inline assembly, the barrier polls with 'rmw' whatever this says).
BARRIER_POLL_ENV_VAR = "FASTRNN_BARRIER_POLL"
BARRIER_POLLS = ("rmw", "load")
# The grid barrier's option bits (jit.BARRIER_*: the kernels' BARRIER constexpr, plan_meta);
# BARRIER_NO_WAIT only through probe's _barrier_compiled_out.
BARRIER_JITTER = jit.BARRIER_JITTER.value
BARRIER_POLL_LOAD = jit.BARRIER_POLL_LOAD.value
BARRIER_NO_WAIT = jit.BARRIER_NO_WAIT.value
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
# Batch rows per persistent program; tl.dot needs M >= 16 on GPUs, so this is also the minimum.
PERSISTENT_BLOCK_B = 16
# IEEE fp32 (FMA) products keep a K-long operand strip per thread: past K = 64 they spill to local
# memory (`python -m fastrnn.kernels.aot`), so IEEE fp32 keeps padded K <= 64 in a one-program
# (persistent) product; the others split K into slabs of 64 (forms.split_k), in chunks of at most
# FP32_K_CHUNK when streamed.
FP32_RESIDENT_MAX_K = 64
FP32_K_CHUNK = 256
# Shared memory a program needs beyond its resident weights and staged operands: layout-conversion
# scratch and the barrier's broadcast word. Checked against compiled kernels by
# `python -m fastrnn.kernels.aot`; the compiled kernel's own figure corrects it at the first launch.
SHARED_RESERVE = 16 * 1024
# Tile extents the planner tries (powers of two: tl.arange; >= 16: tl.dot on GPUs).
BLOCK_B_CHOICES = (16, 32, 64)
BLOCK_H_CHOICES = (16, 32, 64, 128)
# K extent a cooperative product stages at once: weights stay on chip as chunks of it (so K = 768
# or 1536 is not padded to a power of two) and the exchanged state is staged one chunk at a time.
COOPERATIVE_K_CHUNK = 256
# The same for stepwise programs of their own tiling, which stream their weight chunks from L2
# (with 8 warps and 16-row tiles, larger chunks spill kilobytes at H = 4096 in the aot report).
STEPWISE_MAX_K = 256
# Bytes per thread a compiled persistent or cooperative kernel may spill to local memory before its
# form counts as failed for the shape (launch.launch; `python -m fastrnn.kernels.aot` checks the
# same): a few hundred bytes stay in L1, kilobytes go to L2 on every step.
SPILL_LIMIT = 1024
# Polls of a grid barrier before a program gives up (about a second on an H100): generous enough
# for a preempted context, short enough that a broken launch returns instead of hanging the GPU.
SPIN_LIMIT = 1 << 21

# Context variables, not thread-locals: a forced form and the active recorders hold in their own
# asyncio task only (a task started inside the block inherits them).
_forced = contextvars.ContextVar("fastrnn_kernel_form", default=None)
_recorders = contextvars.ContextVar("fastrnn_form_recorders", default=())


@contextlib.contextmanager
def use_form(form):
    """Force the kernel form ('persistent', 'cooperative', 'stepwise', or None: automatic) in this
    block; wins over FASTRNN_KERNEL_FORM.

    Example:
        >>> with fastrnn.kernels.use_form("stepwise"):
        ...     out, h, c = fastrnn.kernels.lstm_recurrence(gx, h0, c0, w_hh)
    """
    if form is not None and form not in FORMS:
        raise ValueError(f"Unknown kernel form {form!r}. Select from {FORMS} or None.")
    token = _forced.set(form)
    try:
        yield
    finally:
        _forced.reset(token)


def forced_form():
    """The form forced by `use_form` or FASTRNN_KERNEL_FORM, else None."""
    form = _forced.get()
    if form is not None:
        return form
    env = os.environ.get(FORM_ENV_VAR, "").strip().lower()
    if env in ("", "auto"):
        return None
    if env not in FORMS:
        raise ValueError(f"{FORM_ENV_VAR}={env!r}: select from {FORMS} or 'auto'.")
    return env


@contextlib.contextmanager
def record_forms():
    """Collect the kernel form of every recurrence run in this block (benchmark rows record it).

    Yields a list that gets one dict per kernel call: {'cell': 'lstm'|'gru'|'rnn', 'pass':
    'forward'|'backward', 'form': one of FORMS, 'reason': why that form ran, 'plan': its tiles}.

    Example:
        >>> with fastrnn.kernels.record_forms() as forms:
        ...     out, (h, c) = lstm(x)
        >>> forms[0]["form"]
        'persistent'
    """
    records = []
    token = _recorders.set(_recorders.get() + (records,))
    try:
        yield records
    finally:
        _recorders.reset(token)


def active_recorders():
    """The `record_forms` lists in force here (a backward captures them with its forward: on CUDA
    autograd runs the backward on its own thread, outside this context)."""
    return _recorders.get()


@contextlib.contextmanager
def recording_into(recorders):
    """Make `recorders` (active_recorders() of another thread or context) the ones in force in
    this block."""
    token = _recorders.set(tuple(recorders))
    try:
        yield
    finally:
        _recorders.reset(token)


def note_form(cell, pass_name, plan, recorders=None):
    """Append one kernel call to every `record_forms` list active here (or to `recorders`)."""
    for records in active_recorders() if recorders is None else recorders:
        records.append({"cell": cell, "pass": pass_name, "form": plan.form, "reason": plan.reason,
                        "plan": plan.describe()})


def pad(n):
    """Padded block extent: a power of two (tl.arange) and at least 16 (tl.dot on GPUs)."""
    return max(16, triton.next_power_of_2(n))


def dot_meta(dtype):
    """tl.dot settings for an I/O dtype: INPUT_PRECISION and DOT_FP32.

    fp32 uses IEEE precision unless TF32 was enabled explicitly (torch's own switch); fp16/bf16
    operands go to the tensor cores with fp32 accumulation (precision None: the default).
    DOT_FP32 upcasts the operands to fp32 instead: only under the interpreter with bf16, whose
    bf16 tl.dot returns garbage (triton 3.6 and 3.9). A bf16 x bf16 product is exact in fp32, so
    the upcast computes the same sums as the GPU's bf16 tensor-core dot, up to summation order.
    """
    upcast = dtype == torch.bfloat16 and triton_interpreter_enabled()
    if dtype == torch.float32 or upcast:
        precision = "tf32" if torch.backends.cuda.matmul.allow_tf32 and not upcast else "ieee"
    else:
        precision = None
    return {"INPUT_PRECISION": precision, "DOT_FP32": upcast}


def _ieee_fp32(dtype):
    return dtype == torch.float32 and dot_meta(dtype)["INPUT_PRECISION"] == "ieee"


@dataclass(frozen=True)
class DeviceFacts:
    """What form selection needs to know about a device."""

    name: str
    sm_count: int
    shared_memory: int  # bytes per block, opt-in maximum
    interpreter: bool


_facts_cache = {}


def device_facts(device):
    """DeviceFacts of a CUDA device (cached), or of the interpreter: an H100's SM count and shared
    memory, so CPU tests plan the tiles an H100 would."""
    device = torch.device(device)
    if device.type != "cuda":
        return DeviceFacts("triton interpreter", 132, 227 * 1024, True)
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _facts_cache:
        props = torch.cuda.get_device_properties(index)
        shared = getattr(props, "shared_memory_per_block_optin", None)
        if not shared:
            shared = triton.runtime.driver.active.utils.get_device_properties(index)["max_shared_mem"]
        _facts_cache[index] = DeviceFacts(props.name, props.multi_processor_count, int(shared),
                                          False)
    return _facts_cache[index]


@dataclass(frozen=True)
class Shape:
    """The sizes a plan depends on."""

    cell: str
    hidden: int
    proj: int
    batch: int
    dtype: torch.dtype

    @property
    def gates(self):
        return GATES[self.cell]

    @property
    def h_out(self):
        return self.proj or self.hidden

    @property
    def itemsize(self):
        return torch.empty((), dtype=self.dtype).element_size()


@dataclass(frozen=True)
class Plan:
    """How one recurrence runs: the form, the program tiles and the warps.

    block_b: batch rows per program.  block_h: hidden units per program (all their gates).
    block_o: H_out columns per program in the phases that produce H_out-wide results (the LSTM
    projection, every backward's dh_{t-1}); = block_h without a projection.  hidden_tiles:
    programs per batch tile (NUM_HT).  k_chunk: the largest K chunk a product stages at once
    (persistent: all of the padded K; forms.plan_meta).  reason: why this form runs.
    """

    form: str
    block_b: int
    block_h: int
    block_o: int
    hidden_tiles: int
    batch_tiles: int
    num_warps: int
    k_chunk: int
    reason: str

    @property
    def programs(self):
        return self.hidden_tiles * self.batch_tiles

    @property
    def local(self):
        """The state stays in registers (one program holds all of it): no exchange."""
        return self.form == "persistent"

    def describe(self):
        return (f"{self.form}: {self.programs} programs ({self.batch_tiles} batch tiles x "
                f"{self.hidden_tiles} hidden tiles), BLOCK_B={self.block_b} "
                f"BLOCK_H={self.block_h} BLOCK_O={self.block_o} warps={self.num_warps}")


def _aligned(shape):
    """H and H_out are multiples of 16, so the runtime's specialisation vectorises the state rows.
    With other sizes every element of a staged operand gets its own address and predicate: tiles
    of 32 or 64 rows then spill kilobytes (`python -m fastrnn.kernels.aot`, odd sizes), 16 rows
    do not."""
    return shape.hidden % 16 == 0 and shape.h_out % 16 == 0


def _warps(weight_bytes, dtype):
    """Warps of a program holding `weight_bytes` of weights on chip: 4 up to 32 KiB, else 8 (the
    planned cooperative configurations compile without spills so at H = 256..1024,
    `python -m fastrnn.kernels.aot`); IEEE fp32 products run on FMA units with K-long strips per
    thread and need 8."""
    return 4 if weight_bytes <= 32 * 1024 and not _ieee_fp32(dtype) else 8


def _chunked(k, chunk):
    """(chunk extent, chunk-padded K) of a product over K staged in chunks of at most `chunk`."""
    block = min(chunk, pad(k))
    return block, triton.cdiv(k, block) * block


def _slice_bytes(shape, block_b, block_h, block_o, chunk=COOPERATIVE_K_CHUNK):
    """Shared memory one program of the cooperative form needs: its weight slice in K chunks plus
    one staged chunk of the other operand of its products, for the worse of the forward and the
    backward."""
    block_k, k_pad = _chunked(shape.h_out, chunk)
    block_hf, h_pad = _chunked(shape.hidden, chunk)
    forward = shape.gates * block_h * k_pad + block_b * block_k
    backward = shape.gates * h_pad * block_o + block_b * block_hf
    if shape.proj:
        forward += h_pad * block_o + block_b * block_hf
        backward += k_pad * block_h + block_b * block_k
    return max(forward, backward) * shape.itemsize


def _persistent(shape, facts):
    h_pad, k_pad = pad(shape.hidden), pad(shape.h_out)
    weights = (shape.gates * h_pad * k_pad + (h_pad * k_pad if shape.proj else 0)) * shape.itemsize
    staged = PERSISTENT_BLOCK_B * max(h_pad, k_pad) * shape.itemsize
    batch_tiles = triton.cdiv(shape.batch, PERSISTENT_BLOCK_B)
    budget = facts.shared_memory - SHARED_RESERVE
    if weights + staged > budget:
        return None, (f"the padded weights ({weights // 1024} KiB) do not fit one program's "
                      f"shared memory ({budget // 1024} KiB usable on {facts.name})")
    if _ieee_fp32(shape.dtype) and max(h_pad, k_pad) > FP32_RESIDENT_MAX_K:
        return None, (f"IEEE fp32 products spill past padded K = {FP32_RESIDENT_MAX_K} "
                      f"(enable TF32 or use fp16/bf16 for larger resident weights)")
    if batch_tiles > facts.sm_count:
        return None, f"{batch_tiles} batch tiles exceed one wave of {facts.sm_count} SMs"
    plan = Plan("persistent", PERSISTENT_BLOCK_B, h_pad, k_pad, 1, batch_tiles,
                _warps(weights, shape.dtype), max(h_pad, k_pad),
                f"the padded weights ({weights // 1024} KiB) fit one program on {facts.name}")
    return plan, None


def _cooperative_tiles(shape, facts):
    """(Plan, None) of the best cooperative tiling on `facts`, or (None, why there is none)."""
    budget = facts.shared_memory - SHARED_RESERVE
    best = None
    for block_b in BLOCK_B_CHOICES if _aligned(shape) else BLOCK_B_CHOICES[:1]:
        if block_b > max(16, pad(shape.batch)):
            break
        for block_h in BLOCK_H_CHOICES:
            if block_h > pad(shape.hidden):
                break
            hidden_tiles = triton.cdiv(shape.hidden, block_h)
            block_o = max(16, pad(triton.cdiv(shape.proj, hidden_tiles))) if shape.proj else block_h
            batch_tiles = triton.cdiv(shape.batch, block_b)
            need = _slice_bytes(shape, block_b, block_h, block_o)
            if hidden_tiles * batch_tiles > facts.sm_count or need > budget:
                continue
            # Per step a program reads its weight slice from shared memory and the exchanged state
            # from L2: the smallest such volume has the shortest step.
            if best is None or need < best[0]:
                best = (need, block_b, block_h, block_o, hidden_tiles, batch_tiles)
    if best is None:
        return None, (f"no tiling puts one weight slice per program in {budget // 1024} KiB of "
                      f"shared memory with at most {facts.sm_count} programs (B={shape.batch})")
    need, block_b, block_h, block_o, hidden_tiles, batch_tiles = best
    plan = Plan("cooperative", block_b, block_h, block_o, hidden_tiles, batch_tiles,
                _warps(need, shape.dtype), COOPERATIVE_K_CHUNK,
                f"{hidden_tiles * batch_tiles} programs with {need // 1024} KiB each fit the "
                f"{facts.sm_count} SMs of {facts.name}")
    return plan, None


def _cooperative(shape, facts, forced):
    if facts.interpreter:
        if not forced:
            return None, "the interpreter runs programs one after another: no grid barrier"
        # One program per batch tile: every barrier passes at once (see the module docstring).
        h_pad, k_pad = pad(shape.hidden), pad(shape.h_out)
        return Plan("cooperative", PERSISTENT_BLOCK_B, h_pad, k_pad, 1,
                    triton.cdiv(shape.batch, PERSISTENT_BLOCK_B), 4, max(h_pad, k_pad),
                    "forced; one program per batch tile under the interpreter"), None
    return _cooperative_tiles(shape, facts)


def _stepwise(shape, facts, reason):
    """Cooperative's tiles where they fit a program (then a stepwise run computes bit for bit what
    a cooperative one does), else 16 hidden units per program and weights in K chunks. Under the
    interpreter always the latter: it is how the CPU tests run several tiles."""
    if not facts.interpreter:
        for limit in (facts.sm_count, 1 << 30):
            tiles, _ = _cooperative_tiles(shape, dataclasses.replace(facts, sm_count=limit))
            if tiles is not None:
                return dataclasses.replace(tiles, form="stepwise", reason=reason)
    block_b = min(64, max(16, pad(shape.batch))) if _aligned(shape) else 16
    hidden_tiles = triton.cdiv(shape.hidden, 16)
    block_o = max(16, pad(triton.cdiv(shape.proj, hidden_tiles))) if shape.proj else 16
    chunk = FP32_K_CHUNK if _ieee_fp32(shape.dtype) else STEPWISE_MAX_K
    k_chunk = min(chunk, max(pad(shape.hidden), pad(shape.h_out)))
    return Plan("stepwise", block_b, 16, block_o, hidden_tiles, triton.cdiv(shape.batch, block_b),
                8, k_chunk, reason)


_failed = {}


def _device_key(device):
    """'cuda:0' for 'cuda' on device 0 and for cuda:0 alike; None for a described device."""
    if device is None:
        return None
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return str(device)


def remember_failure(device, shape, form, error):
    """Record that `form` could not run `shape` well on `device`: a compile or launch failure, or
    a compiled kernel that spills; later automatic plans of the shape skip the form."""
    _failed[(_device_key(device), shape, form)] = (
        f"{type(error).__name__}: {error}".splitlines()[0][:300])


def plan(shape, device, facts=None):
    """The Plan for `shape` on `device`: the forced form, else the first of FORMS that fits and has
    not failed for this shape on this device. `facts` overrides the device's own (ahead-of-time
    compiles plan for a GPU that is not there).

    Raises BackendUnavailableError when a forced form cannot run the shape.
    """
    facts = facts or device_facts(device)
    key = _device_key(device)
    failed = tuple((form, _failed[(key, shape, form)]) for form in FORMS
                   if (key, shape, form) in _failed)
    return _plan(shape, facts, forced_form(), failed, _ieee_fp32(shape.dtype))


def clear_plan_cache():
    """Forget every cached plan (tests that change the planner's constants call it)."""
    _plan.cache_clear()
    _plan_meta.cache_clear()


# Planning walks every tiling (about 0.2 ms in Python): once per shape, device and setting.
@functools.lru_cache(maxsize=4096)
def _plan(shape, facts, forced, failed, ieee):
    del ieee  # part of the cache key only: the TF32 switch changes what fits (_ieee_fp32)
    failed = dict(failed)
    candidates = (forced,) if forced else FORMS
    reasons = []
    for form in candidates:
        # A forced form runs even where it failed or spilled before: the caller asked for it.
        if not forced and form in failed:
            reasons.append(f"not {form}: it failed here ({failed[form]})")
            continue
        if form == "persistent":
            result, why = _persistent(shape, facts)
        elif form == "cooperative":
            result, why = _cooperative(shape, facts, forced is not None)
        else:
            result, why = _stepwise(shape, facts, "; ".join(reasons) or "it runs every size"), None
        if result is not None:
            return dataclasses.replace(result, reason="forced: " + result.reason) if forced else result
        reasons.append(f"not {form}: {why}")
    raise BackendUnavailableError(f"kernel form {forced!r} cannot run {shape.cell} H={shape.hidden} "
                                  f"P={shape.proj} B={shape.batch} {shape.dtype}: "
                                  f"{'; '.join(reasons)}")


def split_k(k_block, n_block, m_block, ieee):
    """Slabs of a split-K product (jit._mm) over a K chunk of k_block rows with an (m_block,
    n_block) output. One when the warps can share out the columns (>= 64) or K is short. Else, as
    `python -m fastrnn.kernels.aot` showed for sm_90: 4 slabs with a 16-row batch tile (at K = 1024,
    N = 16 the LSTM forward drops from 255 registers and a spill to 128), 2 with 32 or 64 rows
    (4 spills there), and for IEEE fp32 (FMA products) slabs of 64, the K they hold without a
    spill."""
    if n_block >= 64 or k_block <= 64:
        return 1
    if ieee:
        return k_block // 64
    return min(4 if m_block <= 16 else 2, k_block // 64)


def barrier_poll():
    """How cooperative programs poll their grid barrier: FASTRNN_BARRIER_POLL, 'rmw' (default) or
    'load' (see BARRIER_POLL_ENV_VAR)."""
    poll = os.environ.get(BARRIER_POLL_ENV_VAR, "").strip().lower() or "rmw"
    if poll not in BARRIER_POLLS:
        raise ValueError(f"{BARRIER_POLL_ENV_VAR}={poll!r}: select from {BARRIER_POLLS}.")
    return poll


_no_wait = [False]


@contextlib.contextmanager
def _barrier_compiled_out():
    """Timing probes only (fastrnn.kernels.probe): in this block, process-wide (autograd's backward
    thread included), cooperative kernels compile without their grid barrier, so their programs
    never wait for each other and their RESULTS ARE WRONG. Bounds the barrier's share of a step."""
    _no_wait[0] = True
    try:
        yield
    finally:
        _no_wait[0] = False


def barrier_bits(interpreter=None):
    """The grid barrier's option bits (BARRIER_*) that cooperative kernels compile with now."""
    interpreter = triton_interpreter_enabled() if interpreter is None else interpreter
    bits = BARRIER_JITTER if os.environ.get(JITTER_ENV_VAR, "0") not in ("", "0") else 0
    if barrier_poll() == "load" and not interpreter:
        bits |= BARRIER_POLL_LOAD
    if _no_wait[0]:
        bits |= BARRIER_NO_WAIT
    return bits


def plan_meta(shape, plan):
    """The constexprs (and launch options) a plan gives every kernel of a cell.

    BLOCK_HF / NUM_HF and BLOCK_K / NUM_K: the chunk extent and count of products over K = H and
    over K = H_out; persistent programs take all of K in one chunk (their state is a register block
    that cannot be cut), the others chunks of at most plan.k_chunk. BARRIER: the grid barrier's
    option bits (barrier_bits; 0 outside the cooperative form).
    """
    interpreter = triton_interpreter_enabled()
    meta = _plan_meta(shape, plan, barrier_bits(interpreter), torch.backends.cuda.matmul.allow_tf32,
                      interpreter)
    return dict(meta)


@functools.lru_cache(maxsize=4096)
def _plan_meta(shape, plan, barrier, tf32, interpreter):
    del tf32, interpreter  # part of the cache key only: dot_meta reads them
    block_hf, _ = _chunked(shape.hidden, plan.k_chunk)
    block_k, _ = _chunked(shape.h_out, plan.k_chunk)
    ieee = _ieee_fp32(shape.dtype)
    return {
        **dot_meta(shape.dtype), "BLOCK_B": plan.block_b, "BLOCK_H": plan.block_h,
        "BLOCK_O": plan.block_o, "BLOCK_HF": block_hf,
        "NUM_HF": triton.cdiv(shape.hidden, block_hf),
        "SPLIT_HF": split_k(block_hf, plan.block_o, plan.block_b, ieee),
        "BLOCK_K": block_k, "NUM_K": triton.cdiv(shape.h_out, block_k),
        "SPLIT_K": split_k(block_k, plan.block_h, plan.block_b, ieee), "NUM_HT": plan.hidden_tiles,
        "LOCAL": plan.local, "SYNC": plan.form == "cooperative",
        "STEPWISE": plan.form == "stepwise", "BARRIER": barrier if plan.form == "cooperative" else 0,
        "num_warps": plan.num_warps,
        # One stage: software pipelining of the in-loop loads would stage them in shared memory,
        # which the resident weights need (the LSTM backward at H = 128 bf16 grows from 148 to
        # 212 KiB with the runtime's aligned loads and num_stages = 3).
        "num_stages": 1,
    }


def choose_form(cell, hidden, proj, dtype, device, batch):
    """(form, reason): the kernel form a recurrence of these sizes runs on `device`, and why.

    Args:
        cell: 'lstm', 'gru' or 'rnn'.  hidden: H.  proj: P (LSTM projection, 0 if none).
        dtype: I/O dtype.  device: a CUDA device (or CPU under the interpreter).  batch: B.

    Example:
        >>> fastrnn.kernels.choose_form("lstm", 768, 0, torch.bfloat16, "cuda", 16)
        ('cooperative', '48 programs with 160 KiB each fit the 132 SMs of NVIDIA H100 80GB HBM3')
    """
    chosen = plan(Shape(cell, hidden, proj, batch, dtype), device)
    return chosen.form, chosen.reason
