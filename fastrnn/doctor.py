"""`fastrnn doctor`: check that this install works, like `python -m torch.utils.collect_env`.

    fastrnn doctor                                   environment, backend choices, parity
    fastrnn doctor --bench --json out.json --budget 90

Sections, printed as they run:
    1. environment   versions, GPU (SM count, shared memory, capability), TF32, TRITON_INTERPRET
    2. choices       which implementation `auto` picks for typical shapes, and why
    3. parity        every backend x cell x dtype against the float64 reference (fastrnn parity's
                     check: outputs, final states and every gradient) at T=5 B=3 I=4 H=8
    4. timing        (--bench) fastrnn's auto backend vs torch.nn, forward and forward+backward
    5. verdict       PASS/FAIL/SKIP counts per group and the overall verdict

Exit status: 0 when no check failed or raised, 1 otherwise; 130 when interrupted (Ctrl-C, or a
time box's SIGINT) with none failed, the report then holding the rows that finished. Skipped
checks (out of budget, not applicable such as triton in float64, or a backend that cannot run
here) are reported, never failures; timings are never judged, only an error while timing is.
2: --device cuda without CUDA, or a --json path that cannot be written.

JSON report (--json PATH); `fastrnn gpu-run` reads it, so these keys are stable:
    schema              1
    command             argv of the run
    options             the parsed options (bench, json, budget, device, quiet)
    device              'cpu' | 'cuda': where the checks ran
    budget_s            the --budget
    env                 fastrnn.environment.collect() plus cuda_available, gpu_sm_count,
                        gpu_shared_memory_per_block_optin, triton_interpreter_enabled,
                        kernels_importable, kernels_import_error (None where not applicable)
    choices             rows: name, mode, hidden_size, batch, dtype, proj_size, device, backend,
                        reason, form, form_reason, error
    checks              rows: section ('parity'), name ('<backend>/<case>/<dtype>'), backend,
                        cell (lstm | gru | rnn | rnn_relu), case ('LSTM proj', ...), dtype, status
                        ('passed' | 'failed' | 'skipped' | 'error'), detail ('budget' for a check
                        the budget skipped, 'not applicable: <why>' for one the backend refuses
                        by design), seconds; when run: tensors, worst, worst_ratio, warnings;
                        failed: failed (tensor names); error: traceback; a backend that cannot
                        run here at all: backend_unavailable (True)
    bench               rows: section ('bench'), name, cell, T, B, H, dtype, provider ('torch.nn' |
                        'fastrnn'), backend, mode ('forward' | 'forward+backward'), status,
                        detail, median_ms, speedup_vs_torch (torch ms / this ms), form, forms;
                        [] without --bench
    summary             rows: group, passed, failed, skipped, error, skipped_because
    verdict             'pass' | 'fail' | 'interrupted' (stopped before the end, none failed)
    gpu_exercised       True when a Triton parity check ran to a comparison on a CUDA GPU
    triton_interpreted  True when one ran on the CPU through Triton's interpreter
    notes               the sentences printed under the verdict
    elapsed_s           wall seconds of the whole run
"""

import json
import sys
import textwrap
from pathlib import Path

import torch

from fastrnn import doctor_checks as checks
from fastrnn.backends import requested_backend

WIDTH = 100
INTERRUPTED_EXIT = 130  # the shell's code for a process ended by SIGINT
INDENT = "   "
# Status of a parity row -> its cell in the printed grid.
MARKS = {checks.PASSED: "ok", checks.FAILED: "FAIL", checks.ERROR: "ERROR"}


class Printer:
    """print() that wraps to WIDTH columns and stays silent under --quiet (except `always`)."""

    def __init__(self, quiet):
        self.quiet = quiet

    def __call__(self, text="", indent=INDENT, always=False, end="\n", hang=None):
        """hang: indent of wrapped continuation lines (default: indent plus two spaces)."""
        if self.quiet and not always:
            return
        if not text:
            indent = ""  # no trailing blanks on an empty line
        elif len(indent + text) > WIDTH:
            text = textwrap.fill(text, WIDTH, initial_indent=indent,
                                 subsequent_indent=indent + "  " if hang is None else hang,
                                 break_on_hyphens=False)
        else:
            text = indent + text
        print(text, end=end, flush=True)


