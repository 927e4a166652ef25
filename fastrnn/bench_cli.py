"""`fastrnn bench`: run benchmark grids and write result files, tables and plots.

    fastrnn bench                      the main job: cpu + tasks on a CPU machine,
                                       flashrnn + fastrnns + tasks where CUDA is available
    fastrnn bench cpu haste --cells LSTM --modes fwdbwd
    fastrnn bench --list               the grids and their case counts
    fastrnn bench --compare OLD.json   run, then print and plot the change from OLD.json
    fastrnn bench --compare OLD.json NEW.json   compare two result files without running
    fastrnn bench --plot RESULT.json   redraw the figures of a result file

The harness lives in the repository's top-level benchmarks/ folder, which is not part of the
wheel; this command finds it next to the package (a source checkout or an editable install).
"""

import contextlib
import importlib
import os
import sys
from pathlib import Path

import torch

import fastrnn


class HarnessMissing(RuntimeError):
    """The benchmarks/ folder is not next to the imported fastrnn package."""


def load_harness():
    """Import the benchmarks package that sits next to fastrnn/; HarnessMissing otherwise."""
    root = Path(fastrnn.__file__).resolve().parent.parent
    folder = root / "benchmarks"
    if not (folder / "runner.py").is_file():
        raise HarnessMissing(
            f"fastrnn bench needs the benchmarks/ folder of a source checkout, and there is none "
            f"next to the installed package ({folder}). Clone the repository and install it "
            f"with `pip install -e .`, then run `fastrnn bench` (or `make bench`) there.")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    harness = importlib.import_module("benchmarks")
    if Path(harness.__file__).resolve().parent != folder:
        raise HarnessMissing(f"another module named 'benchmarks' ({harness.__file__}) shadows "
                             f"{folder}")
    return {name: importlib.import_module(f"benchmarks.{name}") for name in
            ("cases", "providers", "runner", "tasks_grid", "timing", "results", "report",
             "plots", "parity", "compare", "compare_plot")}


def add_arguments(parser):
    parser.add_argument("grids", nargs="*", metavar="GRID",
                        help="cpu flashrnn deepbench haste fastrnns small headline tasks (default: the "
                             "main job for this machine)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where micro grids run (default: the grid's own device) and where "
                             "the tasks train (default: cuda when available)")
    parser.add_argument("--cells", nargs="+", choices=("LSTM", "GRU", "RNN"))
    parser.add_argument("--modes", nargs="+", choices=("infer", "fwd", "fwdbwd"))
    # Not argparse choices: triton-<form> names follow fastrnn.kernels.FORMS (checked in run()).
    parser.add_argument("--providers", nargs="+", metavar="PROVIDER",
                        help="torch reference cpu triton cells, torch-fp16 torch-bf16 torch-fp32 "
                             "(torch.nn in that dtype), triton-<form> (one kernel form forced) or "
                             "triton-forms (every form); default: the grid's own")
    parser.add_argument("--dtypes", nargs="+", choices=("float32", "float16", "bfloat16"),
                        help="run the grid's cases in these dtypes (default: its own)")
    # One thread by default: the same for every provider, reproducible across machines, and
    # immune to the many-fold slowdowns of spinning intra-op threads on a busy shared machine.
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for timings and tasks (torch.set_num_threads); "
                             f"default 1, this machine has {torch.get_num_threads()}")
    parser.add_argument("--min-run-time", type=float, default=0.3,
                        help="CPU: seconds to time each row at least")
    parser.add_argument("--max-run-time", type=float, default=1.5,
                        help="CPU: a slow row stops after 3 repeats past this many seconds")
    parser.add_argument("--warmup-ms", type=float, default=25.0, help="CUDA: do_bench warm-up")
    parser.add_argument("--rep-ms", type=float, default=100.0, help="CUDA: do_bench repetition")
    parser.add_argument("--tf32", action="store_true",
                        help="allow TF32 in fp32 timings (parity always runs without it)")
    parser.add_argument("--tiny", action="store_true",
                        help="shrink every case to smoke-test size (checks the harness only)")
    parser.add_argument("--limit", type=int, help="at most this many cases per grid")
    parser.add_argument("--tasks", nargs="+", metavar="TASK", help="tasks to time (default all)")
    parser.add_argument("--task-backends", nargs="+",
                        help="backends for the tasks grid (default: torch, reference, triton)")
    parser.add_argument("--task-size", default="tiny", choices=("tiny", "full"),
                        help="task preset: tiny (seconds, the main job) or full (tutorial)")
    parser.add_argument("--data-dir", help="IMDB data for the sentiment task (else "
                                           "$FASTRNN_DATA or fastrnn's cache; never downloads)")
    parser.add_argument("--out", help="result JSON path, or a folder for it (default: "
                                      "benchmarks/scratch/<device>/<time>-<sha>.json)")
    parser.add_argument("--curate", action="store_true",
                        help="write to benchmarks/results/<device>/<date>-<sha>.json (committed)")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--compare", nargs="+", metavar="RESULT",
                        help="OLD.json: compare this run with it; OLD.json NEW.json: compare "
                             "two files without running")
    parser.add_argument("--plot", metavar="RESULT", help="redraw the figures of a result file")
    parser.add_argument("--list", action="store_true", help="list the grids and exit")


def _list(h):
    for name, grid in h["cases"].GRIDS.items():
        print(f"{name:<10} {grid.device:<5} {len(grid.cases):>4} cases  {grid.description}")
    print(f"{h['cases'].TASKS_GRID:<10} any   the documented tasks (fastrnn.tasks) per backend")
    for device, grids in h["cases"].MAIN_JOB.items():
        print(f"main job on {device}: {' + '.join(grids)}")
    return 0


