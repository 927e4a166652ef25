"""Where a cooperative step's time goes: the grid barrier alone and inside the kernels, per poll.

    PYTHONPATH=. python3 -m fastrnn.kernels.probe --out DIR         (CUDA; at most ~80 s cold)
    python -m fastrnn.kernels.probe --dry-run --out DIR             (CPU, interpreter, tiny sizes)

Sections, run in this order (the most telling first); once --budget seconds have passed since the
process started (less a row's reserve), the rest are recorded as skipped, so the command ends
in time on a cold compile cache:
    barrier          a kernel that only runs T grid barriers (jit._sync_if) with NUM_HT programs,
                     NUM_HT in 16..64, each poll variant
    forward          the cooperative LSTM and GRU forward at H = 256 and 768 (B=16, T=1024, bf16)
                     with each poll variant (FASTRNN_BARRIER_POLL=rmw|load)
    forward-nowait   the same with the barrier compiled out: programs never wait, RESULTS WRONG,
                     timing only; the difference to `forward` bounds the barrier's share of a step
    fwdbwd           forward + backward, each poll variant
    fwdbwd-nowait    forward + backward with the barrier compiled out (timing only)
Each row gives the median µs per step (triton.testing.do_bench) and a check: the barrier kernel's
counters end at T * NUM_HT without the error bit; two `rmw` runs of a kernel give the same bits and
the `load` variant's outputs (and gradients) equal them, and neither trips the barrier watch.
Writes DIR/probe.json (rewritten after every row, so a killed run keeps what it measured) and
prints a table. Exit status 0 when every row
that ran passed its check, 1 otherwise, 2 when the probe cannot run here (no CUDA, or
TRITON_INTERPRET=1 without --dry-run).

--dry-run runs the same code on the CPU through the Triton interpreter (TRITON_INTERPRET=1 is set
for a child process when it is not set already) with one program per batch tile, tiny sizes and a
single timed call, so that the command cannot rot between GPU sessions (tests/test_kernel_probe.py).
The interpreter cannot run inline PTX: there `load` polls like `rmw` (forms.barrier_bits).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import triton
import triton.language as tl

from fastrnn.backends import triton_interpreter_enabled
from fastrnn.gpu_timebox import process_age
from fastrnn.kernels import forms
from fastrnn.kernels.jit import _sync_if

SECTIONS = ("barrier", "forward", "forward-nowait", "fwdbwd", "fwdbwd-nowait")
POLLS = forms.BARRIER_POLLS
RESULT_FILE = "probe.json"
# The anchor of docs/benchmarks.md's headline table.
BATCH, STEPS, HIDDEN, CELLS, DTYPE = 16, 1024, (256, 768), ("lstm", "gru"), torch.bfloat16
# (NUM_HT, warps) of the barrier-only kernel: the cooperative plans at B=16 bf16 use 16 programs at
# H = 256 (GRU 4 warps, LSTM 8), 48 at H = 768 (8 warps); 32 and 64 complete the scaling.
BARRIER_CASES = ((16, 4), (16, 8), (32, 8), (48, 8), (64, 8))
# do_bench's milliseconds (the gpu-run headline uses the same).
WARMUP_MS, REP_MS = 10, 40
BUDGET_S = 80.0
# A row is started only with this much of the budget left: a cold row compiles up to two
# cooperative kernels (1-3 s each on the H100 machine) and times them (under a second).
ROW_RESERVE_S = 8.0
DRY = {"batch": 3, "steps": 4, "hidden": (32,), "dtype": torch.float32,
       "barrier_cases": ((1, 4),)}
NOWAIT_NOTE = "barrier compiled out: results wrong, timing only"


@triton.jit(do_not_specialize=["T", "spin_limit"])
def _barrier_kernel(sync_ptr, T, spin_limit, NUM_HT: tl.constexpr, BARRIER: tl.constexpr):
    """T grid barriers of NUM_HT programs per batch tile (sync_ptr: (programs / NUM_HT,) int32,
    zeroed), exactly as the cooperative kernels run them, with nothing else in the loop."""
    p_sync = sync_ptr + tl.program_id(0) // NUM_HT
    barriers = 0
    for _ in range(T):
        barriers = _sync_if(True, p_sync, barriers, NUM_HT, spin_limit, BARRIER)


class Probe:
    """The run's settings, its rows, the result file and the clock."""

    def __init__(self, out, dry_run, budget, steps, sections):
        self.out, self.dry_run, self.budget, self.sections = Path(out), dry_run, budget, sections
        self.steps = steps or (DRY["steps"] if dry_run else STEPS)
        self.batch = DRY["batch"] if dry_run else BATCH
        self.hidden = DRY["hidden"] if dry_run else HIDDEN
        self.dtype = DRY["dtype"] if dry_run else DTYPE
        self.device = "cpu" if dry_run else "cuda"
        self.rows = []

    def left(self):
        return self.budget - process_age()

    def header(self):
        device = "triton interpreter (CPU)" if self.dry_run else torch.cuda.get_device_name()
        return {"probe": "fastrnn.kernels.probe", "device": device, "torch": torch.__version__,
                "triton": triton.__version__, "dry_run": self.dry_run, "batch": self.batch,
                "steps": self.steps, "dtype": str(self.dtype).removeprefix("torch."),
                "budget_s": self.budget, "polls": list(POLLS),
                "poll_meaning": {"rmw": "tl.atomic_add(counter, 0, sem='acquire') (LLVM turns it "
                                        "into a thread-0 acquire load whose value is broadcast "
                                        "through shared memory with 2 CTA barriers per poll)",
                                 "load": "inline PTX ld.acquire.gpu.global.b32 by every thread, "
                                         "no CTA barrier inside the poll loop"}}

    def save(self):
        self.out.mkdir(parents=True, exist_ok=True)
        data = {**self.header(), "elapsed_s": round(process_age(), 1), "rows": self.rows}
        tmp = self.out / (RESULT_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.out / RESULT_FILE)

    def add(self, row):
        row["elapsed_s"] = round(process_age(), 1)
        self.rows.append(row)
        self.save()
        print(_format_row(row), flush=True)

    def time_ms(self, fn):
        """Median milliseconds of one call of fn (do_bench on CUDA; one timed call when dry)."""
        if self.dry_run:
            start = time.perf_counter()
            fn()
            return (time.perf_counter() - start) * 1e3
        return triton.testing.do_bench(fn, warmup=WARMUP_MS, rep=REP_MS, return_mode="median")

    def per_step(self, ms):
        return round(ms * 1e3 / self.steps, 3)


