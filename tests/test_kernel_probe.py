"""`python -m fastrnn.kernels.probe` and the barrier options it times: what runs without a GPU
(arguments, the refusals, FASTRNN_BARRIER_POLL reaching the kernels' constexprs, and a short dry
run through the interpreter)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fastrnn.kernels import aot, forms, probe

ROOT = Path(__file__).resolve().parent.parent
COOPERATIVE = forms.Shape("lstm", 768, 0, 16, torch.bfloat16)
PERSISTENT = forms.Shape("lstm", 128, 0, 16, torch.bfloat16)


def _barrier_meta(shape, form):
    with forms.use_form(form):
        plan = forms.plan(shape, None, facts=aot.h100_facts())
    return forms.plan_meta(shape, plan)["BARRIER"]


@pytest.fixture
def compiled(monkeypatch):
    """plan_meta as for a GPU: the interpreter flag off (TRITON_INTERPRET may be set for the
    suite), no barrier variable set, no cached constexprs before or after."""
    monkeypatch.setattr(forms, "triton_interpreter_enabled", lambda: False)
    for name in (forms.BARRIER_POLL_ENV_VAR, forms.JITTER_ENV_VAR):
        monkeypatch.delenv(name, raising=False)
    forms.clear_plan_cache()
    yield
    forms.clear_plan_cache()


def test_barrier_poll_reaches_plan_meta(compiled, monkeypatch):
    assert forms.barrier_poll() == "rmw"
    assert _barrier_meta(COOPERATIVE, "cooperative") == 0
    monkeypatch.setenv(forms.BARRIER_POLL_ENV_VAR, "load")
    # No clear_plan_cache needed: the bits are part of the cache key.
    assert _barrier_meta(COOPERATIVE, "cooperative") == forms.BARRIER_POLL_LOAD
    assert _barrier_meta(PERSISTENT, "persistent") == 0
    assert _barrier_meta(COOPERATIVE, "stepwise") == 0
    monkeypatch.setenv(forms.JITTER_ENV_VAR, "1")
    assert _barrier_meta(COOPERATIVE, "cooperative") == (forms.BARRIER_POLL_LOAD
                                                         | forms.BARRIER_JITTER)
    monkeypatch.setenv(forms.BARRIER_POLL_ENV_VAR, " RMW ")
    assert _barrier_meta(COOPERATIVE, "cooperative") == forms.BARRIER_JITTER
    monkeypatch.setenv(forms.BARRIER_POLL_ENV_VAR, "spin")
    with pytest.raises(ValueError, match="FASTRNN_BARRIER_POLL='spin'"):
        _barrier_meta(COOPERATIVE, "cooperative")


def test_the_interpreter_polls_with_rmw(compiled, monkeypatch):
    """Inline PTX cannot run under the interpreter: 'load' falls back to the atomic poll."""
    monkeypatch.setattr(forms, "triton_interpreter_enabled", lambda: True)
    monkeypatch.setenv(forms.BARRIER_POLL_ENV_VAR, "load")
    assert _barrier_meta(COOPERATIVE, "cooperative") == 0


def test_barrier_compiled_out_only_inside_its_block(compiled):
    with forms._barrier_compiled_out():
        assert _barrier_meta(COOPERATIVE, "cooperative") == forms.BARRIER_NO_WAIT
        assert _barrier_meta(PERSISTENT, "persistent") == 0
    assert _barrier_meta(COOPERATIVE, "cooperative") == 0


def test_arguments():
    args = probe.parse_args(["--out", "d"])
    assert (args.out, args.dry_run, args.budget, args.steps) == ("d", False, probe.BUDGET_S, None)
    assert args.sections == list(probe.SECTIONS)
    args = probe.parse_args(["--out", "d", "--dry-run", "--steps", "8", "--sections", "barrier"])
    assert (args.dry_run, args.steps, args.sections) == (True, 8, ["barrier"])
    for bad in (["--out", "d", "--steps", "0"], ["--out", "d", "--sections", "grid"], []):
        with pytest.raises(SystemExit) as exit_info:
            probe.parse_args(bad)
        assert exit_info.value.code == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_refuses_without_cuda(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert probe.main(["--out", str(tmp_path / "out")]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_refuses_the_interpreter_without_dry_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert probe.main(["--out", str(tmp_path)]) == 2
    assert "unset TRITON_INTERPRET" in capsys.readouterr().err


@pytest.mark.triton
def test_dry_run_through_the_command_line(tmp_path):
    """The command as the GPU session runs it, on the interpreter with two sections and T=2."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "fastrnn.kernels.probe", "--dry-run", "--out",
                           str(tmp_path), "--steps", "2", "--sections", "barrier", "forward"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    data = json.loads((tmp_path / probe.RESULT_FILE).read_text())
    assert [p.name for p in tmp_path.iterdir()] == [probe.RESULT_FILE]
    assert data["dry_run"] and data["steps"] == 2
    rows = data["rows"]
    assert [(r["section"], r["poll"]) for r in rows] == (
        [("barrier", "rmw"), ("barrier", "load")] + [("forward", p) for _ in probe.CELLS
                                                     for p in probe.POLLS])
    assert all(r["us_per_step"] > 0 and r["check"].startswith("ok") for r in rows)
    assert all("cooperative" in plan for r in rows[2:] for plan in r["plan"])
    assert time.monotonic() - start < 60
