"""`fastrnn gpu-run`: the prepared check of one scarce GPU session, in one command.

    PYTHONPATH=. python3 -m fastrnn gpu-run --out $OUT --budget 540
    python -m fastrnn gpu-run --dry-run --out /tmp/gr     (CPU: interpreter, tiny sizes)

Sections, in priority order, each a child process in its own process group with its own time box
(fastrnn.gpu_timebox.Budget: its share of the budget plus what earlier sections left unused):
    doctor     `fastrnn doctor --bench --json DIR/doctor.json`
    tests      the gpu-marked tests (pytest -m gpu; -n 8 and --timeout where the plugins exist)
    sanitizer  the smoke run of every kernel form and cell, then compute-sanitizer memcheck and
               racecheck on it (fastrnn.gpu_smoke)
    headline   LSTM/GRU at B=16, T=1024, I=H: each kernel form vs cuDNN fp16 and bf16
    grid       the flashrnn, small and deepbench grids for whatever time is left
A section that fails, hangs or crashes is recorded and the run goes on; the run ends within the
budget. Files in DIR (at most 8): summary.md, gpu-run.log, doctor.json, tests.log, sanitizer.log,
headline.json, headline.png, grid.json. The summary is also printed last. Exit status 0 only
when every section passed.

--dry-run runs every section the same way on the CPU through the Triton interpreter
(TRITON_INTERPRET=1 in the children only) at tiny sizes, so the command cannot rot between GPU
sessions (tests/test_gpu_run.py runs it).
"""

import functools
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import fastrnn
from fastrnn import gpu_bench, gpu_sanitizer, gpu_sections, gpu_summary
from fastrnn.gpu_timebox import Budget, LogFile, process_age

# Share of the budget (after the reserve) each section is owed, in the order they run. Sized from
# the H100 runs (cold compile caches). First (918741c, 450 s): doctor needed more than 18 s, the
# sanitizer 69 s, the headline 157 s for 158 of its 160 rows. Second (dbed955, 430 s): doctor's
# parity took ~20 s and its timing more than its 32 s box; the 300 gpu tests reached ~60% in 178 s
# with 12 workers (so ~300 s cold); the sanitizer alone needed 91 s (smoke 58, memcheck 14,
# racecheck 19). The grid only ever gets what is left.
SHARES = {"doctor": 0.07, "tests": 0.50, "sanitizer": 0.17, "headline": 0.23, "grid": 0.03}
# The files the run may leave in DIR, most important first (the caller takes at most 8).
FILES = ("summary.md", "headline.json", "gpu-run.log", "tests.log", "sanitizer.log",
         "doctor.json", "headline.png", "grid.json")
MAX_FILES = 8
GPU_BUDGET, DRY_BUDGET = 540.0, 180.0
# Caches kept between runs (Triton kernels, matplotlib's font list): a rerun skips the compiles.
CACHE = Path(tempfile.gettempdir()) / "fastrnn-gpu-run-cache"
VALID_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def add_arguments(parser):
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for the (at most 8) result files")
    parser.add_argument("--budget", type=float, metavar="SECONDS",
                        help=f"wall-clock seconds for the whole run (default {GPU_BUDGET:.0f}; "
                             f"{DRY_BUDGET:.0f} for --dry-run, which takes about a minute)")
    parser.add_argument("--dry-run", action="store_true",
                        help="run every section on the CPU through the Triton interpreter at tiny "
                             "sizes (checks the command, not the GPU)")
    parser.add_argument("--sections", nargs="+", choices=list(SHARES), default=list(SHARES),
                        help="run only these sections (default: all, in priority order)")


def enforce_file_limit(out, keep=FILES, limit=MAX_FILES):
    """Leave at most `limit` plain files with valid names in `out`: temporary leftovers (*.tmp),
    folders and badly named files go first, then files not in `keep`, then the least important
    of `keep`. Returns the names removed."""
    removed = []
    for path in sorted(out.iterdir()):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name + "/")
        elif path.suffix == ".tmp" or not VALID_NAME.match(path.name) or not path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path.name)
    files = [p for p in out.iterdir() if p.is_file()]
    rank = {name: index for index, name in enumerate(keep)}
    files.sort(key=lambda p: (rank.get(p.name, len(keep)), p.name))
    for path in files[limit:]:
        path.unlink(missing_ok=True)
        removed.append(path.name)
    return removed


def _json(path):
    import json

    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _skipped(name, box, why):
    return gpu_sections.SectionResult(name, "skipped", 0.0, box, why)


