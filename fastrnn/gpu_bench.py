"""The benchmark sections of `fastrnn gpu-run`: the headline grid, then further grids, each run by
`python -m benchmarks.rowwise` under a supervisor.

The child saves its result file after every (case, provider) and names the one it is running in
a progress file. The supervisor kills a (case, provider) that runs longer than the row timeout (a
compile or a kernel that does not finish), or notices one that crashed the process, records it as
an incident and starts the child again, which resumes after it; a child that found its CUDA
context poisoned exits with POISONED_EXIT to be restarted the same way. All of it inside the
section's time box.
"""

import json
import math
import time
from pathlib import Path

from fastrnn.gpu_sections import SectionResult

POISONED_EXIT = 3  # benchmarks.rowwise.POISONED_EXIT (not imported: it loads torch and the harness)
MAX_STARTS = 12
# Seconds a child needs before its first row (interpreter, torch, CUDA context).
STARTUP_S = 8.0

HEADLINE_GPU = ["--grids", "headline", "--device", "cuda", "--warmup-ms", "10", "--rep-ms", "40"]
GRID_GPU = ["--grids", "flashrnn", "small", "deepbench", "--providers", "torch", "triton",
            "--device", "cuda", "--warmup-ms", "10", "--rep-ms", "40"]
# Dry run: tiny cases through the interpreter, timed only to exercise the code (never reported).
_DRY = ["--device", "cpu", "--tiny", "--max-steps", "3", "--time-interpreter",
        "--min-run-time", "0.01", "--max-run-time", "0.02", "--min-repeats", "1"]
HEADLINE_DRY = ["--grids", "headline", "--limit", "1", *_DRY]
GRID_DRY = ["--grids", "flashrnn", "small", "--limit", "1", "--providers", "torch", "triton",
            "--modes", "fwdbwd", *_DRY]


def row_timeout(box, dry_run):
    """Seconds one (case, provider) may take: a third of the box, between 45 and 120 s on a GPU
    (first compiles of the forward and backward kernels included), 30 s in a dry run."""
    return 30.0 if dry_run else min(120.0, max(45.0, box / 3))


def _read_json(path, default):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


def _watchdog(progress, limit):
    """A run_boxed watchdog: a reason once the running (case, provider) is older than `limit`."""
    def check():
        current = _read_json(progress, {})
        started = current.get("started") if isinstance(current, dict) else None
        if started and time.time() - started > limit:
            return f"{current.get('case')} {current.get('provider')} ran past {limit:.0f} s"
        return None

    return check


def supervise(ctx, name, box, grid_args, out_json, dry_run):
    """Run benchmarks.rowwise with `grid_args` into `out_json` within `box` seconds; restarts
    after a killed, crashed or poisoned (case, provider). Returns (outcomes, incidents)."""
    deadline = time.monotonic() + box
    work = Path(ctx.tmp) / name
    work.mkdir(parents=True, exist_ok=True)
    progress, incidents_path = work / "progress.json", work / "incidents.json"
    limit = row_timeout(box, dry_run)
    min_row = 1.0 if dry_run else 8.0
    incidents, outcomes = [], []
    while len(outcomes) < MAX_STARTS:
        left = deadline - time.monotonic()
        if left < min_row + (2.0 if dry_run else STARTUP_S):
            break
        incidents_path.write_text(json.dumps(incidents))
        progress.write_text("{}")
        argv = [ctx.python, "-m", "benchmarks.rowwise", *grid_args, "--out", out_json,
                "--stop-at", f"{time.time() + left - 1.0:.1f}", "--min-row-s", str(min_row),
                "--progress", progress, "--incidents", incidents_path]
        outcome = ctx.run(argv, left, watchdog=_watchdog(progress, limit))
        outcomes.append(outcome)
        current = _read_json(progress, {})
        running = ({k: current[k] for k in ("grid", "case", "provider")}
                   if isinstance(current, dict) and "case" in current else None)
        if outcome.status == "killed" and running:
            incidents.append({**running, "reason": f"killed: no result after {limit:.0f} s "
                                                   f"(a compile or a kernel that does not finish)"})
        elif outcome.returncode == POISONED_EXIT and outcome.status == "failed":
            continue
        elif outcome.status == "failed" and running:
            incidents.append({**running, "reason": f"crashed: the process died with exit code "
                                                   f"{outcome.returncode} during this row"})
        else:
            break  # finished, out of time, or failed outside any row (see the log)
    return outcomes, incidents


def summarize(name, box, outcomes, incidents, out_json, must_finish):
    """SectionResult of a benchmark section from its result file and the children's outcomes.

    passed: every row of the kernels passed parity and nothing raised; for the headline
    (`must_finish`) also every planned row ran. torch rows failing parity (a low-precision cuDNN
    mode) are reported, not failed.
    """
    result = SectionResult(name, "passed", sum(o.seconds for o in outcomes), box)
    data = _read_json(out_json, None)
    if not outcomes:
        result.status, result.summary = "skipped", "no time left to start"
        return result
    if data is None:
        result.status = "failed"
        result.summary = f"no result file; last child {outcomes[-1].status}"
        result.details = ["```", *outcomes[-1].tail.strip().splitlines()[-20:], "```"]
        return result
    rows = data.get("rows", [])
    planned = (data.get("settings") or {}).get("planned_rows")
    counts = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    kernel_rows = [r for r in rows if r["provider"].startswith("triton")]
    bad = [r for r in rows if r["status"] == "error"]
    bad += [r for r in kernel_rows if r["status"] == "parity_failed"]
    stop = (data.get("settings") or {}).get("stop_reason")
    last = outcomes[-1]
    incomplete = last.status == "timeout" or bool(stop) or (planned and len(rows) < planned)
    if bad:
        result.status = "failed"
    elif incomplete and must_finish:
        result.status = "timeout"
    result.summary = (f"{len(rows)} of {planned or '?'} rows: "
                      + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                      + (f"; {len(outcomes)} starts" if len(outcomes) > 1 else "")
                      + ("; stopped: time is up" if incomplete else ""))
    result.details = [f"- incident: {i['case']} {i['provider']}: {i['reason']}" for i in incidents]
    result.details += [f"- {r['case']} {r['provider']} {r['mode']}: {r['status']}: "
                       f"{(r['reason'] or '')[:160]}" for r in bad[:12]]
    if len(bad) > 12:
        result.details.append(f"- ... and {len(bad) - 12} more rows in {Path(out_json).name}")
    if not must_finish:
        result.details += speedup_lines(rows)
    if last.status not in ("passed", "timeout"):
        result.details += [f"- last child: {last.status} (exit {last.returncode}) "
                           f"{last.reason or ''}".rstrip()]
    return result


def speedup_lines(rows):
    """One markdown line per (grid, cell, dtype, mode) with timed triton rows: how many, their
    speedups vs torch (min, geometric mean, max) and the kernel forms that ran."""
    groups = {}
    for row in rows:
        if row["provider"] == "triton" and row["speedup_vs_torch"] is not None:
            key = (row["grid"], row["cell"], row["dtype"], row["mode"])
            groups.setdefault(key, []).append(row)
    lines = []
    for (grid, cell, dtype, mode), found in groups.items():
        ratios = [r["speedup_vs_torch"] for r in found]
        geo = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        forms = ", ".join(sorted({r["form"] or "?" for r in found}))
        lines.append(f"- {grid} {cell} {dtype} {mode}: {len(found)} case(s), triton vs torch "
                     f"{min(ratios):.2f}x..{max(ratios):.2f}x (geometric mean {geo:.2f}x), "
                     f"forms {forms}")
    return lines
