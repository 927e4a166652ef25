"""Runs grids one (case, provider) at a time, saving the result file after each: the benchmark
sections of `fastrnn gpu-run`, which must leave a valid file however the run ends.

    python -m benchmarks.rowwise --grids headline --out headline.json --stop-at EPOCH \
        --progress progress.json --incidents incidents.json [--device cpu --tiny --limit 2]
    python -m benchmarks.rowwise --plot-from headline.json --plot headline.png

Guards, for a first run of new kernels on a GPU:
  * `--stop-at`: no (case, provider) starts when less than `--min-row-s` seconds are left.
  * Resumable: rows already in `--out` are kept and not run again, so the supervisor (fastrnn
    gpu_bench) can kill a hung row and start this again; before every (case, provider) the
    `--progress` file names it, and after it the file is emptied.
  * `--incidents`: rows the supervisor killed or saw crash ({grid, case, provider, reason}) are
    recorded as `error` rows; later sizes (H at least as large) of the same provider and cell are
    recorded `unavailable` without running, since they would most likely hang the same way.
  * After an error on CUDA the context may be poisoned (an illegal address is sticky): when a
    trivial CUDA op fails, the process exits with POISONED_EXIT so the supervisor starts a fresh one.
"""

import argparse
import json
import os
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks import cases as cases_module
from benchmarks import parity, providers, results, runner, schema, timing

POISONED_EXIT = 3


def _key(grid, case_id, provider):
    return f"{grid}/{case_id}/{provider}"


