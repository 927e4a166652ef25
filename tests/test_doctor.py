"""`fastrnn doctor` end to end on the CPU, in-process: the JSON report, exit codes, budget, timing.

The suite exports TRITON_INTERPRET=1, so the triton rows run through Triton's interpreter; without
it they are skipped with a reason, which the assertions accept too.
"""

import json

import pytest
import torch

from fastrnn import cli
from fastrnn import doctor_checks as checks
from fastrnn.backends import triton_interpreter_enabled

TOP_KEYS = {"schema", "command", "options", "device", "budget_s", "env", "choices", "checks",
            "bench", "summary", "verdict", "gpu_exercised", "triton_interpreted", "notes",
            "elapsed_s"}
CHECK_KEYS = {"section", "name", "backend", "cell", "case", "dtype", "status", "detail", "seconds"}
BENCH_KEYS = {"name", "provider", "mode", "median_ms", "speedup_vs_torch", "form", "status"}
NOT_ON_GPU = "The Triton kernels were not exercised on a GPU"


def doctor(tmp_path, capsys, *options):
    """Run `fastrnn doctor --device cpu --json ...`; (exit code, report dict, stdout)."""
    path = tmp_path / "doctor.json"
    code = cli.main(["doctor", "--device", "cpu", "--json", str(path), *options])
    printed = capsys.readouterr().out
    # Strict JSON (no NaN or Infinity), as another program reads it.
    report = json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(name))
    assert set(report) == TOP_KEYS
    assert all(len(line) <= 100 for line in printed.splitlines()), printed
    assert "Traceback" not in printed
    return code, report, printed


@pytest.fixture
def few_cases(monkeypatch):
    """One cell, so the tests that are not about coverage stay fast."""
    monkeypatch.setattr(checks, "PARITY_CASES", (checks.ParityCase("GRU", "gru"),))


@pytest.mark.triton
def test_cpu_run_passes_and_reports_every_backend(tmp_path, capsys):
    code, report, printed = doctor(tmp_path, capsys, "--budget", "120")
    assert code == 0, printed
    assert report["verdict"] == "pass" and report["device"] == "cpu" and report["bench"] == []
    assert report["gpu_exercised"] is False
    env = report["env"]
    for key in ("gpu_sm_count", "gpu_shared_memory_per_block_optin", "compute_capability",
                "gpu_name", "cuda", "cudnn", "tf32_matmul", "tf32_cudnn", "torch", "triton",
                "numpy", "triton_interpret"):
        assert key in env
    assert [c["name"] for c in report["choices"]] == [c[0] for c in checks.CHOICE_CONFIGS]
    assert all(c["backend"] == "cpu" and c["error"] is None for c in report["choices"])

    rows = report["checks"]
    assert all(CHECK_KEYS <= set(row) for row in rows)
    cases = {case.label for case in checks.PARITY_CASES}
    for backend in ("reference", "cpu", "torch"):
        mine = [r for r in rows if r["backend"] == backend]
        assert {r["case"] for r in mine} == cases and {r["dtype"] for r in mine} == set(
            checks.PARITY_DTYPES)
        assert all(r["status"] == "passed" and r["tensors"] >= 6 for r in mine)
    # The projection case really compares the projection weight's gradient.
    proj = next(r for r in rows if r["case"] == "LSTM proj" and r["backend"] == "reference")
    plain = next(r for r in rows if r["case"] == "LSTM" and r["backend"] == "reference")
    assert proj["tensors"] == plain["tensors"] + 1 == 11

    triton_rows = [r for r in rows if r["backend"] == "triton"]
    assert len(triton_rows) == len(cases) * len(checks.PARITY_DTYPES)
    for row in triton_rows:
        if not triton_interpreter_enabled():
            assert row["status"] == "skipped" and "TRITON_INTERPRET=1" in row["detail"]
        elif row["dtype"] == "float64":
            assert row["status"] == "skipped" and row["detail"].startswith("not applicable: ")
        else:
            assert row["status"] == "passed", row
    assert report["triton_interpreted"] is triton_interpreter_enabled()
    assert NOT_ON_GPU in printed and any(NOT_ON_GPU in note for note in report["notes"])
    assert "PASS: every check that ran passed" in printed


