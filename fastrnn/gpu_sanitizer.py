"""The sanitizer section of `fastrnn gpu-run`: fastrnn.gpu_smoke on every kernel form and cell,
plain first, then under compute-sanitizer memcheck and racecheck (each a boxed child).

Without compute-sanitizer (not on PATH nor in SANITIZER_DIRS) or in a dry run, only the plain
smoke run goes, and the section is 'skipped' unless that run fails.
"""

import os
import shutil
from pathlib import Path

from fastrnn.gpu_sections import SectionResult
from fastrnn.gpu_timebox import LogFile

CELLS = ("lstm", "gru", "rnn")
# Where compute-sanitizer lives when it is not on PATH.
SANITIZER_DIRS = ("/usr/local/cuda/bin", "/opt/nvidia/cuda/bin")


def find_sanitizer():
    """The compute-sanitizer executable, or None."""
    found = shutil.which("compute-sanitizer")
    if found:
        return found
    for folder in SANITIZER_DIRS:
        candidate = Path(folder) / "compute-sanitizer"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def kernel_forms():
    """(forms, None) from fastrnn.kernels.FORMS read now (they change with the kernels), or
    ((), the import error)."""
    try:
        from fastrnn import kernels
    except Exception as error:  # a broken kernels package is a finding, not a crash of the run
        return (), f"{type(error).__name__}: {error}"
    return tuple(kernels.FORMS), None


def smoke_argv(python, forms, dtypes, tiny):
    argv = [python, "-m", "fastrnn.gpu_smoke", "--cell", *CELLS, "--proj", "--form", *forms,
            "--dtype", *dtypes]
    return argv + (["--tiny"] if tiny else [])


# Options used only when `compute-sanitizer --help` lists them (older releases lack some):
# the Python children Triton spawns (ptxas) need no instrumentation, and host API errors that
# torch provokes and handles itself must not fail the run; a launch that fails raises anyway.
OPTIONAL_SANITIZER_OPTIONS = (("--target-processes", "application-only"),
                              ("--report-api-errors", "no"))


def sanitizer_options(help_text):
    """--error-exitcode 1 plus each optional option that `help_text` mentions."""
    options = ["--error-exitcode", "1"]
    for name, value in OPTIONAL_SANITIZER_OPTIONS:
        if name in help_text:
            options += [name, value]
    return options


def sanitizer_plan(python, sanitizer, forms, tiny, options=()):
    """[(label, weight, argv)]: the plain smoke run of every form first (it also fills the Triton
    cache, so the sanitized runs do not compile under instrumentation), then one memcheck run over
    every form, then one racecheck run over the forms whose programs share memory (every form but
    'persistent'). One process per tool: its start-up (torch, CUDA, instrumentation) is the
    largest cost; the smoke's `-> <label>` lines tell which run a report belongs to. weight: the
    run's part of the section's time."""
    dtypes = ["bfloat16"] if tiny else ["bfloat16", "float32"]
    plan = [("smoke", 3, smoke_argv(python, forms, dtypes, tiny))]
    if sanitizer is None:
        return plan
    plan.append(("memcheck", 2, [sanitizer, "--tool", "memcheck", *options,
                                 *smoke_argv(python, forms, dtypes, tiny)]))
    shared = [form for form in forms if form != "persistent"]
    if shared:
        plan.append(("racecheck", 2, [sanitizer, "--tool", "racecheck", *options,
                                      *smoke_argv(python, shared, ["bfloat16"], tiny)]))
    return plan


def sanitizer_findings(text):
    """(summary lines, first error lines) of compute-sanitizer output; each error line is prefixed
    with the smoke run it happened in (the last `-> <label>` line before it). At most 8 errors."""
    summaries, errors, run = [], [], None
    for line in text.splitlines():
        if line.startswith("-> "):
            run = line[3:].strip()
        if not line.startswith("========="):
            continue
        body = line.lstrip("= ").strip()
        if not body or "COMPUTE-SANITIZER" in body:
            continue
        if "SUMMARY" in body:
            summaries.append(body)
        elif len(errors) < 8:
            errors.append(f"[{run or 'start-up'}] {body}")
    return list(dict.fromkeys(summaries)), list(dict.fromkeys(errors))


def run_sanitizer(ctx, box, clock):
    """clock(): seconds left in this section's box."""
    result = SectionResult("sanitizer", "passed", 0.0, box)
    forms, error = kernel_forms()
    if error:
        result.status, result.summary = "failed", f"fastrnn.kernels does not import: {error}"
        return result
    sanitizer = None if ctx.dry_run else find_sanitizer()
    log = LogFile(ctx.out / "sanitizer.log")
    options = []
    if sanitizer:
        helped = ctx.run([sanitizer, "--help"], min(15.0, clock()), logs=[])
        options = sanitizer_options(helped.head + helped.tail)
    plan = sanitizer_plan(ctx.python, sanitizer, forms, tiny=ctx.dry_run, options=options)
    # Every allocation its own cudaMalloc, so memcheck sees an overrun of one tensor into the next.
    env = {**ctx.env, "PYTORCH_NO_CUDA_MEMORY_CACHING": "1"}
    parts = []
    for index, (label, weight, argv) in enumerate(plan):
        left = clock()
        share = min(left, 1.3 * left * weight / sum(w for _, w, _ in plan[index:]))
        if share < 3:
            result.details.append(f"- {label}: not run, no time left in the box")
            result.status = "timeout"
            parts.append(f"{label} not run")
            continue
        outcome = ctx.run(argv, share, logs=[log], env=env if argv[0] == sanitizer else ctx.env)
        result.seconds += outcome.seconds
        # head + tail: the first reports and the final summary of a long output.
        summaries, errors = sanitizer_findings(outcome.head + "\n" + outcome.tail)
        smoke_total = [line for line in outcome.tail.splitlines() if line.startswith("gpu_smoke:")]
        found = "; ".join(summaries + smoke_total[-1:]) or (
            outcome.reason or (outcome.tail.strip().splitlines() or [""])[-1][:160])
        result.details.append(f"- {label}: **{outcome.status}** in {outcome.seconds:.0f} s: "
                              f"{found}")
        result.details += [f"    - `{line[:200]}`" for line in errors]
        failed_runs = [line for line in outcome.tail.splitlines() if " FAIL " in line]
        result.details += [f"    - `{line.strip()[:200]}`" for line in failed_runs[:8]]
        parts.append(f"{label} {outcome.status}")
        if outcome.status != "passed":
            result.status = "timeout" if outcome.status == "timeout" else "failed"
    if sanitizer is None and result.status == "passed":
        result.status = "skipped"
        why = ("dry run (no GPU)" if ctx.dry_run else
               f"compute-sanitizer not on PATH nor in {', '.join(SANITIZER_DIRS)}")
        result.details.insert(0, f"- compute-sanitizer skipped: {why}; the smoke run went "
                                 f"without it")
        parts.append(f"compute-sanitizer skipped: {why}")
    result.summary = f"forms {', '.join(forms)}: " + "; ".join(parts)
    return result
