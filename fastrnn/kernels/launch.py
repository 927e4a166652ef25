"""Host side shared by every cell: the validated problem, fresh buffers, launching a kernel on the
right device in the planned form (with fallback to the next form), the grid-barrier watch, and the
op kernels every cell runs through (one `fastrnn::<cell>` op call per layer-direction; autograd,
vmap and the fake implementation live in fastrnn.ops).

Dimensions: T time, B batch, H hidden (cell) size, P projection size, H_out = P if P > 0 else H,
G gates (LSTM 4, GRU 3, RNN 1).

Store vs recompute (backward): the forward stores the gate activations (and LSTM's cell state) in
the I/O dtype when a gradient is needed. Recomputing them would repeat the h_{t-1} W_hh^T product of
every step on the sequential critical path of the backward, doubling its latency-bound cost, for a
memory saving that cuDNN's own reserve space does not make either.
"""

import collections
import contextlib
import importlib
import os
import threading
from dataclasses import dataclass

import torch
import triton

from fastrnn.backends import triton_interpreter_enabled
from fastrnn.kernels import forms

DOUBLE_BACKWARD_ERROR = (
    "double backward is not supported by the triton backend; use backend='reference'"
)


def _debug_poison():
    """Fill fresh outputs with NaN so an element a kernel forgot to write fails the comparison."""
    return os.environ.get("FASTRNN_POISON", "0") not in ("", "0")


def empty(shape, like, dtype=None):
    """torch.empty on like's device, NaN-poisoned under FASTRNN_POISON=1 (the tests set it)."""
    out = torch.empty(shape, device=like.device, dtype=dtype or like.dtype)
    if _debug_poison() and out.is_floating_point():
        out.fill_(float("nan"))
    return out


@dataclass
class Problem:
    """One recurrence call: tensors made contiguous, the sizes the launchers need and the plan."""

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
    plan: forms.Plan | None = None

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
        return forms.GATES[self.cell]

    @property
    def hidden(self):
        return self.w_hh.shape[0] // self.gates

    @property
    def proj(self):
        return 0 if self.w_hr is None else self.w_hr.shape[0]

    @property
    def shape(self):
        return forms.Shape(self.cell, self.hidden, self.proj, self.batch, self.gx.dtype)

    def flags(self):
        """The constexprs every kernel of a cell takes from the problem and its plan."""
        return {"HAS_LENGTHS": self.lengths is not None, "REVERSE": self.reverse,
                **forms.plan_meta(self.shape, self.plan)}


def _check(cell, gx, h0, c0, w_hh, w_hr, b_hh, lengths):
    """Validate shapes, dtypes and devices the way a launcher must before touching raw pointers."""
    gates = forms.GATES[cell]
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
    if gx.device.type != "cuda" and not (gx.device.type == "cpu" and triton_interpreter_enabled()):
        # A compiled kernel given host pointers reads garbage or faults: refuse before launching.
        raise ValueError(f"the triton kernels run on CUDA tensors (or CPU tensors with "
                         f"TRITON_INTERPRET=1 exported before Python starts), got {gx.device}")
    if steps == 0 or batch == 0:
        raise ValueError(f"gx must have T >= 1 and B >= 1, got shape {tuple(gx.shape)}")
    # Offsets within a step (rows x width) and within a weight are int32 in the kernels; steps
    # are int64.
    if max(batch * width, width * h_out, batch * (4 * hidden if cell == "gru" else width)) >= 2**31:
        raise ValueError(f"the triton kernels address one step or one weight with int32 offsets; "
                         f"B={batch}, G*H={width}, H_out={h_out} exceed them; use "
                         f"backend='torch' or 'reference'")
    if lengths is not None:
        if tuple(lengths.shape) != (batch,) or lengths.dtype != torch.int64:
            raise ValueError(f"lengths must be a ({batch},) int64 tensor")
        if lengths.device != gx.device:
            raise ValueError("lengths must be on gx's device")


def make_problem(cell, gx, h0, c0, w_hh, w_hr, b_hh, lengths, reverse, nonlinearity="tanh"):
    _check(cell, gx, h0, c0, w_hh, w_hr, b_hh, lengths)
    contiguous = [None if t is None else t.contiguous() for t in (gx, h0, c0, w_hh, w_hr, b_hh)]
    return Problem(cell, *contiguous, None if lengths is None else lengths.contiguous(),
                   bool(reverse), nonlinearity)


def device_guard(tensor):
    """Make the tensor's CUDA device current around a launch: Triton launches on the current
    device, whatever device the pointers belong to."""
    if tensor.is_cuda:
        return torch.cuda.device(tensor.device)
    return contextlib.nullcontext()


