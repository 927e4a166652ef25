"""Runs a micro grid: for every case and provider, the parity gate, then each mode timed.

Each (case, provider, mode) becomes one row with a status:
    ok             parity passed and timed
    parity_failed  timed, but the gate failed: the row gets no speedup
    unavailable    the provider cannot run here (no CUDA, backend refused, out of GPU memory, a
                   kernel that needs more registers or shared memory than the GPU has); the
                   reason is recorded
    error          the provider raised; the message is recorded and the grid goes on

Rows of providers that run the Triton kernels record the kernel form of one untimed call (`form`).
"""

import traceback

import torch
from tqdm.auto import tqdm

from benchmarks import parity, providers, timing
from benchmarks.cases import DTYPE_SHORT
from benchmarks.providers import Unavailable
from benchmarks.workload import Workload
from fastrnn.backends import BackendUnavailableError

UNAVAILABLE = (Unavailable, BackendUnavailableError)
try:  # a kernel (a forced form, say) that needs more registers or shared memory than the GPU has
    from triton.runtime.errors import OutOfResources

    UNAVAILABLE += (OutOfResources,)
except ImportError:  # no triton: nothing raises it
    pass


def case_fields(case):
    return {"grid": case.grid, "case": case.id, "cell": case.cell, "T": case.T, "B": case.B,
            "I": case.I, "H": case.H, "layers": case.layers, "bidirectional": case.bidirectional,
            "packed": case.packed, "dtype": case.dtype, "sweeps": list(case.sweeps),
            "tokens": case.tokens, "input_projection_included": True}


def _row(case, provider, mode, device, status, reason=None, gate=None, result=None, form=None):
    row = {**case_fields(case), "provider": provider, "mode": mode, "device": str(device),
           "status": status, "reason": reason, "parity": None if gate is None else gate.to_json(),
           "median_ms": None, "p20_ms": None, "p80_ms": None, "repeats": None, "timer": None,
           "us_per_step": None, "tokens_per_s": None, "peak_mem_bytes": None,
           "speedup_vs_torch": None, "form": form, "speedup_vs_torch_fp16": None,
           "speedup_vs_torch_bf16": None}
    if result is not None:
        row.update(median_ms=result.median_ms, p20_ms=result.p20_ms, p80_ms=result.p80_ms,
                   repeats=result.repeats, timer=result.timer,
                   peak_mem_bytes=result.peak_mem_bytes,
                   us_per_step=result.median_ms * 1e3 / case.T,
                   tokens_per_s=case.tokens / (result.median_ms * 1e-3))
    return row


def _error_text(error):
    return f"{type(error).__name__}: {error}".strip()


class _Pending:
    """A (case, provider, mode) row whose closure is built and warmed up, waiting to be timed."""

    def __init__(self, case, provider, mode, device, gate, fn, form):
        self.case, self.provider, self.mode, self.device = case, provider, mode, device
        self.gate, self.fn, self.form = gate, fn, form

    def row(self, result):
        status = "ok" if self.gate.ok else "parity_failed"
        reason = None if self.gate.ok else "parity failed: " + ", ".join(
            self.gate.to_json()["failed"])
        return _row(self.case, self.provider, self.mode, self.device, status, reason, self.gate,
                    result, self.form)


def _prepare(case, provider, modes, device):
    """For one (case, provider): the gate once, then per mode either a finished row (unavailable,
    error) or a _Pending with its closure built (the timer warms it up)."""
    try:
        gate = parity.gate(case, provider, device)
    except UNAVAILABLE as error:
        return [_row(case, provider, m, device, "unavailable", str(error)) for m in modes]
    except Exception as error:  # a crashing provider is a result to record, not a crashed grid
        traceback.print_exc()
        return [_row(case, provider, m, device, "error", "parity: " + _error_text(error))
                for m in modes]
    entries = []
    for mode in modes:
        form = None
        try:
            workload = Workload(case, provider, mode, device)
            fn = workload.closure()
            form = workload.kernel_form()
            entries.append(_Pending(case, provider, mode, device, gate, fn, form))
        except UNAVAILABLE as error:
            entries.append(_row(case, provider, mode, device, "unavailable", str(error), gate,
                                form=form))
        except Exception as error:
            traceback.print_exc()
            entries.append(_row(case, provider, mode, device, "error", _error_text(error), gate,
                                form=form))
    return entries


