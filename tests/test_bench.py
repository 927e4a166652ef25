"""Smoke tests of the benchmark harness (benchmarks/) on tiny shapes: result files and schema,
CSV and plots, the parity gate (a wrong provider fails it and gets no speedup), unavailable
providers, and the comparison of two runs."""

import csv
import itertools
import json
import time

import pytest
import torch
from torch import nn

from benchmarks import (
    cases,
    compare,
    compare_plot,
    parity,
    plots,
    providers,
    report,
    results,
    runner,
    schema,
    tasks_grid,
    timing,
)
from fastrnn.backends import BackendUnavailableError
from fastrnn.environment import collect

FAST = timing.Settings(threads=1, min_run_time=0.02, max_run_time=0.05, min_repeats=2)
MODES = ["fwd", "fwdbwd"]


class ShiftedState(nn.Module):
    """A wrong implementation: torch.nn's module fed a scaled initial state."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, input, hx):
        hx = tuple(1.1 * h for h in hx) if isinstance(hx, tuple) else 1.1 * hx
        return self.inner(input, hx)


def _wrong(case, device):
    module, params = providers.PROVIDERS["torch"](case, device)
    return ShiftedState(module), params


def _refused(case, device):
    raise BackendUnavailableError("backend 'missing' cannot run this call: test refusal")


def _result(rows, tasks=()):
    return results.build(command="pytest", device="cpu", grids=["cpu"], env=collect(),
                         rows=rows, tasks=list(tasks), providers=providers.DESCRIPTIONS,
                         settings={"threads": 1, "tf32": False, "parity_steps": 16})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny cpu-grid run with the real providers plus a wrong and a refusing one."""
    saved = dict(providers.PROVIDERS)
    providers.PROVIDERS.update(wrong=_wrong, missing=_refused)
    try:
        tiny = cases.select(cases.GRIDS["cpu"], tiny=True)
        rows = runner.run_grid(tiny, ["torch", "reference", "cells", "triton", "wrong",
                                      "missing"], MODES, "cpu", FAST, progress=False)
    finally:
        providers.PROVIDERS.clear()
        providers.PROVIDERS.update(saved)
    folder = tmp_path_factory.mktemp("bench")
    result = _result(rows)
    return result, results.write(result, folder / "run.json"), folder


def _rows(result, provider):
    return [r for r in result["rows"] if r["provider"] == provider]


def test_tiny_cpu_grid_covers_every_case_provider_and_mode(run):
    result, _, _ = run
    tiny = cases.select(cases.GRIDS["cpu"], tiny=True)
    assert len(result["rows"]) == len(tiny) * 6 * len(MODES)
    assert {r["cell"] for r in result["rows"]} == {"LSTM", "GRU", "RNN"}
    assert any(r["packed"] for r in result["rows"])


def test_reference_passes_parity_and_gets_a_speedup(run):
    result, _, _ = run
    for row in _rows(result, "reference") + _rows(result, "torch"):
        assert row["status"] == "ok", row
        assert row["parity"]["ok"] and row["parity"]["T"] <= parity.PARITY_STEPS
        assert row["p20_ms"] <= row["median_ms"] <= row["p80_ms"]
        assert row["tokens_per_s"] > 0 and row["us_per_step"] > 0
        assert row["peak_mem_bytes"] > 0  # CPU: the profiler's allocation records
        assert row["speedup_vs_torch"] is not None
    assert all(r["speedup_vs_torch"] == 1.0 for r in _rows(result, "torch"))


def test_wrong_provider_fails_the_gate_and_gets_no_speedup(run):
    result, _, _ = run
    wrong = _rows(result, "wrong")
    assert wrong and all(r["status"] == "parity_failed" for r in wrong)
    for row in wrong:
        assert row["median_ms"] is not None and row["speedup_vs_torch"] is None
        assert {"output", "grad_h0"} <= set(row["parity"]["failed"])
        assert row["reason"].startswith("parity failed")
    table = report.format_rows(result["rows"])
    assert "FAIL" in table
    wrong_lines = [line for line in table.splitlines() if " wrong " in line]
    assert wrong_lines and all(line.rstrip().endswith("-") for line in wrong_lines)