class BarrierWatch:
    """Turns a cooperative launch's timed-out barrier (bit 30 of a batch tile's counter, see
    jit._grid_sync) into a RuntimeError without synchronising every launch: the counters are
    copied to pinned host memory behind the kernel, on its device's stream, and inspected once that
    copy has completed, at the next kernel call or at `check(block=True)`
    (fastrnn.kernels.synchronize). The forward and autograd's backward thread share it: locked."""

    FAILED_BIT = 1 << 30

    def __init__(self):
        self.pending = collections.deque()
        self.lock = threading.Lock()

    def watch(self, counters, what):
        if triton_interpreter_enabled() or not counters.is_cuda:
            self._raise_if_failed(counters, what)
            return
        with torch.cuda.device(counters.device):
            if torch.cuda.is_current_stream_capturing():
                return  # a graph replays the launch; nothing to read back at capture time
            host = torch.empty(counters.shape, dtype=counters.dtype, pin_memory=True)
            host.copy_(counters, non_blocking=True)
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(counters.device))
        with self.lock:
            self.pending.append((event, host, what))

    def check(self, block=False):
        while True:
            with self.lock:
                if not self.pending:
                    return
                event, host, what = self.pending[0]
                if not block and not event.query():
                    return
                self.pending.popleft()
            if block:
                event.synchronize()
            self._raise_if_failed(host, what)

    def _raise_if_failed(self, counters, what):
        if bool(((counters & self.FAILED_BIT) != 0).any()):
            with self.lock:
                self.pending.clear()
            raise RuntimeError(
                f"fastrnn: a grid barrier of the cooperative {what} kernel timed out: its "
                f"programs were not all resident, so its results are wrong. Run with "
                f"FASTRNN_KERNEL_FORM=stepwise and report this with `python -m fastrnn doctor`.")


barrier_watch = BarrierWatch()


