"""The checks behind `fastrnn doctor`: environment, backend choices, parity rows and timings.

Every function here returns plain dicts of JSON scalars (rows of the doctor's JSON report) and
prints nothing; fastrnn.doctor orders, prints and judges them. A check never raises: an exception
becomes a row with status 'error', its text in `detail` and its traceback in `traceback`.

Dimensions: T time, B batch, I input size, H hidden size, P projection size.
"""

import time
import traceback
import warnings
from dataclasses import dataclass

import torch
import torch.utils.benchmark

from fastrnn import environment
from fastrnn.backends import (
    BackendUnavailableError,
    RecurrenceSpec,
    resolve_backend,
    triton_interpreter_enabled,
)
from fastrnn.parity_cli import DTYPES, ParityConfig, check_module, fastrnn_module

PASSED, FAILED, SKIPPED, ERROR = "passed", "failed", "skipped", "error"
STATUSES = (PASSED, FAILED, SKIPPED, ERROR)
BUDGET = "budget"  # the detail of a check skipped because the run's time budget was spent
NOT_APPLICABLE = "not applicable: "  # prefix of a check a backend refuses by design (triton fp64)


class Budget:
    """Wall-clock budget of one doctor run: a check that would start past the deadline is skipped."""

    def __init__(self, seconds):
        self.start = time.monotonic()
        self.deadline = self.start + seconds

    def exhausted(self):
        return time.monotonic() >= self.deadline

    def elapsed(self):
        return time.monotonic() - self.start


def describe(error):
    """'TypeName: first line of the message', at most 300 characters, for a row's detail."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= 300 else text[:297] + "..."


def _error_fields(error):
    return {"status": ERROR, "detail": describe(error), "traceback": traceback.format_exc()}


def kernels_module():
    """(fastrnn.kernels, None), or (None, why not) when Triton is missing or fails to import."""
    try:
        from fastrnn import kernels
    # Not only ImportError: a broken Triton install can fail at import in other ways, and the
    # doctor exists to report exactly that rather than crash on it.
    except Exception as error:
        return None, f"fastrnn.kernels does not import ({describe(error)})"
    return kernels, None


# -- 1. environment ----------------------------------------------------------------------------


def gpu_details():
    """The GPU fields the kernels' form choice depends on; None without CUDA (same keys anywhere)."""
    block = {"cuda_available": torch.cuda.is_available(), "gpu_sm_count": None,
             "gpu_shared_memory_per_block_optin": None}
    if block["cuda_available"]:
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        block["gpu_sm_count"] = int(props.multi_processor_count)
        # Not in every torch release; None rather than a guess where it is missing.
        optin = getattr(props, "shared_memory_per_block_optin", None)
        block["gpu_shared_memory_per_block_optin"] = None if optin is None else int(optin)
    return block


def collect_environment():
    """fastrnn.environment.collect() plus the GPU and Triton facts a self-check needs."""
    _, why_not = kernels_module()
    return {**environment.collect(), **gpu_details(),
            "triton_interpreter_enabled": triton_interpreter_enabled(),
            "kernels_importable": why_not is None, "kernels_import_error": why_not}


# -- 2. backend choices ------------------------------------------------------------------------

# (name, mode, H, B, dtype, P): shapes users typically run, to show what `auto` does with them.
CHOICE_CONFIGS = (
    ("LSTM H=256 B=16 bfloat16", "LSTM", 256, 16, torch.bfloat16, 0),
    ("LSTM H=1024 B=64 float16", "LSTM", 1024, 64, torch.float16, 0),
    ("GRU H=512 B=16 bfloat16", "GRU", 512, 16, torch.bfloat16, 0),
    ("RNN H=128 B=8 float32", "RNN_TANH", 128, 8, torch.float32, 0),
    ("LSTM H=1024 P=256 B=32 bfloat16", "LSTM", 1024, 32, torch.bfloat16, 256),
)
KERNEL_CELLS = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn", "RNN_RELU": "rnn"}


def backend_choice(name, mode, hidden, batch, dtype, proj, device):
    """What `auto` runs for one configuration on `device`, and why; the kernel form if triton."""
    row = {"name": name, "mode": mode, "hidden_size": hidden, "batch": batch,
           "dtype": str(dtype).removeprefix("torch."), "proj_size": proj, "device": str(device),
           "backend": None, "reason": None, "form": None, "form_reason": None, "error": None}
    try:
        spec = RecurrenceSpec(mode=mode, device=device, dtype=dtype, hidden_size=hidden,
                              proj_size=proj)
        row["backend"], row["reason"] = resolve_backend(None, spec)
        if row["backend"] == "triton":
            from fastrnn import kernels

            row["form"], row["form_reason"] = kernels.choose_form(
                KERNEL_CELLS[mode], hidden, proj, dtype, device, batch)
    # FASTRNN_BACKEND=triton on a CPU raises here: that is worth showing, not crashing on.
    except Exception as error:
        row["error"] = describe(error)
    return row