# -- printing of the sections ------------------------------------------------------------------


def _size(nbytes, unit="GiB"):
    scale = {"KiB": 1024, "GiB": 1024**3}[unit]
    return f"{nbytes / scale:.0f} {unit}" if unit == "KiB" else f"{nbytes / scale:.1f} {unit}"


def print_environment(say, env):
    say("1. Environment", indent="")
    git = "" if env["git_commit"] is None else (
        f" (git {env['git_commit'][:9]}{', uncommitted changes' if env['git_dirty'] else ''})")
    say(f"fastrnn {env['fastrnn']}{git}, python {env['python']}")
    say(f"torch {env['torch']}, triton {env['triton'] or 'not installed'}, numpy {env['numpy']}")
    if env["cuda_available"]:
        optin = env["gpu_shared_memory_per_block_optin"]
        smem = "unknown" if optin is None else _size(optin, "KiB")
        say(f"GPU: {env['gpu_name']} x{env['gpu_count']}, {_size(env['gpu_memory_bytes'])}, "
            f"compute capability {env['compute_capability']}, {env['gpu_sm_count']} SMs")
        say(f"shared memory per block (opt-in) {smem}; driver {env['driver']}, CUDA "
            f"{env['cuda']}, cuDNN {env['cudnn']}")
    else:
        build = "a CPU-only torch build" if env["cuda"] is None else f"CUDA {env['cuda']} build"
        say(f"GPU: none visible to torch ({build})")
    say(f"CPU: {env['cpu_model']}, {env['cpu_count']} cores, {env['threads']} torch threads")
    say(f"TF32 allowed: matmul {env['tf32_matmul']}, cuDNN {env['tf32_cudnn']}; "
        f"TRITON_INTERPRET={env['triton_interpret'] or '(unset)'}; "
        f"FASTRNN_BACKEND={env['fastrnn_backend_env'] or '(unset)'}")
    if not env["kernels_importable"]:
        say(f"Triton kernels: unavailable, {env['kernels_import_error']}")


def print_choices(say, rows, device):
    say()
    say(f"2. What backend='auto' picks on {device.type}", indent="")
    column = INDENT + " " * 34  # where the answers start, continuation lines included
    errors = {row["error"] for row in rows}
    if len(errors) == 1 and None not in errors:
        say(f"{'every configuration':<33} error: {errors.pop()}", hang=column)
        rows = []
    for row in rows:
        if row["error"] is not None:
            say(f"{row['name']:<33} error: {row['error']}", hang=column)
            continue
        picked = row["backend"] if row["form"] is None else f"{row['backend']}, {row['form']} form"
        say(f"{row['name']:<33} {picked}: {row['reason']}", hang=column)
        if row["form_reason"]:
            say(f"why this form: {row['form_reason']}", indent=column, hang=column)
    forced = requested_backend()
    if forced != "auto":
        say(f"(use_backend() or FASTRNN_BACKEND asks for {forced!r}: auto does not choose)")
    elif device.type != "cuda":
        say("(auto runs the Triton kernels for CUDA tensors only; on CPU it runs the cpu backend)")


class ParityGrid:
    """Prints the parity rows as a grid, one line per backend and case, a cell per dtype."""

    COLUMN = 10

    def __init__(self, say):
        self.say = say
        self.line = None
        self.pad = 0  # spaces owed before the next cell (none trail a line)

    def header(self, device):
        shape = " ".join(f"{k}={v}" for k, v in checks.PARITY_SHAPE.items())
        self.say()
        self.say(f"3. Parity with the float64 reference on {device.type}: outputs, final states, "
                 f"all gradients ({shape})", indent="")
        dtypes = "".join(f"{d:<{self.COLUMN}}" for d in checks.PARITY_DTYPES).rstrip()
        self.say(f"{'backend':<10} {'case':<12} {dtypes}")

    def __call__(self, row):
        # A backend that cannot run here at all gets one line; the reason follows the grid.
        whole = row.get("backend_unavailable", False)
        line = row["backend"] if whole else (row["backend"], row["case"])
        if line == self.line and whole:
            return
        if line != self.line:
            if self.line is not None:
                self.say("", indent="")
            self.say(f"{row['backend']:<10} {'(all)' if whole else row['case']:<12} ", end="")
            self.line, self.pad = line, 0
        text = mark(row)
        self.say(" " * self.pad + text, indent="", end="")
        self.pad = max(1, self.COLUMN - len(text))

    def close(self, rows):
        if self.line is not None:
            self.say("", indent="")
        for text in parity_notes(rows):
            self.say(text)


