"""What the sections of `fastrnn gpu-run` share (Context, SectionResult, the child environment) and
the first two sections: doctor and the gpu-marked tests. compute-sanitizer is in gpu_sanitizer,
the benchmarks in gpu_bench. Each section runs boxed children (fastrnn.gpu_timebox) and returns a
SectionResult for the summary.
"""

import importlib.util
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from fastrnn.gpu_timebox import LogFile, run_boxed


@dataclass
class SectionResult:
    """status: 'passed' | 'failed' | 'timeout' | 'skipped'. summary: the key numbers in one line;
    details: markdown lines for the section's part of summary.md."""

    name: str
    status: str
    seconds: float = 0.0
    box: float = 0.0
    summary: str = ""
    details: list = field(default_factory=list)


@dataclass
class Context:
    """What every section needs: paths, the child environment, the run's log and the mode."""

    root: Path
    out: Path
    tmp: Path
    env: dict
    log: LogFile
    dry_run: bool
    python: str = sys.executable

    def run(self, argv, timeout, logs=(), **kwargs):
        """run_boxed in the repository root with the child environment, logging a header."""
        logs = [self.log, *logs]
        header = f"\n===== $ {' '.join(map(str, argv))}   (time box {timeout:.0f} s)\n"
        for log in logs:
            log.write(header)
        outcome = run_boxed([str(a) for a in argv], timeout, logs=logs,
                            env=kwargs.pop("env", self.env), cwd=self.root, **kwargs)
        footer = (f"===== {outcome.status} (exit {outcome.returncode}) after "
                  f"{outcome.seconds:.1f} s{': ' + outcome.reason if outcome.reason else ''}\n")
        for log in logs:
            log.write(footer)
        return outcome


def child_env(root, cache, dry_run, base=None):
    """The environment of every child: the repository on PYTHONPATH, unbuffered output, caches in
    `cache` (a bare machine may have no writable home; kept between runs, so a rerun on a machine
    still warm skips the Triton compiles and matplotlib's font scan), matplotlib without a display,
    no inherited kernel-form or backend override; TRITON_INTERPRET=1 (and no visible GPU) only in
    a dry run."""
    env = dict(os.environ if base is None else base)
    for key in ("TRITON_INTERPRET", "FASTRNN_KERNEL_FORM", "FASTRNN_BACKEND", "PYTEST_ADDOPTS"):
        env.pop(key, None)
    if dry_run:
        # Hide any GPU: a dry run on a GPU machine then runs exactly what it runs on a CPU one.
        env.update(TRITON_INTERPRET="1", CUDA_VISIBLE_DEVICES="")
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(root) + (os.pathsep + old if old else "")
    cache = Path(cache)
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg",
               MPLCONFIGDIR=str(cache / "matplotlib"), TRITON_CACHE_DIR=str(cache / "triton"),
               TRITON_HOME=str(cache / "triton-home"), TQDM_DISABLE="1")
    return env


# --- a. doctor --------------------------------------------------------------------------------

def doctor_argv(python, json_path, box, cap=None):
    """`fastrnn doctor --bench` with a budget that leaves it time to start (imports: ~4 s) and
    write its JSON; at most `cap` seconds (a dry run only checks that the command works)."""
    budget = max(1, int(box - min(15.0, max(5.0, 0.25 * box))))
    budget = budget if cap is None else min(budget, cap)
    return [python, "-m", "fastrnn", "doctor", "--bench", "--json", str(json_path),
            "--budget", str(budget)]


def run_doctor(ctx, box):
    path = ctx.out / "doctor.json"
    outcome = ctx.run(doctor_argv(ctx.python, path, box, cap=3 if ctx.dry_run else None), box)
    result = SectionResult("doctor", outcome.status, outcome.seconds, box)
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        result.status = "failed" if outcome.status == "passed" else outcome.status
        result.summary = f"no doctor.json ({type(error).__name__}); exit {outcome.returncode}"
        result.details = ["```", *outcome.tail.strip().splitlines()[-15:], "```"]
        return result
    verdict = report.get("verdict")
    if outcome.status == "passed" and verdict != "pass":
        result.status = "failed"
    counts = {}
    for check in report.get("checks") or []:
        counts[check.get("status")] = counts.get(check.get("status"), 0) + 1
    result.summary = (f"verdict {verdict}, gpu_exercised {report.get('gpu_exercised')}, checks "
                      + ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=str)))
    bad = [c for c in report.get("checks") or [] if c.get("status") in ("failed", "error")]
    bad += [b for b in report.get("bench") or [] if b.get("status") in ("failed", "error")]
    result.details = [f"- {c.get('name')} ({c.get('dtype', '')}): {c.get('status')}: "
                      f"{str(c.get('detail') or c.get('failed') or '')[:150]}" for c in bad[:12]]
    if len(bad) > 12:
        result.details.append(f"- ... and {len(bad) - 12} more in doctor.json")
    return result