def backend_choices(device):
    return [backend_choice(*config, device) for config in CHOICE_CONFIGS]


# -- 3. parity ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParityCase:
    """One cell configuration of the parity section. mode: a fastrnn.parity_cli.MODES key."""

    label: str
    mode: str
    proj_size: int = 0
    lengths: tuple | None = None


# Small enough that the float64 oracle and Triton's CPU interpreter take well under a second each.
PARITY_SHAPE = {"T": 5, "B": 3, "I": 4, "H": 8}
PARITY_CASES = (
    ParityCase("LSTM", "lstm"),
    ParityCase("LSTM proj", "lstm", proj_size=3),
    ParityCase("LSTM packed", "lstm", lengths=(5, 2, 4)),  # unsorted lengths, one full
    ParityCase("GRU", "gru"),
    ParityCase("RNN tanh", "rnn"),
    ParityCase("RNN relu", "rnn_relu"),
)
PARITY_BACKENDS = ("reference", "cpu", "torch", "triton")
PARITY_DTYPES = tuple(DTYPES)  # float64, float32, float16, bfloat16: what fastrnn parity checks


def backend_unavailable(backend, device):
    """None when `backend` can run on `device` in this process, else why not.

    Per-configuration refusals (triton and float64, an old GPU) are found per row instead.
    """
    if backend == "cpu" and device.type != "cpu":
        return "the cpu backend runs on CPU tensors"
    if backend != "triton":
        return None
    _, why_not = kernels_module()
    if why_not is not None:
        return why_not
    if device.type == "cuda" or triton_interpreter_enabled():
        return None
    return ("no CUDA device here, and on the CPU the kernels run only through Triton's "
            "interpreter: export TRITON_INTERPRET=1 before starting Python to check them there")


def parity_row(backend, case, dtype, device, budget, unavailable=None):
    """Check `backend` on `case` in `dtype` against the float64 reference (fastrnn parity's check).

    Args:
        backend: 'reference' | 'cpu' | 'torch' | 'triton'.  case: ParityCase.  dtype: a DTYPES key.
        device: torch.device.  budget: Budget.  unavailable: why the backend cannot run here.
    Returns:
        a row: section, name, backend, cell, case, dtype, status, detail, seconds, and for a run
        check tensors, worst, worst_ratio (error / tolerance of the worst tensor), warnings;
        backend_unavailable: True on the rows of a backend that cannot run here at all.
    """
    row = {"section": "parity", "name": f"{backend}/{case.label}/{dtype}", "backend": backend,
           "cell": case.mode, "case": case.label, "dtype": dtype, "status": None, "detail": None,
           "seconds": None}
    if unavailable is not None:
        return {**row, "status": SKIPPED, "detail": unavailable, "backend_unavailable": True}
    if budget.exhausted():
        return {**row, "status": SKIPPED, "detail": BUDGET}
    config = ParityConfig(mode=case.mode, lengths=case.lengths, proj_size=case.proj_size,
                          dtype=dtype, device=str(device), **PARITY_SHAPE)
    start = time.perf_counter()
    try:
        # torch's own warnings (oneDNN and projections, say) go to the JSON row, not the screen.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            comparisons = check_module(config, fastrnn_module(config, backend))
        row.update(_judge(comparisons))
        row["warnings"] = sorted({str(w.message) for w in caught})
    except BackendUnavailableError as error:
        reason = str(error).split("cannot run this call: ", 1)[-1]
        row.update(status=SKIPPED, detail=NOT_APPLICABLE + reason)
    # Any exception is a finding of the doctor, reported in the row; the run goes on.
    except Exception as error:
        row.update(_error_fields(error))
    row["seconds"] = round(time.perf_counter() - start, 3)
    return row