def mark(row):
    if row["status"] == checks.SKIPPED:
        if row["detail"] == checks.BUDGET:
            return "budget"
        return "n/a" if row["detail"].startswith(checks.NOT_APPLICABLE) else "skip"
    return MARKS[row["status"]]


def parity_notes(rows):
    """One line per distinct reason a row did not pass (grouped), then each failure and error."""
    notes, skipped = [], {}
    for row in rows:
        if row["status"] == checks.SKIPPED:
            skipped.setdefault((row["backend"], row["detail"]), []).append(row)
    for (backend, detail), group in skipped.items():
        dtypes = sorted({r["dtype"] for r in group}, key=checks.PARITY_DTYPES.index)
        what = "" if len(dtypes) == len(checks.PARITY_DTYPES) else " in " + ", ".join(dtypes)
        label = ("not started, the --budget was spent" if detail == checks.BUDGET
                 else detail.removeprefix(checks.NOT_APPLICABLE))
        count = f"{len(group)} check{'s' if len(group) > 1 else ''}"
        notes.append(f"{mark(group[0])}: {backend}{what} ({count}): {label}")
    for row in rows:
        if row["status"] in (checks.FAILED, checks.ERROR):
            notes.append(f"{MARKS[row['status']]} {row['name']}: {row['detail']}")
    return notes


def print_bench_header(say, device):
    say()
    say(f"4. Timing on {device.type}: fastrnn (backend='auto') vs torch.nn, for information "
        f"only", indent="")
    threads = ", 1 CPU thread" if device.type == "cpu" else ""
    say(f"({checks.timer_name(device)}{threads})")
    say(f"{'size':<26} {'mode':<16} {'torch.nn ms':>11}  {'fastrnn ms':>10}  {'speedup':>7}  "
        f"fastrnn ran")