def _format_row(row):
    what = row["section"] if "cell" not in row else f"{row['section']} {row['cell']} H={row['hidden']}"
    if "num_ht" in row:
        what += f" NUM_HT={row['num_ht']} warps={row['warps']}"
    value = f"{row['us_per_step']:9.3f} us/step" if row.get("us_per_step") is not None else " " * 17
    status = row.get("skipped") or row.get("error") or row.get("check", "")
    return f"{what:42s} {row.get('poll', ''):6s} {value}  {status}"


def _with_poll(poll):
    """Set FASTRNN_BARRIER_POLL for what follows (None: unset) and drop cached constexprs."""
    if poll is None:
        os.environ.pop(forms.BARRIER_POLL_ENV_VAR, None)
    else:
        os.environ[forms.BARRIER_POLL_ENV_VAR] = poll
    forms.clear_plan_cache()


def _skip(probe, row):
    if probe.left() < ROW_RESERVE_S:
        probe.add({**row, "skipped": f"budget ({probe.budget:.0f} s) spent"})
        return True
    return False


def barrier_section(probe):
    cases = DRY["barrier_cases"] if probe.dry_run else BARRIER_CASES
    for num_ht, warps in cases:
        for poll in POLLS:
            row = {"section": "barrier", "num_ht": num_ht, "warps": warps, "poll": poll}
            if _skip(probe, row):
                continue
            _with_poll(poll)
            bits = forms.barrier_bits()
            sync = torch.zeros(1, dtype=torch.int32, device=probe.device)
            options = {} if probe.dry_run else {"launch_cooperative_grid": True}

            def run(sync=sync, num_ht=num_ht, warps=warps, bits=bits, options=options):
                sync.zero_()
                _barrier_kernel[(num_ht,)](sync, probe.steps, forms.SPIN_LIMIT, NUM_HT=num_ht,
                                           BARRIER=bits, num_warps=warps, **options)

            try:
                run()
                ms = probe.time_ms(run)
                run()
                count = int(sync.item())
                expected = probe.steps * num_ht
                row["us_per_step"] = probe.per_step(ms)
                row["check"] = ("ok: counter = T * NUM_HT" if count == expected else
                                f"FAILED: counter {count:#x}, expected {expected}"
                                + (" (bit 30: a barrier timed out)" if count & (1 << 30) else ""))
            except Exception as error:  # record it and go on: the next rows still tell something
                row["error"] = f"FAILED {type(error).__name__}: {str(error).splitlines()[0][:300]}"
            probe.add(row)
    _with_poll(None)