# --- b. the gpu-marked tests ------------------------------------------------------------------

def have_module(name):
    return importlib.util.find_spec(name) is not None


def pytest_argv(python, per_test_timeout, workers, xdist, timeout_plugin):
    """pytest on the gpu-marked tests; -n only with pytest-xdist, --timeout only with
    pytest-timeout (its thread method also stops a test stuck in a CUDA call, where SIGALRM
    never fires)."""
    argv = [python, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "-q", "-rfE",
            "--durations=10"]
    if xdist and workers > 1:
        argv += ["-n", str(workers)]
    if timeout_plugin:
        argv += ["--timeout", str(int(per_test_timeout)), "--timeout-method", "thread"]
    return argv + ["tests/"]


def per_test_timeout(box):
    """Half the section's box, between 30 s (compiles queue behind each other) and 180 s."""
    return int(min(180, max(30, 0.5 * box)))


# pytest's last line: '3 failed, 250 passed, 12 skipped in 97.31s (0:01:37)', framed by '=' signs
# unless -q; after a KeyboardInterrupt (the box's SIGINT) it still comes, with what had run.
_PYTEST_TOTALS = re.compile(r"^=* ?(\d+ (?:passed|failed|skipped|errors?|deselected|xfailed|"
                            r"xpassed|warnings?|no tests ran)\b.*?) in [\d.]+s", re.M)


def parse_pytest(text):
    """(totals line or None, [FAILED/ERROR lines]) from pytest's -rfE output."""
    totals = _PYTEST_TOTALS.findall(text)
    failures = [line for line in text.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    return (totals[-1] if totals else None), failures


# The line tests/conftest.py prints for each finished test under FASTRNN_LIVE_REPORT=1, so that a
# run cut at its time box (no pytest summary: xdist's workers go down with the box's signals)
# still says which tests passed, failed or were skipped.
LIVE_PREFIX = "::: "
_LIVE_LINE = re.compile("^" + re.escape(LIVE_PREFIX) + r"(passed|failed|skipped) [\d.]+s (\S+)", re.M)
_COLLECTED = re.compile(r"\[(\d+) items?\]|collected (\d+) items?")


def live_outcomes(text):
    """(outcome counts, failed node ids, collected count or None) from the live lines."""
    outcomes = dict((nodeid, outcome) for outcome, nodeid in _LIVE_LINE.findall(text))
    counts = {}
    for outcome in outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    collected = [int(a or b) for a, b in _COLLECTED.findall(text)]
    return (counts, sorted(n for n, o in outcomes.items() if o == "failed"),
            collected[-1] if collected else None)


def _cut_summary(text, returncode):
    """The summary of a pytest run that printed no totals line, from its live lines."""
    counts, failed, collected = live_outcomes(text)
    if not counts:
        return f"no pytest summary line (exit {returncode})", []
    done = sum(counts.values())
    of = f" of {collected}" if collected else ""
    parts = ", ".join(f"{counts[o]} {o}" for o in ("failed", "passed", "skipped") if o in counts)
    return f"cut after {done}{of} tests: {parts} (exit {returncode})", failed


def run_tests(ctx, box):
    log = LogFile(ctx.out / "tests.log")
    # Compiles are CPU-bound and the GPU time-slices between processes: one worker per core, to 12.
    workers = min(12, os.cpu_count() or 1)
    argv = pytest_argv(ctx.python, per_test_timeout(box), workers, have_module("xdist"),
                       have_module("pytest_timeout"))
    outcome = ctx.run(argv, box, logs=[log], env={**ctx.env, "FASTRNN_LIVE_REPORT": "1"})
    totals, failures = parse_pytest(outcome.tail)
    result = SectionResult("tests", outcome.status, outcome.seconds, box)
    if outcome.returncode == 5:
        result.status = "failed"  # no test collected: the marker or the folder went missing
    result.summary = totals
    if not totals:
        result.summary, failed = _cut_summary(outcome.head + outcome.tail, outcome.returncode)
        failures = failures or [f"FAILED {nodeid}" for nodeid in failed]
    result.details = [f"- `{line[:200]}`" for line in failures[:25]]
    if len(failures) > 25:
        result.details.append(f"- ... and {len(failures) - 25} more in tests.log")
    if not totals:
        result.details += ["```", *outcome.tail.strip().splitlines()[-15:], "```"]
    return result