SHORT_DTYPES = {"float64": "fp64", "float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def _bench_label(row):
    """'LSTM T=256 B=16 H=512 bf16': the row's name with a short dtype, to fit the table."""
    return row["name"].replace(row["dtype"], SHORT_DTYPES.get(row["dtype"], row["dtype"]))


def bench_printer(say):
    """on_row for bench rows: one line per (size, mode), printed when its fastrnn row is done."""
    pending = {}

    def on_row(row):
        if row["provider"] == "torch.nn":
            pending["torch"] = row
            return
        theirs = pending.pop("torch")
        if row["status"] == checks.PASSED:
            torch_ms = "-" if theirs["median_ms"] is None else f"{theirs['median_ms']:.3f}"
            speedup = "-" if row["speedup_vs_torch"] is None else f"{row['speedup_vs_torch']:.2f}x"
            ran = row["backend"] if row["form"] is None else f"{row['backend']}/{row['form']}"
            say(f"{_bench_label(row):<26} {row['mode']:<16} {torch_ms:>11}  "
                f"{row['median_ms']:>10.3f}  {speedup:>7}  {ran}")
        for item in (theirs, row):
            if item["status"] == checks.ERROR:
                say(f"ERROR {item['provider']} {item['name']} {item['mode']}: {item['detail']}")
        if row["status"] == checks.SKIPPED:
            say(f"{_bench_label(row):<26} {row['mode']:<16} skipped: {row['detail']}")

    return on_row


# -- verdict -----------------------------------------------------------------------------------


def summarize(check_rows, bench_rows):
    """Counts per group: 'parity: <backend>' for each backend, then 'timing' if it ran."""
    groups = {}
    for row in check_rows:
        groups.setdefault(f"parity: {row['backend']}", []).append(row)
    if bench_rows:
        groups["timing"] = bench_rows
    summary = [{"group": name, **{s: sum(r["status"] == s for r in rows) for s in checks.STATUSES},
                "skipped_because": skip_reasons(rows)} for name, rows in groups.items()]
    if bench_rows:
        # 'passed' for a timing means it ran: speed is not judged, only an error is.
        summary[-1]["skipped_because"] = ", ".join(
            filter(None, [summary[-1]["skipped_because"], "speed not judged"]))
    return summary


def triton_usage(check_rows, device):
    """(gpu_exercised, triton_interpreted): whether a Triton parity check ran to a comparison
    (passed or failed) on a CUDA GPU / on the CPU through the interpreter."""
    ran = any(r["backend"] == "triton" and r["status"] in (checks.PASSED, checks.FAILED)
              for r in check_rows)
    return ran and device.type == "cuda", ran and device.type == "cpu"


def why_triton_did_not_run(triton_rows):
    """The commonest reason the triton rows did not run (not-applicable ones only as a last
    resort: float64 is refused by design on every machine)."""
    if any(r["status"] == checks.ERROR for r in triton_rows):
        return "every triton check that started raised an error (the ERROR rows above)"
    skipped = [r["detail"] for r in triton_rows if r["status"] == checks.SKIPPED]
    reasons = [d for d in skipped if not d.startswith(checks.NOT_APPLICABLE)] or skipped
    if not reasons:
        return "no triton check ran"
    reason = max(reasons, key=reasons.count)
    if reason == checks.BUDGET:
        return "the --budget ran out before their checks started"
    return reason.removeprefix(checks.NOT_APPLICABLE)


def verdict_notes(env, device, gpu_exercised, interpreted, check_rows):
    """Plain sentences for a new user: what was (not) checked on this machine."""
    triton_rows = [r for r in check_rows if r["backend"] == "triton"]
    if gpu_exercised:
        ran = sum(r["status"] in (checks.PASSED, checks.FAILED) for r in triton_rows)
        return [f"The Triton kernels ran on the GPU ({env['gpu_name']}) in {ran} parity checks."]
    if device.type == "cuda":
        return [f"The Triton kernels were not exercised on the GPU: "
                f"{why_triton_did_not_run(triton_rows)}."]
    where = ("there is no CUDA GPU in this process" if not env["cuda_available"]
             else "the checks ran on the CPU (--device cpu)")
    notes = [f"The Triton kernels were not exercised on a GPU: {where}."]
    if interpreted:
        notes.append("They did run on the CPU through Triton's interpreter (TRITON_INTERPRET=1), "
                     "which checks their arithmetic but not GPU compilation, registers or speed.")
    else:
        notes.append(f"They did not run at all: {why_triton_did_not_run(triton_rows)}.")
    return notes


def skip_reasons(rows):
    """'6 not applicable, 3 budget': why the skipped rows of a group were skipped."""
    counts = {}
    for row in rows:
        if row["status"] == checks.SKIPPED:
            key = "budget" if row["detail"] == checks.BUDGET else (
                "not applicable" if row["detail"].startswith(checks.NOT_APPLICABLE)
                else "cannot run here")
            counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{n} {key}" for key, n in counts.items())


def print_verdict(say, summary, verdict, notes, elapsed):
    say()
    say("5. Verdict", indent="", always=True)
    say(f"{'group':<20} {'passed':>7} {'failed':>7} {'skipped':>8} {'errors':>7}", always=True)
    for row in summary:
        why = f"  ({row['skipped_because']})" if row["skipped_because"] else ""
        say(f"{row['group']:<20} {row['passed']:>7} {row['failed']:>7} {row['skipped']:>8} "
            f"{row['error']:>7}{why}", always=True)
    totals = {s: sum(row[s] for row in summary) for s in checks.STATUSES}
    if verdict == "fail":
        bad = [f"{totals['failed']} check(s) failed"] if totals["failed"] else []
        bad += [f"{totals['error']} raised an error"] if totals["error"] else []
        text = (f"FAIL: {' and '.join(bad)}; the rows marked FAIL or ERROR above say which "
                f"and why.")
    elif verdict == "interrupted":
        text = (f"INTERRUPTED: the checks were stopped (Ctrl-C or a time box) after "
                f"{totals['passed']} passed and {totals['skipped']} skipped; none failed; the "
                f"rest did not run.")
    elif totals["passed"] == 0:
        text = "PASS, but nothing was checked: every check was skipped (see the reasons above)."
    else:
        skipped = f", {totals['skipped']} skipped (reasons above)" if totals["skipped"] else ""
        text = f"PASS: every check that ran passed: {totals['passed']} passed{skipped}."
    say(f"{text} Took {elapsed:.1f} s.", always=True)
    for note in notes:
        say(note, always=True)


# -- the command -------------------------------------------------------------------------------


def add_arguments(parser):
    parser.add_argument("--bench", action="store_true",
                        help="also time fastrnn against torch.nn on a few sizes (informational)")
    parser.add_argument("--json", metavar="PATH", help="write the whole report as JSON to PATH")
    parser.add_argument("--budget", type=float, default=120.0, metavar="SECONDS",
                        help="bound the run: checks not started by then are skipped with reason "
                             "'budget' (default 120)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to run the checks (default: cuda when available)")
    parser.add_argument("--quiet", action="store_true", help="print the verdict only")


def resolve_device(name):
    """torch.device for --device; None when CUDA is asked for and there is none."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        return None
    return torch.device(name)


def run(args):
    device = resolve_device(args.device)
    if device is None:
        print("error: --device cuda, but torch sees no CUDA device", file=sys.stderr)
        return 2
    budget = checks.Budget(args.budget)
    say = Printer(args.quiet)

    env = checks.collect_environment()
    print_environment(say, env)
    choices = checks.backend_choices(device)
    print_choices(say, choices, device)

    check_rows, bench_rows = [], []
    interrupted = False
    # Ctrl-C, or the SIGINT of a time box (fastrnn gpu-run's), ends the checks but not the report:
    # the rows that finished are still printed, judged and written to the JSON.
    try:
        grid = ParityGrid(say)
        grid.header(device)
        checks.parity_rows(device, budget, on_row=grid, rows=check_rows)
        grid.close(check_rows)
        if args.bench:
            print_bench_header(say, device)
            checks.bench_rows(device, budget, on_row=bench_printer(say), rows=bench_rows)
            if any(r["provider"] == "fastrnn" and r["backend"] == "reference" for r in bench_rows):
                say("fastrnn ran its pure-PyTorch reference here (auto's choice off CUDA), which "
                    "is expected to be slower than torch.nn; fastrnn's speed-ups come from the "
                    "Triton kernels on a CUDA GPU.")
    except KeyboardInterrupt:
        interrupted = True

    summary = summarize(check_rows, bench_rows)
    bad = sum(row["failed"] + row["error"] for row in summary)
    verdict = "fail" if bad else "interrupted" if interrupted else "pass"
    gpu_exercised, interpreted = triton_usage(check_rows, device)
    notes = verdict_notes(env, device, gpu_exercised, interpreted, check_rows)
    elapsed = budget.elapsed()
    print_verdict(say, summary, verdict, notes, elapsed)
    if args.json:
        report = {"schema": 1, "command": sys.argv, "options": vars(args), "device": device.type,
                  "budget_s": args.budget, "env": env, "choices": choices, "checks": check_rows,
                  "bench": bench_rows, "summary": summary, "verdict": verdict,
                  "gpu_exercised": gpu_exercised, "triton_interpreted": interpreted,
                  "notes": notes, "elapsed_s": round(elapsed, 3)}
        path = Path(args.json)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report, indent=2, default=str) + "\n")
        except OSError as error:
            print(f"error: cannot write the JSON report: {error}", file=sys.stderr)
            return 2
        say(f"report: {path}", always=True)
    return 1 if bad else INTERRUPTED_EXIT if interrupted else 0