def _measure(entry, settings):
    """The row of one _Pending timed on its own (CUDA, and run_case)."""
    try:
        result = timing.measure(entry.fn, entry.device, settings)
    except UNAVAILABLE as error:
        return _row(entry.case, entry.provider, entry.mode, entry.device, "unavailable",
                    str(error), entry.gate, form=entry.form)
    except torch.OutOfMemoryError as error:  # a size this device cannot hold, not a bug
        return _row(entry.case, entry.provider, entry.mode, entry.device, "unavailable",
                    "out of memory: " + str(error).splitlines()[0], entry.gate, form=entry.form)
    except Exception as error:
        traceback.print_exc()
        return _row(entry.case, entry.provider, entry.mode, entry.device, "error",
                    _error_text(error), entry.gate, form=entry.form)
    finally:
        if torch.device(entry.device).type == "cuda":
            torch.cuda.empty_cache()
    return entry.row(result)


def run_case(case, provider, modes, device, settings):
    """Rows for one (case, provider) over `modes`: the gate once, then each mode timed."""
    return [entry if isinstance(entry, dict) else _measure(entry, settings)
            for entry in _prepare(case, provider, modes, device)]


def run_case_interleaved(case, case_providers, modes, settings):
    """Rows for one CPU case over all its providers and modes, timed in alternating rounds
    (timing.time_cpu_rounds): on a shared machine a burst of load then falls on every provider
    of the case alike instead of on whichever was being timed, so their ratios hold steadier."""
    entries = [e for provider in case_providers for e in _prepare(case, provider, modes, "cpu")]
    pending = [e for e in entries if not isinstance(e, dict)]
    try:
        timings = dict(zip(map(id, pending),
                           timing.time_cpu_rounds([e.fn for e in pending], settings)))
    except Exception:  # one closure failed in a later round: time each alone, errors recorded
        traceback.print_exc()
        return [e if isinstance(e, dict) else _measure(e, settings) for e in entries]
    return [e if isinstance(e, dict) else e.row(timings[id(e)]) for e in entries]


def _baseline_dtype(row):
    """The dtype of torch.nn a row times (short name), or None when it is not a torch.nn row."""
    if row["provider"] == "torch":
        return DTYPE_SHORT[row["dtype"]]
    fixed = providers.FIXED_DTYPE_TORCH.get(row["provider"])
    return None if fixed is None else DTYPE_SHORT[fixed]


def add_speedups(rows):
    """Speedups = a torch.nn baseline's median / this row's median, for rows that passed parity:

        speedup_vs_torch       vs torch.nn in the case's own dtype (the `torch` provider)
        speedup_vs_torch_fp16  vs torch.nn in fp16 (torch-fp16, or torch on an fp16 case)
        speedup_vs_torch_bf16  vs torch.nn in bf16 (torch-bf16, or torch on a bf16 case)

    The baseline only has to be timed: torch failing the gate (a low-precision cuDNN mode, say)
    withholds its own 1.00x, not the speedups of the providers that passed.
    """
    baseline = {}
    for r in rows:
        dtype = _baseline_dtype(r)
        if dtype is not None and r["median_ms"] is not None:
            baseline[(r["grid"], r["case"], r["mode"], dtype)] = r["median_ms"]
    for row in rows:
        if row["status"] != "ok":
            continue
        key = (row["grid"], row["case"], row["mode"])
        for field, dtype in (("speedup_vs_torch", DTYPE_SHORT[row["dtype"]]),
                             ("speedup_vs_torch_fp16", "fp16"), ("speedup_vs_torch_bf16", "bf16")):
            base = baseline.get((*key, dtype))
            if base is not None:
                row[field] = base / row["median_ms"]
    return rows


def run_grid(cases, names, modes, device, settings, progress=True):
    """Rows of every case x provider x mode, with speedups; a tqdm bar counts timed rows.
    `names` may hold aliases (triton-forms), expanded per case by providers.for_case."""
    per_case = [(case, providers.for_case(names, case)) for case in cases]
    total = sum(len(names) for _, names in per_case) * len(modes)
    rows = []
    # The gate and the warm-up calls run on the timed thread count too: extra intra-op threads
    # on a busy machine can slow even tiny ops many-fold.
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        with tqdm(total=total, disable=not progress, unit="row", dynamic_ncols=True) as bar:
            for case, case_providers in per_case:
                if torch.device(device).type == "cpu":
                    bar.set_description(f"{case.grid} {case.cell} {DTYPE_SHORT[case.dtype]}")
                    rows += run_case_interleaved(case, case_providers, modes, settings)
                    bar.update(len(modes) * len(case_providers))
                    continue
                for provider in case_providers:
                    bar.set_description(f"{case.grid} {case.cell} {provider} "
                                        f"{DTYPE_SHORT[case.dtype]}")
                    rows += run_case(case, provider, modes, device, settings)
                    bar.update(len(modes))
    finally:
        torch.set_num_threads(threads)
    return add_speedups(rows)