def _inputs(probe, cell, hidden, grad):
    gates = forms.GATES[cell]
    generator = torch.Generator(device=probe.device).manual_seed(0)

    def randn(*shape, scale=1.0):
        values = torch.randn(*shape, generator=generator, device=probe.device) * scale
        return values.to(probe.dtype).requires_grad_(grad)

    tensors = {"gx": randn(probe.steps, probe.batch, gates * hidden),
               "h0": randn(probe.batch, hidden, scale=0.5),
               "w_hh": randn(gates * hidden, hidden, scale=hidden ** -0.5)}
    if cell == "lstm":
        tensors["c0"] = randn(probe.batch, hidden, scale=0.5)
    else:
        tensors["b_hh"] = randn(gates * hidden, scale=0.1)
    return tensors


def _forward(cell, t):
    from fastrnn import kernels

    if cell == "lstm":
        return kernels.lstm_recurrence(t["gx"], t["h0"], t["c0"], t["w_hh"])
    return kernels.gru_recurrence(t["gx"], t["h0"], t["w_hh"], t["b_hh"])


def _pass_fn(probe, cell, hidden, backward):
    """(fn, tensors): one forward (no gradient kept) or forward + backward; fn returns the outputs
    (and gradients) to compare."""
    tensors = _inputs(probe, cell, hidden, backward)
    if not backward:
        def fn():
            with torch.no_grad():
                return _forward(cell, tensors)
        return fn
    leaves = list(tensors.values())
    generator = torch.Generator(device=probe.device).manual_seed(1)
    # The gradients of output (T, B, H), h_n (B, H) and, LSTM, c_n (B, H).
    shapes = [(probe.steps, probe.batch, hidden)] + [(probe.batch, hidden)] * (
        2 if cell == "lstm" else 1)
    upstream = [torch.randn(shape, generator=generator, device=probe.device).to(probe.dtype)
                for shape in shapes]

    def fn():
        outputs = _forward(cell, tensors)
        grads = torch.autograd.grad(outputs, leaves, upstream)
        return tuple(y.detach() for y in outputs) + grads

    return fn