def synchronize():
    """Wait for every kernel launched so far and raise if a cooperative grid barrier timed out."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    barrier_watch.check(block=True)


def is_form_failure(error):
    """A compile or launch failure that the next form can avoid (resources, co-residency)."""
    if isinstance(error, triton.runtime.errors.OutOfResources):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and any(
        phrase in text for phrase in ("cooperative", "out of resource", "too many resources"))


def launch(kernel, grid, args, meta, problem, counters=None, what=""):
    """Launch `kernel` on `problem`'s device in its plan's form; a cooperative launch asks the
    driver for co-residency and is watched for a timed-out barrier (counters: (batch tiles,)
    int32, zeroed by the caller). A compiled kernel that spills more than forms.SPILL_LIMIT
    bytes per thread (registers that did not fit: the same source spills with one triton version
    and not another) is remembered as a failure of its form for this shape, so the next call plans
    the next form; this one still runs, correctly."""
    cooperative = problem.plan.form == "cooperative"
    with device_guard(problem.gx):
        if cooperative and not triton_interpreter_enabled():
            compiled = kernel[grid](*args, **meta, launch_cooperative_grid=True)
        else:
            compiled = kernel[grid](*args, **meta)
    if cooperative and counters is not None:
        barrier_watch.watch(counters, what)
    spills = getattr(compiled, "n_spills", None)
    if isinstance(spills, int) and spills > forms.SPILL_LIMIT:
        forms.remember_failure(problem.gx.device, problem.shape, problem.plan.form,
                               RuntimeError(f"its compiled {what} kernel spills {spills} bytes "
                                            f"per thread"))


def run_planned(problem, pass_name, run, recorders=None):
    """Plan `problem`, note the form (in `recorders`, default this thread's), and run
    `run(problem)`; when the planned form cannot compile or launch on this device, remember that
    and run the next form instead."""
    while True:
        problem.plan = forms.plan(problem.shape, problem.gx.device)
        try:
            result = run(problem)
        except Exception as error:
            if not is_form_failure(error) or problem.plan.form == "stepwise" or forms.forced_form():
                raise
            forms.remember_failure(problem.gx.device, problem.shape, problem.plan.form, error)
            continue
        forms.note_form(problem.cell, pass_name, problem.plan, recorders)
        return result


def _launchers(cell):
    return importlib.import_module(f"fastrnn.kernels.{cell}")


def _empty(gx):
    """An empty batch or a zero hidden size: nothing to compute (and a zero grid is not a valid
    CUDA launch)."""
    return gx.dim() == 3 and (gx.shape[1] == 0 or gx.shape[2] == 0)


def op_forward(call):
    """(output, h_n, c_n or None, reserve): the saved activations when call.store (LSTM: gates
    i, f, g, o (T, B, 4H) and cell states (T, B, H); GRU: (T, B, 4H); RNN: none, the output is
    all its backward needs). An empty batch or a zero hidden size runs the reference's loop."""
    if _empty(call.gx):
        from fastrnn.ops import reference_kernels

        return reference_kernels.op_forward(call)
    barrier_watch.check()
    launchers = _launchers(call.cell)
    problem = make_problem(call.cell, call.gx, call.h0, call.c0, call.w_hh, call.w_hr, call.b_hh,
                           call.lengths, call.reverse, call.nonlinearity)
    outputs, saved = run_planned(problem, "forward", lambda p: launchers.forward(p, call.store))
    output, h_n, *c_n = outputs
    return output, h_n, c_n[0] if c_n else None, tuple(saved)


def reserve_shapes(call):
    steps, batch, width = call.gx.shape
    if _empty(call.gx):
        return ()
    hidden, dtype = call.hidden, call.gx.dtype
    return {"lstm": (((steps, batch, 4 * hidden), dtype), ((steps, batch, hidden), dtype)),
            "gru": (((steps, batch, 4 * hidden), dtype),), "rnn": ()}[call.cell]


def backward_state():
    """What the backward must see of the forward's thread: on CUDA autograd runs the backward on
    its own thread, where a forced form and the form recorders would otherwise be missing."""
    return forms.forced_form(), forms.active_recorders()


@contextlib.contextmanager
def backward_context(state):
    form, recorders = state
    with forms.use_form(form), forms.recording_into(recorders):
        yield


def op_backward(call, output, reserve, dout, dh_n, dc_n):
    """(dgx, dh0, dc0, dw_hh, dw_hr, db_hh) from the forward's output and reserve."""
    if _empty(call.gx):
        inputs = (call.gx, call.h0, call.c0, call.w_hh, call.w_hr, call.b_hh)
        return tuple(None if t is None else torch.zeros_like(t) for t in inputs)
    barrier_watch.check()
    launchers = _launchers(call.cell)
    problem = make_problem(call.cell, call.gx, call.h0, call.c0, call.w_hh, call.w_hr, call.b_hh,
                           call.lengths, call.reverse, call.nonlinearity)
    grads = [g.contiguous() for g in (dout, dh_n, dc_n) if g is not None]
    # The kernels index the saved tensors as contiguous; under torch.func.vmap's per-instance loop
    # (ops.batching) they arrive as strided slices of the batched ones.
    output = output.contiguous()
    reserve = tuple(r.contiguous() for r in reserve)
    # The backward plans on its own: its kernels need other resources than the forward's, and
    # every form reads the same saved activations.
    return run_planned(problem, "backward",
                       lambda p: launchers.backward(p, reserve, (output,), grads))


def run(launchers, gx, h0, c0, w_hh, w_hr, b_hh, lengths=None, reverse=False, nonlinearity="tanh"):
    """Run a cell's kernels (`launchers`, a module of this package) as one `fastrnn::<cell>` op
    call: autograd, torch.compile, export and torch.func see the op (fastrnn.ops)."""
    from fastrnn import ops

    return ops.recurrence("triton", launchers.CELL, gx, h0, c0, w_hh, w_hr, b_hh, lengths,
                          reverse, nonlinearity)


def previous_hidden(output, h0, lengths, reverse):
    """(T, B, H_out): the hidden state each step started from (h_{t-1} in processing order).

    A step's previous state is the previous processed step's output when that step was inside the
    sequence, else h0 (the reverse direction starts each sequence at its own end from h0). Steps
    outside a sequence get zeros (see zero_outside).
    """
    if reverse:
        shifted = torch.cat([output[1:], h0.unsqueeze(0)])
    else:
        shifted = torch.cat([h0.unsqueeze(0), output[:-1]])
    if lengths is None:
        return shifted
    if reverse:
        t = torch.arange(output.shape[0], device=output.device).unsqueeze(1)
        prev_valid = ((t + 1) < lengths.unsqueeze(0)).unsqueeze(2)
        shifted = torch.where(prev_valid, shifted, h0.unsqueeze(0))
    return zero_outside(shifted, lengths)


def zero_outside(values, lengths):
    """values (T, B, N) with the steps outside each sequence set to 0 (None lengths: unchanged).

    Those steps have zero gate gradients, but a weight gradient sums gradient x value over every
    step, and 0 x Inf (a finished sequence's state can hold an Inf) is NaN: torch.nn, which never
    computes those steps, has none.
    """
    if lengths is None:
        return values
    t = torch.arange(values.shape[0], device=values.device).unsqueeze(1)
    return values.masked_fill((t >= lengths.unsqueeze(0)).unsqueeze(2), 0)


def weight_grad(dgates, inputs):
    """sum_t dgates_t^T inputs_t: (T, B, N), (T, B, K) -> (N, K), one GEMM after the loop, in the
    tensors' own dtype (fp32 accumulation) whatever autocast state is active at `.backward()`."""
    with torch.autocast(dgates.device.type, enabled=False):
        return dgates.reshape(-1, dgates.shape[-1]).t().matmul(inputs.reshape(-1, inputs.shape[-1]))


def counters(problem):
    """Fresh zeroed barrier counters, one int32 per batch tile, for a cooperative launch; for the
    other forms, whose kernels never touch them, gx stands in (no allocation per call)."""
    if problem.plan.form != "cooperative":
        return problem.gx
    return torch.zeros(problem.plan.batch_tiles, dtype=torch.int32, device=problem.gx.device)