def _write_json(path, data):
    """Atomic write: a kill between rows never leaves a half-written file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def _load_rows(path):
    """Rows of an earlier, interrupted run into the same file ([] when there is none)."""
    try:
        return schema.upgrade(json.loads(Path(path).read_text()))["rows"]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _load_incidents(path):
    if not path:
        return {}
    try:
        items = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return {_key(i["grid"], i["case"], i["provider"]): i["reason"] for i in items}


def _hang_skip(rows, case, provider):
    """The reason to skip `provider` on `case` when it hung or crashed on the same cell at a hidden
    size no larger (in any dtype); else None."""
    for row in rows:
        if (row["provider"] == provider and row["cell"] == case.cell and row["H"] <= case.H
                and row["status"] == "error" and (row["reason"] or "").startswith("killed:")):
            return (f"skipped: {provider} was killed at {row['cell']} H={row['H']} "
                    f"{row['dtype']}; a size at least as large would most likely hang too")
    return None


def _cuda_healthy():
    try:
        torch.zeros(1, device="cuda").add_(1).item()
        torch.cuda.synchronize()
    except Exception:  # any failure here means the context cannot be trusted any more
        return False
    return True


def _plan(args):
    """[(case, provider)] in the order the grids declare them (the headline's is its priority)."""
    planned = []
    for name in args.grids:
        grid = cases_module.GRIDS[name]
        names = args.providers or list(grid.providers)
        for case in cases_module.select(grid, cells=args.cells, tiny=args.tiny, limit=args.limit):
            if args.max_steps and case.T > args.max_steps:
                case = replace(case, T=args.max_steps)
            planned += [(case, provider) for provider in providers.for_case(names, case)]
    return planned


def _summary_line(rows):
    parts = []
    for row in rows:
        if row["us_per_step"] is not None:
            text = f"{row['us_per_step']:.1f} us/step"
            text += f" [{row['form']}]" if row["form"] else ""
            text += "" if row["status"] == "ok" else f" {row['status']}"
        else:
            text = f"{row['status']}: {(row['reason'] or '')[:120]}"
        parts.append(f"{row['mode']} {text}")
    return "; ".join(parts)


class Recorder:
    """The result file of this run: rows so far, rewritten (validated) after every change."""

    def __init__(self, args, settings, planned):
        from fastrnn.environment import collect

        self.args, self.settings, self.planned = args, settings, planned
        self.rows = _load_rows(args.out)
        self.env = collect()
        self.stop_reason = None

    def done(self):
        return {_key(r["grid"], r["case"], r["provider"]) for r in self.rows}

    def save(self):
        runner.add_speedups(self.rows)
        result = results.build(
            command="python -m benchmarks.rowwise " + " ".join(sys.argv[1:]),
            device="cuda" if torch.device(self.args.device).type == "cuda" else "cpu",
            grids=self.args.grids, env=self.env, rows=self.rows, tasks=[],
            providers=providers.descriptions([p for _, p in self.planned]),
            settings={**vars(self.settings), "tf32": False, "parity_steps": parity.PARITY_STEPS,
                      "tiny": self.args.tiny,
                      "planned_rows": sum(len(_modes(self.args, c)) for c, _ in self.planned),
                      "stop_reason": self.stop_reason,
                      "interpreter_timed": providers.TIME_INTERPRETER})
        found = schema.errors(result)
        if found:  # still written: a row with a schema bug is better evidence than no file
            print("schema violations:\n  " + "\n  ".join(found[:20]), file=sys.stderr)
        _write_json(self.args.out, result)


def _modes(args, case):
    return args.modes or list(cases_module.GRIDS[case.grid].modes)


def run(args):
    providers.TIME_INTERPRETER = args.time_interpreter
    settings = timing.Settings(threads=args.threads, min_run_time=args.min_run_time,
                               max_run_time=args.max_run_time, min_repeats=args.min_repeats,
                               warmup_ms=args.warmup_ms, rep_ms=args.rep_ms)
    torch.set_num_threads(args.threads)
    planned = _plan(args)
    recorder = Recorder(args, settings, planned)
    incidents = _load_incidents(args.incidents)
    progress = Path(args.progress) if args.progress else None
    done = recorder.done()
    for index, (case, provider) in enumerate(planned, 1):
        key = _key(case.grid, case.id, provider)
        if key in done:
            continue
        modes = _modes(args, case)
        label = f"[{index}/{len(planned)}] {case.grid} {case.id} {provider}"
        skip = incidents.get(key)
        if skip:  # the supervisor killed it or saw it crash: its reason, as an error row
            rows = [runner._row(case, provider, m, args.device, "error", skip) for m in modes]
        elif reason := _hang_skip(recorder.rows, case, provider):
            rows = [runner._row(case, provider, m, args.device, "unavailable", reason)
                    for m in modes]
        elif time.time() + args.min_row_s > args.stop_at:
            recorder.stop_reason = (f"time is up: {len(planned) - index + 1} of {len(planned)} "
                                    f"(case, provider) pairs not started")
            print(recorder.stop_reason, flush=True)
            break
        else:
            if progress:
                _write_json(progress, {"grid": case.grid, "case": case.id, "provider": provider,
                                       "started": time.time()})
            start = time.time()
            try:
                rows = runner.run_case(case, provider, modes, args.device, settings)
            except Exception as error:  # run_case records errors itself; this is a harness bug
                traceback.print_exc()
                rows = [runner._row(case, provider, m, args.device, "error",
                                    f"harness: {type(error).__name__}: {error}") for m in modes]
            print(f"{label} ({time.time() - start:.1f} s): {_summary_line(rows)}", flush=True)
        recorder.rows += rows
        recorder.save()
        if progress:
            _write_json(progress, {})
        failed = any(r["status"] == "error" for r in rows) and not skip
        if failed and torch.device(args.device).type == "cuda" and not _cuda_healthy():
            print("the CUDA context failed a trivial op after this error: exiting for a fresh "
                  "process", flush=True)
            return POISONED_EXIT
    recorder.save()
    return 0


def plot(json_path, png_path):
    from benchmarks import plots

    path = plots.plot_headline(results.load(json_path), png_path)
    print(f"plot: {path}" if path else "plot: no timed row to draw")
    return 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rowwise",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--grids", nargs="+", default=["headline"],
                        choices=list(cases_module.GRIDS))
    parser.add_argument("--out", help="result JSON, resumed when it exists")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--providers", nargs="+", help="default: each grid's own")
    parser.add_argument("--cells", nargs="+", choices=cases_module.CELLS)
    parser.add_argument("--modes", nargs="+", choices=cases_module.MODES,
                        help="default: each grid's own")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--limit", type=int, help="at most this many cases per grid")
    parser.add_argument("--max-steps", type=int,
                        help="cut every case to at most this many steps (dry runs: the "
                             "interpreter's cost grows with T)")
    parser.add_argument("--stop-at", type=float, default=float("inf"),
                        help="epoch seconds after which no (case, provider) starts")
    parser.add_argument("--min-row-s", type=float, default=5.0,
                        help="a (case, provider) starts only with this much time left")
    parser.add_argument("--progress", help="file naming the (case, provider) running now")
    parser.add_argument("--incidents", help="JSON list of killed or crashed rows to record")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-run-time", type=float, default=0.3)
    parser.add_argument("--max-run-time", type=float, default=1.5)
    parser.add_argument("--min-repeats", type=int, default=5)
    parser.add_argument("--warmup-ms", type=float, default=25.0)
    parser.add_argument("--rep-ms", type=float, default=100.0)
    parser.add_argument("--time-interpreter", action="store_true",
                        help="time the kernels through TRITON_INTERPRET=1 on the CPU (dry runs)")
    parser.add_argument("--plot-from", help="draw the headline figure of this result file")
    parser.add_argument("--plot", help="PNG path for --plot-from")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.plot_from:
        return plot(args.plot_from, args.plot)
    if not args.out:
        print("error: --out is required", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