def run_sections(ctx, budget, names):
    """Every section of `names` in priority order, each in its time box; returns SectionResults."""
    results = []
    for name in SHARES:
        if name not in names:
            continue
        box = budget.box(name)
        ctx.log.write(f"\n########## {name}: time box {box:.0f} s at {budget.elapsed():.0f} s "
                      f"of {budget.total:.0f} s ##########\n")
        print(f"[{budget.elapsed():5.0f} s] {name}: time box {box:.0f} s", flush=True)
        if box <= 0:
            results.append(_skipped(name, box, "no time left in the budget"))
            continue
        start = time.monotonic()
        try:
            result = _run_section(ctx, name, box, start)
        except Exception as error:  # a bug here must not cost the other sections
            import traceback

            ctx.log.write(traceback.format_exc())
            result = gpu_sections.SectionResult(name, "failed", time.monotonic() - start, box,
                                                f"gpu-run raised {type(error).__name__}: {error}")
        result.seconds = time.monotonic() - start
        results.append(result)
        print(f"[{budget.elapsed():5.0f} s] {name}: {result.status} ({result.summary})",
              flush=True)
        write_summary(ctx, budget, results)  # a run cut short still leaves its summary
    return results


def _run_section(ctx, name, box, start):
    if name == "doctor":
        return gpu_sections.run_doctor(ctx, box)
    if name == "tests":
        return gpu_sections.run_tests(ctx, box)
    if name == "sanitizer":
        return gpu_sanitizer.run_sanitizer(ctx, box, lambda: box - (time.monotonic() - start))
    dry = ctx.dry_run
    if name == "headline":
        grid_args, json_name, must_finish = (
            gpu_bench.HEADLINE_DRY if dry else gpu_bench.HEADLINE_GPU), "headline.json", True
    else:
        grid_args, json_name, must_finish = (
            gpu_bench.GRID_DRY if dry else gpu_bench.GRID_GPU), "grid.json", False
    out_json = ctx.out / json_name
    outcomes, incidents = gpu_bench.supervise(ctx, name, box, grid_args, out_json, dry)
    return gpu_bench.summarize(name, box, outcomes, incidents, out_json, must_finish)


def draw_headline(ctx, budget):
    """headline.png from headline.json, in a child boxed to what is left of the budget."""
    source = ctx.out / "headline.json"
    left = budget.left() - 2.0
    if not source.exists() or left < 3:
        return None
    outcome = ctx.run([ctx.python, "-m", "benchmarks.rowwise", "--plot-from", source, "--plot",
                       ctx.out / "headline.png"], min(30.0, left))
    return None if outcome.status == "passed" else f"headline.png: plot {outcome.status}"


def sections_budget(total, names, elapsed=0.0):
    """The Budget of a run of sections `names`: only they share it, in proportion to SHARES (a
    section left out is owed nothing)."""
    chosen = {name: share for name, share in SHARES.items() if name in names}
    return Budget(total, {name: share / sum(chosen.values()) for name, share in chosen.items()},
                  elapsed=elapsed)


@functools.cache
def _own_environment():
    """This process's environment block, for a summary no section's JSON gave one to (a run of
    --sections without doctor or headline)."""
    from fastrnn import environment

    return environment.collect()


def write_summary(ctx, budget, sections, notes=()):
    headline = _json(ctx.out / "headline.json")
    env = ((headline or {}).get("env") or (_json(ctx.out / "doctor.json") or {}).get("env")
           or _own_environment())
    files = sorted((p.name, p.stat().st_size) for p in ctx.out.iterdir() if p.is_file())
    info = {"dry_run": ctx.dry_run, "budget": budget.total, "elapsed": budget.elapsed(),
            "env": env, "notes": list(notes)}
    text = gpu_summary.render(info, sections, headline, files)
    (ctx.out / "summary.md").write_text(text)
    return text


def _exit_on_sigterm(signum, frame):
    # SystemExit unwinds through run_boxed, which kills the running child's process group.
    sys.exit(128 + signum)


def run(args):
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    total = args.budget or (DRY_BUDGET if args.dry_run else GPU_BUDGET)
    budget = sections_budget(total, args.sections, elapsed=process_age())
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for name in (*FILES, *(f + ".tmp" for f in FILES)):  # a rerun must not resume old files
        (out / name).unlink(missing_ok=True)
    root = Path(fastrnn.__file__).resolve().parent.parent
    tmp = Path(tempfile.mkdtemp(prefix="fastrnn-gpu-run-"))
    log = LogFile(out / "gpu-run.log")
    log.write(f"fastrnn gpu-run{' --dry-run' if args.dry_run else ''}: budget {total:.0f} s, "
              f"repository {root}, python {sys.executable}, scratch {tmp}, caches {CACHE}\n")
    ctx = gpu_sections.Context(root=root, out=out, tmp=tmp, log=log, dry_run=args.dry_run,
                               env=gpu_sections.child_env(root, CACHE, args.dry_run))
    try:
        sections = run_sections(ctx, budget, args.sections)
        notes = [n for n in [draw_headline(ctx, budget)] if n]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = write_summary(ctx, budget, sections, notes)
    removed = enforce_file_limit(out)
    if removed:  # rewrite the summary so its file list and note are true
        text = write_summary(ctx, budget, sections,
                             [*notes, f"Removed to keep {MAX_FILES} files: {', '.join(removed)}"])
    print("\n" + gpu_summary.for_stdout(text), flush=True)
    return 0 if sections and all(s.status == "passed" for s in sections) else 1