def _equal(a, b):
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def kernel_section(probe, section):
    from fastrnn import kernels

    backward = section.startswith("fwdbwd")
    nowait = section.endswith("nowait")
    for cell in CELLS:
        for hidden in probe.hidden:
            reference = None
            for poll in ("rmw",) if nowait else POLLS:
                row = {"section": section, "cell": cell, "hidden": hidden, "poll": poll}
                if nowait:
                    row["note"] = NOWAIT_NOTE
                if _skip(probe, row):
                    continue
                _with_poll(poll)
                try:
                    with kernels.use_form("cooperative"), kernels.record_forms() as ran:
                        fn = _pass_fn(probe, cell, hidden, backward)
                        if nowait:
                            with forms._barrier_compiled_out():
                                ms = probe.time_ms(fn)
                                kernels.synchronize()
                        else:
                            results = fn()
                            again = fn() if poll == "rmw" else results
                            kernels.synchronize()
                            ms = probe.time_ms(fn)
                            kernels.synchronize()
                    row["us_per_step"] = probe.per_step(ms)
                    row["plan"] = sorted({f"{r['pass']}: {r['plan']}" for r in ran})
                    if nowait:
                        row["check"] = "none (timing only)"
                    elif poll == "rmw":
                        reference = results
                        row["check"] = ("ok: two runs bit-equal" if _equal(results, again) else
                                        "FAILED: two runs differ (nondeterministic)")
                    elif reference is None:
                        row["check"] = "ok: no barrier timed out (no rmw result to compare)"
                    else:
                        row["check"] = ("ok: bit-equal to rmw" if _equal(reference, results) else
                                        "FAILED: differs from rmw")
                except Exception as error:  # record it and go on: the next rows still tell
                    row["error"] = (f"FAILED {type(error).__name__}: "
                                    f"{str(error).splitlines()[0][:300]}")
                probe.add(row)
    _with_poll(None)


def run(out, dry_run=False, budget=BUDGET_S, steps=None, sections=SECTIONS):
    """Run the probe's sections; returns the exit status (0: every row that ran passed)."""
    probe = Probe(out, dry_run, budget, steps, sections)
    print(f"fastrnn kernel probe on {probe.header()['device']}: B={probe.batch} T={probe.steps} "
          f"{probe.header()['dtype']}, budget {budget:.0f} s", flush=True)
    probe.save()
    for section in SECTIONS:
        if section not in sections:
            continue
        if section == "barrier":
            barrier_section(probe)
        else:
            kernel_section(probe, section)
    failed = [r for r in probe.rows if "error" in r or str(r.get("check", "")).startswith("FAILED")]
    print(f"{len(probe.rows)} rows, {len(failed)} failed, "
          f"{sum('skipped' in r for r in probe.rows)} skipped, {process_age():.0f} s; "
          f"{probe.out / RESULT_FILE}", flush=True)
    return 1 if failed else 0


def refusal(dry_run):
    """Why the probe cannot run in this process, or None."""
    if dry_run:
        return None
    if triton_interpreter_enabled():
        return ("the probe times compiled kernels on a GPU: unset TRITON_INTERPRET (or pass "
                "--dry-run)")
    if not torch.cuda.is_available():
        return "the probe needs a CUDA GPU (--dry-run checks the command on the CPU)"
    return None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastrnn.kernels.probe",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, metavar="DIR", help=f"folder for {RESULT_FILE}")
    parser.add_argument("--dry-run", action="store_true",
                        help="run on the CPU through the Triton interpreter at tiny sizes")
    parser.add_argument("--budget", type=float, default=BUDGET_S, metavar="SECONDS",
                        help=f"seconds from process start after which the remaining rows are "
                             f"skipped (default {BUDGET_S:.0f})")
    parser.add_argument("--steps", type=int, metavar="T",
                        help=f"time steps (default {STEPS}; {DRY['steps']} with --dry-run)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="run only these sections (default: all, in the order listed)")
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.dry_run and not triton_interpreter_enabled():
        # TRITON_INTERPRET is read when @triton.jit runs, at import: a child process gets it.
        child = [sys.executable, "-m", "fastrnn.kernels.probe",
                 *(sys.argv[1:] if argv is None else argv)]
        return subprocess.run(child, env={**os.environ, "TRITON_INTERPRET": "1"}).returncode
    why = refusal(args.dry_run)
    if why is not None:
        print(f"fastrnn.kernels.probe: {why}", file=sys.stderr)
        return 2
    return run(args.out, args.dry_run, args.budget, args.steps, args.sections)


if __name__ == "__main__":
    sys.exit(main())