def _compare(h, old_path, new_path, new=None, plot=True):
    """Print the change from OLD to NEW (by speedup vs torch, with warnings where the runs differ)
    and draw its largest changes beside NEW."""
    old = h["results"].load(old_path)
    new = h["results"].load(new_path) if new is None else new
    labels = Path(old_path).name, Path(new_path).name
    changes = h["compare"].compare(old, new)
    print(h["compare"].format_compare(old, new, *labels, changes=changes))
    if plot and changes:
        path = Path(new_path).with_name(f"{Path(new_path).stem}-vs-{Path(old_path).stem}.png")
        drawn = h["compare_plot"].plot_compare(changes, path, *labels,
                                               warnings=h["compare"].warnings(old, new))
        print(f"comparison plot: {drawn}" if drawn else
              "comparison plot: none (no row has a speedup vs torch in both runs)")
    return 0


@contextlib.contextmanager
def _torch_settings(threads, tf32):
    """Thread count and TF32 flags for the run, restored afterwards (the CLI is also called
    in-process, from tests and notebooks)."""
    saved = (torch.get_num_threads(), torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32)
    torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[1:]


def _micro_rows(h, name, args, device, settings):
    grid = h["cases"].GRIDS[name]
    cases = h["cases"].select(grid, cells=args.cells, dtypes=args.dtypes, tiny=args.tiny,
                              limit=args.limit)
    grid_device = grid.device if device is None else device
    return h["runner"].run_grid(cases, args.providers or list(grid.providers),
                                args.modes or list(grid.modes), grid_device, settings,
                                progress=not args.quiet)


def _measure(h, args, grids, machine):
    """Run `grids` and assemble the result dict (env collected under the run's settings)."""
    from fastrnn import environment

    settings = h["timing"].Settings(threads=args.threads, min_run_time=args.min_run_time,
                                    max_run_time=args.max_run_time, warmup_ms=args.warmup_ms,
                                    rep_ms=args.rep_ms)
    env = environment.collect()
    device = None if args.device == "auto" else args.device
    rows, tasks = [], []
    for name in grids:
        if name == h["cases"].TASKS_GRID:
            # cpu and triton are what `auto` runs on each device; each is unavailable on the other.
            backends = args.task_backends or ["torch", "cpu", "triton", "reference"]
            tasks += h["tasks_grid"].run_tasks(backends, device or machine, size=args.task_size,
                                               names=args.tasks, data_dir=args.data_dir,
                                               progress=not args.quiet)
        else:
            rows += _micro_rows(h, name, args, device, settings)
    return h["results"].build(
        command=_command_line(), device=machine, grids=grids, env=env, rows=rows, tasks=tasks,
        settings={**vars(settings), "tf32": args.tf32, "tiny": args.tiny,
                  "parity_steps": h["parity"].PARITY_STEPS, "task_size": args.task_size,
                  # env has the load at the start; a busy machine at the end explains outliers.
                  "load_average_1min_end": os.getloadavg()[0] if hasattr(os, "getloadavg")
                  else None},
        providers=h["providers"].descriptions(args.providers or ()))


def _command_line():
    argv = sys.argv[1:]
    return "fastrnn " + " ".join(argv) if argv[:1] == ["bench"] else "fastrnn bench (from Python)"


def _result_path(h, result, args):
    if args.out and Path(args.out).suffix == ".json":
        return Path(args.out)
    return h["results"].default_path(result, out_dir=args.out, curated=args.curate)


def run(args):
    try:
        h = load_harness()
    except HarnessMissing as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.list:
        return _list(h)
    if args.plot:
        result = h["results"].load(args.plot)
        for path in h["plots"].plot_result(result, Path(args.plot).parent, Path(args.plot).stem):
            print(f"plot: {path}")
        return 0
    if args.compare and len(args.compare) > 2:
        print("error: --compare takes OLD.json or OLD.json NEW.json", file=sys.stderr)
        return 2
    if args.compare and len(args.compare) == 2:
        return _compare(h, *args.compare, plot=not args.no_plots)

    unknown = [p for p in args.providers or () if not h["providers"].is_known(p)]
    if unknown:
        print(f"error: unknown provider(s) {unknown}; see --help", file=sys.stderr)
        return 2
    cases = h["cases"]
    cuda = torch.cuda.is_available()
    machine = "cuda" if cuda else "cpu"
    grids = args.grids or list(cases.MAIN_JOB[machine])
    unknown = [g for g in grids if g not in cases.ALL_GRIDS]
    if unknown:
        print(f"error: unknown grid(s) {unknown}; choose from {', '.join(cases.ALL_GRIDS)}",
              file=sys.stderr)
        return 2
    with _torch_settings(args.threads, args.tf32):
        result = _measure(h, args, grids, machine)
    path = _result_path(h, result, args)
    written = h["results"].write(result, path)
    print()
    print(h["report"].format_result(result))
    print()
    for item in written:
        print(f"result: {item}")
    if not args.no_plots:
        for item in h["plots"].plot_result(result, path.parent, path.stem):
            print(f"plot: {item}")
    if args.compare:
        print()
        _compare(h, args.compare[0], path, new=result, plot=not args.no_plots)
    bad = [r for r in result["rows"] + result["tasks"]
           if r["status"] in ("parity_failed", "error")]
    if bad:
        print(f"{len(bad)} row(s) failed parity or raised; see the table above", file=sys.stderr)
    return 1 if bad else 0
