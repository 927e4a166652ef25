"""Benchmark figures a person would rather look at: no label cut off at a figure's edge, value
labels inside their panel, tick labels that do not touch, integer swept sizes, one legend; the
tasks chart on a linear time axis with the metric written on each bar.

The results are trimmed (one cell, one mode) to keep the tests fast: the layout code is the same
for every panel."""

import json
from pathlib import Path

import pytest
from bench_samples import gpu_result
from figure_checks import problems

from benchmarks import figures, plots, results

CPU_RESULT = Path(__file__).resolve().parent.parent / "benchmarks/results/cpu/2026-11-22-b51cc7f.json"


@pytest.fixture
def saved(monkeypatch):
    """(figure, problems) of every figure the benchmark plots save, checked after layout."""
    seen = []
    original = figures.save

    def spy(figure, path, *args, **kwargs):
        figure.tight_layout(rect=kwargs.get("rect", (0, 0, 1, 1)))
        seen.append((figure, problems(figure)))
        return original(figure, path, *args, **kwargs)

    monkeypatch.setattr(figures, "save", spy)
    return seen


def _trimmed(result, **keep):
    trimmed = json.loads(json.dumps(result))
    trimmed["rows"] = [r for r in trimmed["rows"] if all(r[k] in v for k, v in keep.items())]
    return trimmed


def test_cpu_sweep_and_tasks_figures(saved, tmp_path):
    result = _trimmed(results.load(CPU_RESULT), cell={"LSTM"}, mode={"fwdbwd"})
    paths = plots.plot_result(result, tmp_path, "cpu")
    assert [p.name for p in paths] == ["cpu-cpu-H.png", "cpu-tasks.png"]
    assert all(problems == [] for _, problems in saved), saved
    sweep, tasks = (figure for figure, _ in saved)
    # Swept sizes as plain integers, not powers of two.
    assert [t.get_text() for t in sweep.axes[0].get_xticklabels()] == ["64", "128", "256"]
    # Tasks: bar length is time on a linear axis; each bar says its time and final metric.
    axis = tasks.axes[0]
    assert axis.get_xscale() == "linear" and axis.get_xlim()[0] == 0
    labels = [t.get_text() for t in axis.texts]
    assert len(labels) == 12 and all(" s, " in text for text in labels)
    assert "0.0342 s, val_mse 0.0342" not in labels and any("val_mse 0.0342" in t for t in labels)
    assert any("not run: triton" in t.get_text() for t in tasks.texts)


def test_gpu_sweep_and_headline_figures(saved, tmp_path):
    result = _trimmed(gpu_result(), grid={"headline"}, cell={"LSTM"}, dtype={"bfloat16"},
                      mode={"fwdbwd"})
    result["tasks"] = []
    plots.plot_result(result, tmp_path, "gpu")
    plots.plot_headline(result, tmp_path / "headline.png")
    assert len(saved) == 2 and all(problems == [] for _, problems in saved), saved
    headline = saved[1][0]
    assert [t.get_text() for t in headline.axes[0].get_xticklabels()] == ["128", "256", "512",
                                                                          "768"]