def _judge(comparisons):
    """Status and detail of a list of fastrnn.testing.Comparison."""
    ratios = [max(c.rel_rms / c.tolerance.rel_rms, c.max_err / c.tolerance.max_err)
              if c.finite else float("inf") for c in comparisons]
    worst = max(range(len(comparisons)), key=ratios.__getitem__)
    # None for a non-finite tensor: JSON has no infinity.
    fields = {"tensors": len(comparisons), "worst": comparisons[worst].name,
              "worst_ratio": ratios[worst] if ratios[worst] != float("inf") else None}
    failed = [c for c in comparisons if not c.ok]
    if not failed:
        share = "<1%" if ratios[worst] < 0.01 else f"{ratios[worst]:.0%}"
        detail = (f"{len(comparisons)} tensors within tolerance (worst: "
                  f"{comparisons[worst].name} at {share} of its bound)")
        return {**fields, "status": PASSED, "detail": detail}
    more = f"; also off: {', '.join(c.name for c in failed[2:])}" if len(failed) > 2 else ""
    detail = f"{len(failed)} of {len(comparisons)} tensors off: " + "; ".join(
        str(c) for c in failed[:2]) + more
    return {**fields, "status": FAILED, "detail": detail, "failed": [c.name for c in failed]}


def _emit(rows, row, on_row):
    """Append a finished row and pass it to on_row at once (an interrupt keeps what finished)."""
    rows.append(row)
    if on_row is not None:
        on_row(row)


def parity_rows(device, budget, on_row=None, rows=None):
    """Every backend x case x dtype row, in that order; on_row(row) is called as each finishes.
    Each is appended to `rows` (a new list by default) as it finishes, so a caller's list keeps
    the finished rows when an interrupt ends the loop."""
    rows = [] if rows is None else rows
    for backend in PARITY_BACKENDS:
        unavailable = backend_unavailable(backend, device)
        for case in PARITY_CASES:
            for dtype in PARITY_DTYPES:
                _emit(rows, parity_row(backend, case, dtype, device, budget, unavailable), on_row)
    return rows


# -- 4. timing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchSize:
    """One timed shape. cell: 'LSTM' | 'GRU'; the input size I equals H."""

    cell: str
    T: int
    B: int
    H: int
    dtype: str

    @property
    def name(self):
        return f"{self.cell} T={self.T} B={self.B} H={self.H} {self.dtype}"


BENCH_SIZES = {
    "cuda": (BenchSize("LSTM", 64, 16, 128, "bfloat16"), BenchSize("GRU", 64, 16, 128, "bfloat16"),
             BenchSize("LSTM", 256, 16, 512, "bfloat16"), BenchSize("GRU", 256, 16, 512, "bfloat16")),
    "cpu": (BenchSize("LSTM", 32, 8, 64, "float32"), BenchSize("GRU", 32, 8, 64, "float32")),
}
BENCH_MODES = ("forward", "forward+backward")
CPU_MIN_RUN_TIME = 0.2  # seconds per CPU timing: a few blocks for a median, cheap on the budget
CUDA_WARMUP_MS, CUDA_REP_MS = 25, 100  # do_bench budgets per timing


def _do_bench():
    """triton.testing.do_bench, or None without Triton (timing then falls back to torch's Timer)."""
    try:
        from triton.testing import do_bench
    except ImportError:
        return None
    return do_bench


def timer_name(device):
    """How time_ms times on `device`, for the report."""
    if device.type == "cuda" and _do_bench() is not None:
        return "median of triton.testing.do_bench"
    return "median of torch.utils.benchmark blocked_autorange"


def time_ms(fn, device):
    """Median milliseconds per call of fn(): do_bench on CUDA, blocked_autorange on 1 CPU thread.

    The first call (Triton compilation, cuDNN plan choice, allocator warm-up) runs before timing.
    """
    fn()
    do_bench = _do_bench() if device.type == "cuda" else None
    if do_bench is not None:
        torch.cuda.synchronize()
        median, _, _ = do_bench(fn, warmup=CUDA_WARMUP_MS, rep=CUDA_REP_MS,
                                quantiles=[0.5, 0.2, 0.8])
        return float(median)
    # torch.utils.benchmark synchronizes CUDA around its blocks, so it is the CUDA fallback too.
    threads = 1 if device.type == "cpu" else torch.get_num_threads()
    timer = torch.utils.benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    return timer.blocked_autorange(min_run_time=CPU_MIN_RUN_TIME).median * 1e3


