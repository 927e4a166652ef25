"""The printed benchmark report: 120 columns at most, a legend, fixed number formats, unavailable
providers collapsed into one line with the full reason, no empty columns, a closing summary.

Two representative results: the committed CPU run (triton unavailable everywhere, the cell loop
unavailable on packed cases, tasks) and a synthetic GPU-shaped run (tests/bench_samples.py)."""

import json
import re
from pathlib import Path

import pytest
from bench_samples import gpu_result

from benchmarks import formats, report, results
from benchmarks.table import Column, render

CPU_RESULT = Path(__file__).resolve().parent.parent / "benchmarks/results/cpu/2026-11-22-b51cc7f.json"


@pytest.fixture(scope="module")
def cpu():
    return results.load(CPU_RESULT)


@pytest.fixture(scope="module")
def gpu():
    return gpu_result()


def _joined(text):
    """The report with wrapped lines joined again and spaces squeezed, to find a sentence whole."""
    return " ".join(text.split())


def _table_header(text):
    return next(line for line in text.splitlines() if line.strip().startswith("mode"))


@pytest.mark.parametrize("name", ["cpu", "gpu"])
def test_report_fits_120_columns(name, request):
    text = report.format_result(request.getfixturevalue(name))
    assert max(len(line) for line in text.splitlines()) <= 120


def test_cpu_report_has_legend_summary_and_collapsed_refusals(cpu):
    text = report.format_result(cpu)
    joined = _joined(text)
    # The legend explains the columns a new reader asks about.
    assert "Columns:" in text
    assert "vs torch torch.nn's median / this median, same dtype (> 1: faster than torch)" in joined
    assert "worst relative RMS error" in joined and "cut to T=16 steps" in joined
    # triton: one line for every case and every task, with the whole reason, and no table row.
    reason = next(r["reason"] for r in cpu["rows"] if r["provider"] == "triton")
    assert f"- triton: unavailable in every case and every task: {reason}" in joined
    assert joined.count("- triton: unavailable") == 1
    assert not re.search(r"^ +(infer|fwd|fwdbwd) +triton ", text, re.MULTILINE)
    assert "- cells: unavailable in cpu:GRU-T400" in joined and "takes no packed input" in joined
    # The summary: geometric means per provider and mode, and the worst parity.
    summary = text[text.index("Summary"):]
    assert "geometric mean per provider and mode" in summary
    assert any(line.startswith("reference ") and line.count("x (10)") == 3
               for line in summary.splitlines())
    assert "Worst parity:" in summary and "tolerance 1e-05 for float32" in _joined(summary)
    assert "final metric within 1% of torch's in 6 of 6" in _joined(summary)


def test_empty_columns_are_dropped(cpu, gpu):
    cpu_header = _table_header(report.format_rows(cpu["rows"]))
    assert "peak MiB" not in cpu_header and "vs fp16" not in cpu_header
    assert "form" not in cpu_header.split()
    gpu_header = _table_header(report.format_rows(gpu["rows"]))
    for column in ("peak MiB", "vs fp16", "vs bf16", "form"):
        assert column in gpu_header


def test_gpu_report_marks_failures_and_collapses_size_dependent_refusals(gpu):
    text = report.format_result(gpu)
    failing = [line for line in text.splitlines() if "FAIL 8e-02" in line]
    assert failing and all(" -" in line.split("FAIL 8e-02")[1][:10] for line in failing)
    notes = text[text.index("Not timed:"):text.index("Summary")].splitlines()[1:]
    starts = [line for line in notes if line.startswith("- ")]
    # One line for the out-of-memory refusals of every size, one for the error, one for cells.
    assert len(starts) == 3
    assert any("triton-cooperative: unavailable in" in s and "out of memory" in s for s in starts)
    assert any(s.startswith("- reference: error in") for s in starts)
    # A forced form that ran another says so; one that ran as forced leaves the column empty.
    assert any("triton-persistent" in line and line.endswith("stepwise")
               for line in text.splitlines())
    assert "Parity FAILED: triton-stepwise" in text


def test_number_formats_are_fixed():
    assert [formats.sig3(v) for v in (0.012345, 6.184, 20.058, 99.96, 238.9, 1017.04)] == [
        "0.0123", "6.18", "20.1", "100", "239", "1017"]
    assert [formats.si(v) for v in (950, 5880, 371_330, 1_034_567)] == ["950", "5.88k", "371k",
                                                                         "1.03M"]
    assert [formats.speedup(v) for v in (1.0, 0.324, 12.4, 0.00362, None)] == [
        "1.00x", "0.32x", "12.40x", "0.00362x", "-"]
    assert formats.error(6.36e-07) == "6e-07" and formats.share(0.071) == "7%"
    assert formats.geomean([2.0, 0.5]) == pytest.approx(1.0) and formats.geomean([]) is None


def test_table_drops_empty_columns_and_wraps_the_last_one():
    columns = [Column("name", lambda r: r["name"], "<"), Column("n", lambda r: r["n"]),
               Column("empty", lambda r: "-"), Column("form", lambda r: r["form"], "<")]
    rows = [{"name": "a", "n": "1.0", "form": "persistent+stepwise+cooperative"}]
    lines, kept = render(columns, ["group", *rows], width=30)
    assert [c.header for c in kept] == ["name", "n", "form"]
    assert max(len(line) for line in lines) <= 30
    assert [line.strip() for line in lines[3:]] == ["a    1.0 persistent+", "stepwise+",
                                                    "cooperative"]


def test_all_unavailable_run_prints_one_line(cpu):
    rows = json.loads(json.dumps(cpu["rows"]))
    for row in rows:
        row.update(status="unavailable", reason="no CUDA device in this process", median_ms=None)
    text = report.format_rows(rows)
    assert text.splitlines() == ["Not timed:", "- torch, reference, triton, cells: unavailable in "
                                 "every case: no CUDA device in this process"]