def test_a_wrong_or_crashing_backend_fails_the_run(tmp_path, capsys, monkeypatch, few_cases):
    """A 'torch' result 10% off in float32 is a failed row; one that raises is an error row."""
    build = checks.fastrnn_module

    def broken(config, backend):
        module = build(config, backend)
        if backend == "torch" and config.dtype == "float32":
            module.register_forward_hook(lambda m, args, out: (out[0] * 1.1, out[1]))
        if backend == "torch" and config.dtype == "bfloat16":
            def crash(m, args):
                raise RuntimeError("injected failure\nsecond line")
            module.register_forward_pre_hook(crash)
        return module

    monkeypatch.setattr(checks, "fastrnn_module", broken)
    code, report, printed = doctor(tmp_path, capsys)
    assert code == 1 and report["verdict"] == "fail"
    by_name = {row["name"]: row for row in report["checks"]}
    failed = by_name["torch/GRU/float32"]
    assert failed["status"] == "failed" and "output" in failed["failed"]
    crashed = by_name["torch/GRU/bfloat16"]
    assert crashed["status"] == "error"
    assert crashed["detail"] == "RuntimeError: injected failure"
    assert "Traceback" in crashed["traceback"] and "injected failure" in crashed["traceback"]
    assert by_name["torch/GRU/float16"]["status"] == "passed"
    assert "FAIL torch/GRU/float32: " in printed and "tensors off: output: rel_rms=" in printed
    assert "ERROR torch/GRU/bfloat16: RuntimeError: injected failure" in printed
    assert "FAIL: 1 check(s) failed and 1 raised an error" in printed


def test_budget_zero_skips_every_check_and_passes(tmp_path, capsys):
    code, report, printed = doctor(tmp_path, capsys, "--budget", "0", "--bench")
    assert code == 0 and report["verdict"] == "pass"
    rows = report["checks"] + report["bench"]
    assert rows and report["bench"]
    # Whole-backend reasons (no interpreter) come first; everything else is out of budget.
    budget = [r for r in rows if r["detail"] == "budget"]
    assert budget and all(r["status"] == "skipped" for r in rows)
    assert {r["backend"] for r in report["checks"] if r["detail"] != "budget"} <= {"triton"}
    assert "nothing was checked" in printed


def test_bench_times_fastrnn_against_torch(tmp_path, capsys, monkeypatch, few_cases):
    monkeypatch.setattr(checks, "BENCH_SIZES", {"cpu": (checks.BenchSize("LSTM", 3, 2, 4,
                                                                         "float32"),)})
    monkeypatch.setattr(checks, "CPU_MIN_RUN_TIME", 0.01)
    threads = torch.get_num_threads()
    code, report, printed = doctor(tmp_path, capsys, "--bench")
    assert code == 0, printed
    assert torch.get_num_threads() == threads  # the 1-thread timing setting is undone
    rows = report["bench"]
    assert [(r["provider"], r["mode"]) for r in rows] == [
        ("torch.nn", "forward"), ("fastrnn", "forward"),
        ("torch.nn", "forward+backward"), ("fastrnn", "forward+backward")]
    assert all(BENCH_KEYS <= set(r) and r["status"] == "passed" and r["median_ms"] > 0
               for r in rows)
    assert all(r["speedup_vs_torch"] == 1.0 for r in rows if r["provider"] == "torch.nn")
    ours = [r for r in rows if r["provider"] == "fastrnn"]
    assert all(r["backend"] == "cpu" and r["form"] is None for r in ours)
    assert "LSTM T=3 B=2 H=4 fp32" in printed and "speedup" in printed


def test_an_interrupt_still_writes_the_rows_that_finished(tmp_path, capsys, monkeypatch,
                                                         few_cases):
    """The H100 run's doctor was cut by its time box's SIGINT in a kernel compile and wrote no
    JSON: now the report keeps the finished rows, says 'interrupted' and exits 130."""
    monkeypatch.setattr(checks, "BENCH_SIZES", {"cpu": (checks.BenchSize("LSTM", 3, 2, 4,
                                                                         "float32"),)})
    monkeypatch.setattr(checks, "CPU_MIN_RUN_TIME", 0.01)
    timed = checks.bench_row

    def interrupted_in_ours(workload, size, provider, *args, **kwargs):
        if provider == "fastrnn":
            raise KeyboardInterrupt
        return timed(workload, size, provider, *args, **kwargs)

    monkeypatch.setattr(checks, "bench_row", interrupted_in_ours)
    code, report, printed = doctor(tmp_path, capsys, "--bench")
    assert code == 130 and report["verdict"] == "interrupted", printed
    assert report["checks"] and all(r["status"] in ("passed", "skipped") for r in report["checks"])
    assert [(r["provider"], r["mode"], r["status"]) for r in report["bench"]] == [
        ("torch.nn", "forward", "passed")]
    assert "INTERRUPTED" in printed and "the rest did not run" in printed