class _Workload:
    """A torch.nn module and a fastrnn (auto backend) twin with the same weights, their inputs
    (T, B, I) and states (1, B, H), and the closures to time."""

    def __init__(self, size, device):
        import fastrnn

        dtype = DTYPES[size.dtype]
        torch.manual_seed(0)
        self.modules = {"torch.nn": getattr(torch.nn, size.cell)(size.H, size.H, device=device,
                                                                dtype=dtype)}
        self.modules["fastrnn"] = getattr(fastrnn, size.cell)(size.H, size.H, device=device,
                                                              dtype=dtype)
        self.modules["fastrnn"].load_state_dict(self.modules["torch.nn"].state_dict())
        generator = torch.Generator().manual_seed(1)
        randn = lambda *shape: torch.randn(*shape, generator=generator).to(device, dtype)
        self.x = randn(size.T, size.B, size.H).requires_grad_()
        self.states = [randn(1, size.B, size.H).requires_grad_()
                       for _ in range(2 if size.cell == "LSTM" else 1)]
        self.lstm = size.cell == "LSTM"
        self.upstream = [randn(size.T, size.B, size.H)] + [torch.randn_like(s) for s in self.states]

    def forward(self, provider):
        output, finals = self.modules[provider](self.x, tuple(self.states) if self.lstm
                                                else self.states[0])
        return [output, *(finals if self.lstm else [finals])]

    def closure(self, provider, mode):
        if mode == "forward":
            return lambda: self.forward(provider)
        leaves = [self.x, *self.states, *self.modules[provider].parameters()]
        # autograd.grad, not .backward(): nothing accumulates into .grad between repeats.
        return lambda: torch.autograd.grad(self.forward(provider), leaves, self.upstream)


def _auto_backend(size, device):
    spec = RecurrenceSpec(mode=size.cell, device=device, dtype=DTYPES[size.dtype],
                          hidden_size=size.H)
    return resolve_backend(None, spec)[0]


def _recorded_forms(fn):
    """Call fn() once; the kernel forms that ran ({'cell','pass','form','reason'} dicts)."""
    kernels, _ = kernels_module()
    if kernels is None:
        fn()
        return []
    with kernels.record_forms() as forms:
        fn()
    return list(forms)


def _form_label(forms):
    """'persistent', or 'forward: a, backward: b' when the passes differ; None if none ran."""
    by_pass = {}
    for record in forms:
        by_pass.setdefault(record["pass"], record["form"])
    if len(set(by_pass.values())) <= 1:
        return next(iter(by_pass.values()), None)
    return ", ".join(f"{name}: {form}" for name, form in by_pass.items())


def bench_row(workload, size, provider, mode, device, budget, torch_ms=None):
    """Time one (size, provider, mode); never a pass/fail criterion, only an error is.

    workload: a _Workload, or the row fields of a failure to build one (error or budget skip).
    """
    row = {"section": "bench", "name": size.name, "cell": size.cell, "T": size.T, "B": size.B,
           "H": size.H, "dtype": size.dtype, "provider": provider, "backend": "torch",
           "mode": mode, "status": None, "detail": None, "median_ms": None,
           "speedup_vs_torch": None, "form": None, "forms": []}
    if isinstance(workload, dict):
        return {**row, **workload}
    if budget.exhausted():
        return {**row, "status": SKIPPED, "detail": BUDGET}
    try:
        if provider == "fastrnn":
            row["backend"] = _auto_backend(size, device)
        fn = workload.closure(provider, mode)
        row["forms"] = _recorded_forms(fn)
        row["form"] = _form_label(row["forms"])
        row["median_ms"] = time_ms(fn, device)
        row.update(status=PASSED, detail="timed")
        if torch_ms is not None:
            row["speedup_vs_torch"] = torch_ms / row["median_ms"]
    # A timing that raises is the one thing the timing section can fail on.
    except Exception as error:
        row.update(_error_fields(error))
    return row


def _workload(size, device, budget):
    """The _Workload of `size`, or the row fields that say why there is none."""
    if budget.exhausted():
        return {"status": SKIPPED, "detail": BUDGET}
    try:
        return _Workload(size, device)
    # A dtype this torch cannot make on this device, say: every row of the size reports it.
    except Exception as error:
        return _error_fields(error)


def bench_rows(device, budget, on_row=None, rows=None):
    """torch.nn then fastrnn per size and mode; CPU timings on one thread (restored after). Rows
    are appended to `rows` as they finish, as in parity_rows."""
    rows = [] if rows is None else rows
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        for size in BENCH_SIZES[device.type]:
            workload = _workload(size, device, budget)
            for mode in BENCH_MODES:
                reference = bench_row(workload, size, "torch.nn", mode, device, budget)
                if reference["median_ms"] is not None:
                    reference["speedup_vs_torch"] = 1.0
                _emit(rows, reference, on_row)
                ours = bench_row(workload, size, "fastrnn", mode, device, budget,
                                 reference["median_ms"])
                _emit(rows, ours, on_row)
    finally:
        torch.set_num_threads(threads)
    return rows