def test_unavailable_providers_are_recorded_with_their_reason(run):
    result, _, _ = run
    for row in _rows(result, "missing") + _rows(result, "triton"):
        assert row["status"] == "unavailable" and row["reason"]
        assert row["median_ms"] is None and row["speedup_vs_torch"] is None
    assert "test refusal" in _rows(result, "missing")[0]["reason"]
    packed_cells = [r for r in _rows(result, "cells") if r["packed"]]
    assert packed_cells and all(r["status"] == "unavailable" for r in packed_cells)


def test_result_file_validates_and_csv_is_written(run):
    result, written, _ = run
    assert results.load(written[0]) == json.loads(json.dumps(result))
    with open(written[1]) as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(result["rows"])
    assert set(table[0]) == set(results.ROW_COLUMNS)
    env = result["env"]
    assert set(schema.ENV_KEYS) <= set(env) and env["torch"] == torch.__version__


def test_schema_rejects_malformed_results(run):
    result, _, _ = run
    bad = json.loads(json.dumps(result))
    bad["rows"][0]["status"] = "fast"
    del bad["rows"][1]["median_ms"]
    bad["rows"][2]["tokens"] = 1.5
    found = schema.errors(bad)
    assert any("rows[0].status" in e for e in found)
    assert any("rows[1]: missing required key 'median_ms'" in e for e in found)
    assert any("rows[2].tokens" in e for e in found)
    with pytest.raises(ValueError, match="does not follow the schema"):
        schema.validate(bad)


