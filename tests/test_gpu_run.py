"""`fastrnn gpu-run`: its dry run end to end (CPU, interpreter, tiny sizes) and the pieces only a
GPU run exercises: time boxes, budget arithmetic, argument building, the 8-file limit, parsing of
pytest and compute-sanitizer output, and the supervisor of the benchmark children."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import cases, providers, results, rowwise, runner
from fastrnn import gpu_bench, gpu_run, gpu_sanitizer, gpu_sections, gpu_summary
from fastrnn.gpu_timebox import Budget, LogFile, Outcome, run_boxed

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("doctor", "tests", "sanitizer", "headline", "grid")


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """One dry run through the real command line, as a user would start it."""
    out = tmp_path_factory.mktemp("gpu-run")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "fastrnn", "gpu-run", "--dry-run", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    return out, done, time.monotonic() - start


@pytest.mark.triton
def test_dry_run_writes_at_most_8_valid_files(dry_run):
    out, done, seconds = dry_run
    names = sorted(p.name for p in out.iterdir())
    assert set(names) == set(gpu_run.FILES), (names, done.stdout[-3000:], done.stderr[-3000:])
    assert len(names) <= 8 and all(re.fullmatch(r"[A-Za-z0-9._-]+", n) for n in names)
    assert all(p.is_file() and p.stat().st_size < 16 * 2**20 for p in out.iterdir())
    assert (out / "headline.png").read_bytes()[:4] == b"\x89PNG"
    assert seconds < gpu_run.DRY_BUDGET


@pytest.mark.triton
def test_dry_run_summary_has_every_section_and_is_printed_last(dry_run):
    out, done, _ = dry_run
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# fastrnn gpu-run — DRY RUN")
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (\w+) \| (\w+) \|", summary, re.M)}
    assert set(SECTIONS) <= set(rows), summary
    # compute-sanitizer never runs in a dry run, so the exit status says not every section passed.
    assert rows["sanitizer"] == "SKIPPED" and done.returncode == 1
    assert rows["tests"] == "PASS" and rows["headline"] == "PASS" and rows["grid"] == "PASS"
    assert "smoke: **passed**" in summary and "## Headline" in summary
    assert done.stdout.rstrip().endswith(summary.rstrip().splitlines()[-1])
    assert "| section | status |" in done.stdout[-gpu_summary.STDOUT_CHARS:]


@pytest.mark.triton
def test_dry_run_headline_follows_the_schema_and_records_forms(dry_run):
    out, _, _ = dry_run
    result = results.load(out / "headline.json")
    assert result["grids"] == ["headline"]
    kernels = [r for r in result["rows"] if providers.uses_kernels(r["provider"])]
    assert kernels and all(r["status"] == "ok" for r in kernels)
    for row in kernels:  # each forced form is the one that ran
        assert row["form"] == row["provider"].removeprefix("triton-")
        assert row["speedup_vs_torch_fp16"] is not None and row["speedup_vs_torch_bf16"] is not None
    assert all(r["form"] is None for r in result["rows"] if r["provider"].startswith("torch"))
    grid = results.load(out / "grid.json")
    assert {r["grid"] for r in grid["rows"]} == {"flashrnn", "small"}
    assert all(r["form"] for r in grid["rows"] if r["provider"] == "triton")
    log = (out / "gpu-run.log").read_text()
    assert all(f"########## {name}:" in log for name in SECTIONS)


def test_timebox_kills_a_hanging_child_and_its_group():
    start = time.monotonic()
    outcome = run_boxed(["bash", "-c", "sleep 30 & sleep 30; wait"], 1.0)
    assert outcome.status == "timeout" and "time box" in outcome.reason
    assert time.monotonic() - start < 3.5
    stubborn = ("import signal, time\nfor s in (signal.SIGINT, signal.SIGTERM):\n"
                "    signal.signal(s, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(30)")
    outcome = run_boxed([sys.executable, "-c", stubborn], 1.5)
    assert outcome.status == "timeout" and outcome.returncode == -9 and "up" in outcome.tail


def test_a_hanging_section_is_cut_at_its_box_and_the_run_goes_on(tmp_path, monkeypatch):
    ctx = gpu_sections.Context(root=ROOT, out=tmp_path, tmp=tmp_path, env=dict(os.environ),
                               log=LogFile(tmp_path / "gpu-run.log"), dry_run=True)

    def fake(ctx, name, box, start):
        argv = ["sleep", "60"] if name == "doctor" else ["true"]
        outcome = ctx.run(argv, box)
        return gpu_sections.SectionResult(name, outcome.status, outcome.seconds, box, name)

    monkeypatch.setattr(gpu_run, "_run_section", fake)
    budget = Budget(16.0, {"doctor": 0.25, "tests": 0.25, "grid": 0.5}, reserve=1.0)
    start = time.monotonic()
    done = gpu_run.run_sections(ctx, budget, ["doctor", "tests", "grid"])
    assert [r.status for r in done] == ["timeout", "passed", "passed"]
    assert done[0].box < 4.5 and done[0].seconds < done[0].box + 0.5
    assert time.monotonic() - start < 16.0
    assert (tmp_path / "summary.md").exists()  # written after every section


def test_budget_boxes_cascade_and_never_exceed_what_is_left():
    now = [0.0]
    budget = Budget(100.0, {"a": 0.2, "b": 0.3, "c": 0.5}, reserve=10.0, clock=lambda: now[0])
    assert budget.box("a") == pytest.approx(18.0)  # its own share of the 90 usable seconds
    now[0] = 5.0  # a finished early: b gets its share plus a's unused 13 s
    assert budget.box("b") == pytest.approx(27.0 + 13.0)
    now[0] = 45.0
    assert budget.box("c") == pytest.approx(45.0)  # the last takes everything left
    now[0] = 88.0
    assert budget.box("c") == 0.0  # less than MIN_BOX before the reserve
    late = Budget(540.0, gpu_run.SHARES, elapsed=4.0, clock=lambda: 0.0)
    boxes = [late.box(name) for name in gpu_run.SHARES]
    assert all(0 < box <= late.remaining() for box in boxes)
    assert late.reserve == 25.0 and Budget(60.0, gpu_run.SHARES).reserve == 3.0


def test_chosen_sections_share_the_whole_budget():
    """--sections tests sanitizer: the sections left out are owed nothing, so tests gets its
    proportion of everything usable (not 24% with doctor's, headline's and grid's shares idle)."""
    budget = gpu_run.sections_budget(100.0, ["sanitizer", "tests"])
    assert list(budget.shares) == ["tests", "sanitizer"]  # priority order, whatever was typed
    assert sum(budget.shares.values()) == pytest.approx(1.0)
    share = gpu_run.SHARES["tests"] / (gpu_run.SHARES["tests"] + gpu_run.SHARES["sanitizer"])
    assert budget.box("tests") == pytest.approx(share * budget.remaining(), rel=1e-3)
    assert gpu_run.sections_budget(100.0, ["tests"]).box("tests") == pytest.approx(
        gpu_run.sections_budget(100.0, ["tests"]).remaining(), rel=1e-3)


def test_pytest_arguments_follow_the_installed_plugins():
    full = gpu_sections.pytest_argv("python3", 90, 8, xdist=True, timeout_plugin=True)
    assert full[:5] == ["python3", "-m", "pytest", "-m", "gpu"] and full[-1] == "tests/"
    assert " -n 8 " in " ".join(full) and "--timeout 90 --timeout-method thread" in " ".join(full)
    bare = gpu_sections.pytest_argv("python3", 90, 8, xdist=False, timeout_plugin=False)
    assert "-n" not in bare and "--timeout" not in bare
    assert {"-p", "no:cacheprovider", "-q", "-rfE"} <= set(bare)
    assert gpu_sections.per_test_timeout(20) == 30 and gpu_sections.per_test_timeout(1000) == 180


def test_child_environment():
    base = {"TRITON_INTERPRET": "1", "FASTRNN_KERNEL_FORM": "persistent", "PYTHONPATH": "/x"}
    gpu = gpu_sections.child_env(ROOT, "/tmp/c", dry_run=False, base=base)
    assert "TRITON_INTERPRET" not in gpu and "FASTRNN_KERNEL_FORM" not in gpu
    assert gpu["PYTHONPATH"] == f"{ROOT}{os.pathsep}/x" and gpu["PYTHONUNBUFFERED"] == "1"
    assert gpu["TRITON_CACHE_DIR"].startswith("/tmp/c") and gpu["MPLBACKEND"] == "Agg"
    dry = gpu_sections.child_env(ROOT, "/tmp/c", dry_run=True, base={})
    assert dry["TRITON_INTERPRET"] == "1" and dry["CUDA_VISIBLE_DEVICES"] == ""
    assert "CUDA_VISIBLE_DEVICES" not in gpu


def test_doctor_gets_a_budget_inside_its_box():
    argv = gpu_sections.doctor_argv("python3", "/o/doctor.json", 40)
    assert argv[:6] == ["python3", "-m", "fastrnn", "doctor", "--bench", "--json"]
    assert 0 < int(argv[argv.index("--budget") + 1]) <= 30
    assert gpu_sections.doctor_argv("p", "j", 40, cap=3)[-1] == "3"


def test_sanitizer_plan_takes_the_forms_given():
    forms = ("persistent", "cooperative", "stepwise")
    options = gpu_sanitizer.sanitizer_options("  --target-processes arg\n  --report-api-errors arg")
    plan = gpu_sanitizer.sanitizer_plan("python3", "/cuda/compute-sanitizer", forms, tiny=False,
                                       options=options)
    assert [label for label, _, _ in plan] == ["smoke", "memcheck", "racecheck"]
    _, _, memcheck = plan[1]
    assert memcheck[:3] == ["/cuda/compute-sanitizer", "--tool", "memcheck"]
    assert "--error-exitcode 1 --target-processes application-only --report-api-errors no" in (
        " ".join(memcheck))
    assert memcheck[memcheck.index("--form") + 1:memcheck.index("--dtype")] == list(forms)
    _, _, racecheck = plan[2]
    assert racecheck[racecheck.index("--form") + 1:racecheck.index("--dtype")] == [
        "cooperative", "stepwise"]
    only_persistent = gpu_sanitizer.sanitizer_plan("p", "s", ("persistent",), tiny=True)
    assert [label for label, _, _ in only_persistent] == ["smoke", "memcheck"]
    assert "--tiny" in only_persistent[0][2]
    assert [label for label, _, _ in gpu_sanitizer.sanitizer_plan("p", None, forms, True)] == [
        "smoke"]
    assert gpu_sanitizer.sanitizer_options("old release") == ["--error-exitcode", "1"]


def test_sanitizer_and_pytest_output_is_parsed():
    text = ("========= COMPUTE-SANITIZER\n-> lstm persistent  bfloat16 P=0\n"
            "========= Invalid __global__ read of size 2 bytes\n"
            "=========     at _lstm_fwd_persistent_kernel+0x1c0\n"
            "lstm persistent bfloat16 P=0  ok  0.1 s\n========= ERROR SUMMARY: 1 error\n")
    summaries, errors = gpu_sanitizer.sanitizer_findings(text)
    assert summaries == ["ERROR SUMMARY: 1 error"]
    assert errors[0] == "[lstm persistent  bfloat16 P=0] Invalid __global__ read of size 2 bytes"
    quiet = ("....F\nFAILED tests/x.py::test_a - AssertionError\n"
             "3 failed, 250 passed, 1 skipped in 97.31s (0:01:37)\n")
    assert gpu_sections.parse_pytest(quiet) == ("3 failed, 250 passed, 1 skipped",
                                                ["FAILED tests/x.py::test_a - AssertionError"])
    framed = "!!! KeyboardInterrupt !!!\n===== 2 passed, 5 deselected in 4.20s =====\n"
    assert gpu_sections.parse_pytest(framed)[0] == "2 passed, 5 deselected"
    assert gpu_sections.parse_pytest("collected 0 items\n")[0] is None


def test_a_cut_test_run_is_summarized_from_its_live_lines():
    """The box's signals can take pytest-xdist down before its totals line: the summary then
    counts conftest's '::: <outcome>' lines (a rerun of a node id counts once, its last)."""
    text = ("12 workers [300 items]\n..\n::: passed 1.2s tests/a.py::test_x[1]\n"
            "!!!!! FAILED tests/a.py::test_y (call)\nboom\n!!!!! end of tests/a.py::test_y\n"
            "::: failed 0.3s tests/a.py::test_y\n::: skipped 0.0s tests/a.py::test_z\n"
            "::: passed 2.0s tests/a.py::test_x[2]\n")
    counts, failed, collected = gpu_sections.live_outcomes(text)
    assert counts == {"passed": 2, "failed": 1, "skipped": 1} and collected == 300
    assert failed == ["tests/a.py::test_y"]
    assert gpu_sections._cut_summary(text, -15) == (
        "cut after 4 of 300 tests: 1 failed, 2 passed, 1 skipped (exit -15)", failed)
    assert gpu_sections._cut_summary("bringing up nodes...\n", -15)[0] == (
        "no pytest summary line (exit -15)")


def test_file_limit_keeps_the_eight_most_important(tmp_path):
    for name in (*gpu_run.FILES, "extra.txt", "headline.json.tmp", "bad name.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "folder").mkdir()
    removed = gpu_run.enforce_file_limit(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(gpu_run.FILES)
    assert set(removed) == {"extra.txt", "headline.json.tmp", "bad name.txt", "folder/"}
    gpu_run.enforce_file_limit(tmp_path, limit=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(gpu_run.FILES[:3])


def test_log_keeps_head_and_tail_of_a_flood(tmp_path, monkeypatch):
    from fastrnn import gpu_timebox

    monkeypatch.setattr(gpu_timebox, "HEAD_BYTES", 1000)
    monkeypatch.setattr(gpu_timebox, "TAIL_BYTES", 1000)
    log = LogFile(tmp_path / "log", cap=50_000)
    flood = "for i in range(200000): print('line', i)"
    outcome = run_boxed([sys.executable, "-c", flood], 30, logs=[log])
    text = (tmp_path / "log").read_text()
    assert outcome.status == "passed" and outcome.dropped_bytes > 1_000_000
    assert text.startswith("line 0\n") and text.rstrip().endswith("line 199999")
    assert "bytes of output dropped here" in text and len(text) < 5000
    capped = LogFile(tmp_path / "capped", cap=100)
    capped.write("x" * 80)
    capped.write("y" * 80)
    capped.write("z" * 80)
    assert (tmp_path / "capped").read_text().count("y") == 20 and "log cap reached" in (
        tmp_path / "capped").read_text()


def test_rowwise_records_incidents_skips_larger_sizes_and_resumes(tmp_path):
    out, incidents = tmp_path / "rows.json", tmp_path / "incidents.json"
    first = cases.select(cases.GRIDS["cpu"], cells=["LSTM"], tiny=True)[0]
    incidents.write_text(json.dumps([{"grid": "cpu", "case": first.id, "provider": "torch",
                                      "reason": "killed: no result after 60 s"}]))
    argv = ["--grids", "cpu", "--cells", "LSTM", "--tiny", "--limit", "2", "--providers", "torch",
            "--modes", "fwd",
            "--device", "cpu", "--out", str(out), "--incidents", str(incidents),
            "--progress", str(tmp_path / "progress.json"), "--min-run-time", "0.01",
            "--max-run-time", "0.02", "--min-repeats", "1"]
    assert rowwise.main(argv) == 0
    rows = results.load(out)["rows"]
    assert [r["status"] for r in rows] == ["error", "unavailable"]
    assert rows[0]["reason"] == "killed: no result after 60 s"
    assert rows[1]["reason"].startswith("skipped: torch was killed at LSTM H=8")
    assert json.loads((tmp_path / "progress.json").read_text()) == {}
    assert rowwise.main(argv) == 0 and len(results.load(out)["rows"]) == 2  # resumed: no rerun
    assert rowwise.POISONED_EXIT == gpu_bench.POISONED_EXIT


def test_rowwise_stops_starting_rows_when_time_is_up(tmp_path):
    out = tmp_path / "rows.json"
    assert rowwise.main(["--grids", "cpu", "--tiny", "--providers", "torch", "--device", "cpu",
                         "--out", str(out), "--stop-at", str(time.time() + 1),
                         "--min-row-s", "5"]) == 0
    result = results.load(out)
    assert result["rows"] == [] and result["settings"]["stop_reason"].startswith("time is up")


def test_supervisor_restarts_after_a_killed_row(tmp_path):
    calls = []

    class Ctx:
        python, tmp = "python3", tmp_path

        def run(self, argv, timeout, **kwargs):
            calls.append(argv)
            progress = Path(argv[argv.index("--progress") + 1])
            if len(calls) == 1:  # the first child hangs in a row: the watchdog stops it
                progress.write_text(json.dumps({"grid": "headline", "case": "C", "provider": "P",
                                                "started": time.time() - 999}))
                assert kwargs["watchdog"]()
                return Outcome("killed", -15, 1.0, "C P ran past 60 s")
            incidents = json.loads(Path(argv[argv.index("--incidents") + 1]).read_text())
            assert incidents[0]["case"] == "C" and incidents[0]["reason"].startswith("killed:")
            return Outcome("passed", 0, 1.0)

    outcomes, incidents = gpu_bench.supervise(Ctx(), "headline", 200.0, ["--grids", "headline"],
                                              tmp_path / "h.json", dry_run=False)
    assert [o.status for o in outcomes] == ["killed", "passed"] and len(incidents) == 1
    result = gpu_bench.summarize("headline", 200.0, outcomes, incidents, tmp_path / "h.json", True)
    assert result.status == "failed"  # no result file


def test_providers_for_the_headline():
    forms = providers.kernel_forms()
    bf16 = cases.GRIDS["headline"].cases[0]
    assert bf16.dtype == "bfloat16" and bf16.H == cases.HEADLINE_H[0]
    names = providers.for_case(cases.GRIDS["headline"].providers, bf16)
    assert names == ["torch", "torch-fp16", *[f"triton-{f}" for f in forms]]
    assert providers.effective_case("torch-fp16", bf16).dtype == "float16"
    assert providers.effective_case("triton-persistent", bf16) == bf16
    assert providers.is_known("triton-forms") and not providers.is_known("cudnn")
    rows = [runner._row(bf16, p, "fwd", "cpu", "ok", result=t) for p, t in (
        ("torch", _timing(4.0)), ("torch-fp16", _timing(2.0)), ("triton-x", _timing(1.0)))]
    runner.add_speedups(rows)
    assert [(r["speedup_vs_torch"], r["speedup_vs_torch_fp16"], r["speedup_vs_torch_bf16"])
            for r in rows] == [(1.0, 0.5, 1.0), (2.0, 1.0, 2.0), (4.0, 2.0, 4.0)]


def _timing(ms):
    from benchmarks.timing import Timing

    return Timing(ms, ms, ms, 3, "t", None)