@pytest.mark.triton
@pytest.mark.skipif(not triton_interpreter_enabled(), reason="needs TRITON_INTERPRET=1")
def test_bench_and_choices_record_the_kernel_form(tmp_path, capsys, monkeypatch, few_cases):
    """With FASTRNN_BACKEND=triton, `auto` runs the kernels (interpreter): the form is reported."""
    monkeypatch.setenv("FASTRNN_BACKEND", "triton")
    monkeypatch.setattr(checks, "BENCH_SIZES", {"cpu": (checks.BenchSize("GRU", 2, 2, 4,
                                                                         "float32"),)})
    monkeypatch.setattr(checks, "BENCH_MODES", ("forward+backward",))
    monkeypatch.setattr(checks, "CPU_MIN_RUN_TIME", 0.01)
    code, report, printed = doctor(tmp_path, capsys, "--bench")
    assert code == 0, printed
    from fastrnn import kernels

    assert all(c["backend"] == "triton" and c["form"] in kernels.FORMS and c["form_reason"]
               for c in report["choices"])
    ours = next(r for r in report["bench"] if r["provider"] == "fastrnn")
    assert ours["backend"] == "triton"
    assert {f["pass"] for f in ours["forms"]} == {"forward", "backward"}
    assert ours["form"] is not None and all(f["form"] in kernels.FORMS for f in ours["forms"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_device_cuda_without_cuda_is_a_usage_error(capsys):
    assert cli.main(["doctor", "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_gpu_report_formatting_with_fabricated_rows(capsys):
    """The CUDA-only printing paths (GPU block, triton choices with forms, timings, the notes),
    fed rows shaped like a GPU run's, so they are checked on machines without one."""
    from fastrnn import doctor

    cuda = torch.device("cuda")
    env = {**checks.collect_environment(), "cuda_available": True, "gpu_name": "NVIDIA H100",
           "gpu_count": 1, "compute_capability": "9.0", "gpu_sm_count": 132,
           "gpu_shared_memory_per_block_optin": 232448, "gpu_memory_bytes": 85 * 1024**3,
           "driver": "570.1", "cuda": "12.8", "cudnn": 91000}
    say = doctor.Printer(quiet=False)
    doctor.print_environment(say, env)
    choice = {**checks.backend_choice(*checks.CHOICE_CONFIGS[0], torch.device("cpu")),
              "backend": "triton", "reason": "auto: CUDA tensor", "form": "some-form",
              "form_reason": "a reason long enough to need wrapping " * 3}
    doctor.print_choices(say, [choice], cuda)
    doctor.print_bench_header(say, cuda)
    on_row = doctor.bench_printer(say)
    base = {"name": "LSTM T=64 B=16 H=128 bfloat16", "dtype": "bfloat16", "mode": "forward",
            "status": "passed", "detail": "timed", "form": None}
    on_row({**base, "provider": "torch.nn", "backend": "torch", "median_ms": 1.0})
    on_row({**base, "provider": "fastrnn", "backend": "triton", "median_ms": 0.5,
            "speedup_vs_torch": 2.0, "form": "cooperative"})
    rows = [{"backend": "triton", "status": "passed", "detail": "ok"}] * 3
    notes = doctor.verdict_notes(env, cuda, True, False, rows)
    budget_rows = [{"backend": "triton", "status": "skipped", "detail": checks.BUDGET}] * 2
    notes += doctor.verdict_notes(env, cuda, False, False, budget_rows)
    printed = capsys.readouterr().out
    assert all(len(line) <= 100 for line in printed.splitlines()), printed
    assert "9.0, 132 SMs" in printed and "per block (opt-in) 227 KiB" in printed
    assert "triton, some-form form: auto: CUDA tensor" in printed
    assert "why this form: a reason long" in printed
    assert "LSTM T=64 B=16 H=128 bf16  forward" in printed
    assert "2.00x  triton/cooperative" in printed
    assert notes == ["The Triton kernels ran on the GPU (NVIDIA H100) in 3 parity checks.",
                     "The Triton kernels were not exercised on the GPU: the --budget ran out "
                     "before their checks started."]
