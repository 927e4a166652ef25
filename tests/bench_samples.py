"""Synthetic result files for the report and plot tests.

No GPU result is committed yet, so `gpu_result` builds one in the shape a CUDA run writes: the
headline, fastrnns and part of the flashrnn grid, every provider kind (torch.nn in fixed dtypes,
the triton forms, reference, the cell loop), peak memory, kernel forms (one forced form that ran
another), a parity failure, out-of-memory refusals whose text differs per case, an error, and task
rows. Its numbers are made up (seeded) and never leave the tests.
"""

import random

from benchmarks import cases, results, runner, timing

FORMS = ("persistent", "cooperative", "stepwise")
PROVIDERS = ("torch", "torch-fp16", "torch-bf16", "reference", "triton",
             *(f"triton-{form}" for form in FORMS), "cells")

GPU_ENV = {
    "timestamp": "2026-01-01T00:00:00+00:00", "fastrnn": "0.1.0", "git_commit": "0" * 40,
    "git_dirty": False, "python": "3.11.7", "platform": "Linux", "torch": "2.13.0+cu128",
    "triton": "3.6.0", "numpy": "2.4.6", "cuda": "12.8", "cudnn": 91000,
    "gpu_name": "NVIDIA H100 80GB HBM3", "gpu_count": 1, "compute_capability": "9.0",
    "gpu_memory_bytes": 85 * 2**30, "driver": "570.00", "cpu_model": "Intel Xeon", "cpu_count": 16,
    "threads": 1, "load_average_1min": 0.5, "tf32_matmul": False, "tf32_cudnn": False,
    "triton_interpret": None, "fastrnn_backend_env": None,
}


def _gate(ok, worst=3e-3, failed=()):
    """A parity gate outcome as runner rows store it."""
    return _Gate({"ok": ok, "T": 16, "B": 16, "worst": "grad_weight_hh_l0",
                  "worst_rel_rms": worst, "failed": list(failed),
                  "tensors": [{"name": "grad_weight_hh_l0", "rel_rms": worst, "max_err": worst,
                               "ok": ok}]})


class _Gate:
    def __init__(self, payload):
        self.payload = payload

    def to_json(self):
        return self.payload


def _micro_rows(rng):
    chosen = (list(cases.GRIDS["headline"].cases) + list(cases.GRIDS["fastrnns"].cases)
              + list(cases.GRIDS["flashrnn"].cases[:12]))
    rows = []
    for index, case in enumerate(chosen):
        for provider in PROVIDERS:
            if runner.providers.FIXED_DTYPE_TORCH.get(provider) == case.dtype:
                continue  # the harness skips a fixed-dtype torch that repeats `torch`
            for mode in ("infer", "fwd", "fwdbwd"):
                rows.append(_one(rng, index, case, provider, mode))
    return runner.add_speedups(rows)


def _one(rng, index, case, provider, mode):
    if provider == "cells" and case.packed:
        return runner._row(case, provider, mode, "cuda", "unavailable",
                           "a hand-unrolled cell loop takes no packed input")
    if provider == "triton-cooperative" and case.H >= 768 and mode == "fwdbwd":
        # Out-of-memory messages name the size, so each case has its own reason.
        return runner._row(case, provider, mode, "cuda", "unavailable",
                           f"out of memory: CUDA out of memory. Tried to allocate "
                           f"{case.B * case.T * case.H / 2**18:.2f} GiB")
    if provider == "reference" and index == 3 and mode == "infer":
        return runner._row(case, provider, mode, "cuda", "error",
                           "RuntimeError: CUDA error: an illegal memory access was encountered")
    base = case.T * case.B * case.H / 2e6 * {"infer": 1, "fwd": 1.2, "fwdbwd": 3}[mode]
    median = base * rng.uniform(0.3, 3.0) * (40 if provider == "cells" else 1)
    timed = timing.Timing(median, median * 0.97, median * 1.04, 50, "triton.testing.do_bench",
                          int(rng.uniform(1, 900) * 2**20))
    form = None
    if provider.startswith("triton"):
        form = provider[len("triton-"):] if provider != "triton" else "persistent"
        if provider == "triton-persistent" and case.H == 768:
            form = "stepwise"  # a forced form that could not run here
        if case.layers > 1 and provider == "triton":
            form = "persistent+stepwise"
    failing = provider == "triton-stepwise" and case.dtype == "float16" and case.H == 512
    gate = (_gate(False, 8e-2, ["grad_weight_hh_l0", "grad_h0"]) if failing
            else _gate(True, rng.uniform(1e-7, 5e-3)))
    return runner._row(case, provider, mode, "cuda", "parity_failed" if failing else "ok",
                       "parity failed: grad_weight_hh_l0, grad_h0" if failing else None, gate,
                       timed, form)


def _task_rows(rng):
    rows = []
    for task, metric, higher in (("majority", "val_accuracy", True), ("sine", "val_mse", False),
                                 ("dna", "val_accuracy", True)):
        torch_seconds = rng.uniform(0.5, 3)
        for backend in ("torch", "triton", "reference"):
            seconds = torch_seconds * {"torch": 1, "triton": 0.6, "reference": 4}[backend]
            rows.append({"grid": "tasks", "task": task, "backend": backend, "device": "cuda",
                         "size": "full", "status": "ok", "reason": None,
                         "resolved_backend": backend, "metric": metric,
                         "final_metric": 0.9 if higher else 0.03, "higher_is_better": higher,
                         "epochs": [{"epoch": e, "loss": 1 / e, "metric": 0.9, "seconds": seconds,
                                     "tokens_per_s": 1e6} for e in (1, 2, 3)],
                         "seconds_per_epoch": seconds, "tokens_per_s": 1e6 / seconds,
                         "total_seconds": 3 * seconds,
                         "speedup_vs_torch": torch_seconds / seconds})
    return rows


def gpu_result(seed=0):
    """A validated, GPU-shaped result dict (see the module docstring)."""
    rng = random.Random(seed)
    result = results.build(command="synthetic (tests/bench_samples.py)", device="cuda",
                           grids=["headline", "fastrnns", "flashrnn", "tasks"], env=dict(GPU_ENV),
                           rows=_micro_rows(rng), tasks=_task_rows(rng), providers={},
                           settings={"threads": 1, "tf32": False, "parity_steps": 16,
                                     "tiny": False, "load_average_1min_end": 0.6})
    results.schema.validate(result)
    return result