def test_plots_are_valid_pngs(tmp_path):
    # Plots come from result files: a synthetic two-point sweep with one timed provider pair.
    rows = []
    for h in (8, 16):
        case = cases.Case("cpu", "LSTM", 4, 2, h, h, sweeps=("H",))
        for provider, ms in (("torch", 2.0), ("reference", 1.0)):
            row = runner._row(case, provider, "fwd", "cpu", "ok",
                              result=timing.Timing(ms * h, ms * h * 0.9, ms * h * 1.1, 5, "t",
                                                   None))
            rows.append(row)
    result = _result(runner.add_speedups(rows))
    schema.validate(result)
    paths = plots.plot_result(result, tmp_path, "synthetic")
    assert [p.name for p in paths] == ["synthetic-cpu-H.png"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [r["speedup_vs_torch"] for r in rows if r["provider"] == "reference"] == [2.0, 2.0]


def test_baseline_failing_parity_keeps_the_others_speedups():
    case = cases.Case("cpu", "LSTM", 4, 2, 8, 8)
    timed = timing.Timing(2.0, 1.8, 2.2, 5, "t", None)
    rows = runner.add_speedups([
        runner._row(case, "torch", "fwd", "cpu", "parity_failed", "parity failed: h_n",
                    result=timed),
        runner._row(case, "reference", "fwd", "cpu", "ok",
                    result=timing.Timing(1.0, 0.9, 1.1, 5, "t", None)),
        runner._row(case, "wrong", "fwd", "cpu", "parity_failed", "parity failed: output",
                    result=timing.Timing(0.5, 0.4, 0.6, 5, "t", None)),
    ])
    assert [r["speedup_vs_torch"] for r in rows] == [None, 2.0, None]


def test_cpu_timer_reports_quantiles_and_repeats():
    settings = timing.Settings(threads=1, min_run_time=0.1, max_run_time=0.2, min_repeats=3)
    timed = timing.time_cpu(lambda: torch.ones(64).sum(), settings)
    assert timed.repeats >= 3
    assert 0 < timed.p20_ms <= timed.median_ms <= timed.p80_ms
    assert timed.timer.startswith("torch.utils.benchmark.Timer")
    slow = timing.time_cpu(lambda: time.sleep(0.02), settings)  # a slow closure still gets 3
    assert slow.repeats >= 3 and 15 < slow.median_ms < 200


def test_cpu_rounds_alternate_between_closures_and_pool_their_blocks():
    """Each round visits every closure in turn (a burst of load falls on all of them), and each
    closure's quantiles come from its blocks of every round; a slow one gets a block per round."""
    order = []
    fast = lambda: order.append("fast")  # noqa: E731
    slow = lambda: order.append("slow") or time.sleep(0.02)  # noqa: E731
    settings = timing.Settings(min_run_time=0.03, max_run_time=0.03, min_repeats=1)
    fast_timing, slow_timing = timing.time_cpu_rounds([fast, slow], settings, rounds=3)
    assert slow_timing.repeats >= 3 and fast_timing.repeats >= 3
    assert 15 < slow_timing.median_ms < 200 and fast_timing.median_ms < 1
    # After the two warm-up calls: fast's calls of a round, then slow's, three times over.
    runs = [name for name, _ in itertools.groupby(order[2:])]
    assert runs[:6] == ["fast", "slow"] * 3


def test_cpu_peak_memory_is_the_most_tensor_memory_a_call_holds_at_once():
    """Two 4 MB tensors alive together, then freed, then one 8 MB one: 8 MB at most at once; what
    existed before the call is not counted."""
    before = torch.ones(4_000_000)

    def call():
        a, b = torch.ones(1_000_000), torch.ones(1_000_000)
        del a, b
        return torch.ones(2_000_000).sum() + before[0]

    peak = timing.cpu_peak_bytes(call)
    assert 8_000_000 <= peak < 8_100_000
    assert timing.time_cpu(call, timing.Settings(min_run_time=0.05)).peak_mem_bytes == peak


def test_interpreter_is_never_timed(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    case = cases.Case("cpu", "LSTM", 4, 2, 8, 8)
    with pytest.raises(providers.Unavailable, match="never timed"):
        providers.build("triton", case, "cpu")


def test_parity_shape_keeps_packed_lengths_in_range():
    case = cases.Case("cpu", "LSTM", 400, 32, 16, 16, packed=True)
    config = parity.parity_config(case, "cpu")
    assert config.T == parity.PARITY_STEPS and len(config.lengths) == 32
    assert max(config.lengths) == config.T and min(config.lengths) >= 1
    assert 100 < sum(case.lengths) / 32 < 300  # IMDB-like mean length before clipping effects


def test_imdb_task_is_unavailable_without_data_and_never_downloads(tmp_path):
    row = tasks_grid.run_one("sentiment", "torch", "cpu", "tiny", data_dir=str(tmp_path))
    assert row["status"] == "unavailable" and "never downloads" in row["reason"]
    assert row["seconds_per_epoch"] is None and row["speedup_vs_torch"] is None


def test_compare_reports_ratios(run, tmp_path):
    result, written, _ = run
    slower = json.loads(json.dumps(result))
    for row in slower["rows"]:
        if row["median_ms"] is not None:
            row.update(median_ms=2 * row["median_ms"], p20_ms=2 * row["p20_ms"],
                       p80_ms=2 * row["p80_ms"])
    changes = compare.compare(result, slower)
    assert changes and all(c["ratio"] == pytest.approx(2.0) for c in changes)
    # Every row twice as slow, torch included: the speedups, and so the changes, stay the same.
    assert all(c["change"] == pytest.approx(1.0) for c in changes if c["change"] is not None)
    text = compare.format_compare(result, slower, "old", "new", changes=changes)
    assert "torch's own time, new/old" in text and "fwd 2.00x" in text
    path = compare_plot.plot_compare(changes, tmp_path / "cmp.png", "old", "new")
    assert path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_rows_use_do_bench_and_record_memory():
    case = cases.select(cases.GRIDS["flashrnn"], cells=["LSTM"], tiny=True, limit=1)[0]
    rows = runner.run_grid([case], ["torch", "triton", "reference"], ["fwdbwd"], "cuda", FAST,
                           progress=False)
    torch_row = rows[0]
    assert torch_row["status"] == "ok", torch_row
    assert torch_row["timer"] == "triton.testing.do_bench"
    assert torch_row["peak_mem_bytes"] > 0
    assert torch_row["p20_ms"] <= torch_row["median_ms"] <= torch_row["p80_ms"]
    for row in rows[1:]:
        assert row["status"] in ("ok", "unavailable", "parity_failed"), row
