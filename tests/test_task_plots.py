"""Task figures a person would rather look at: no label cut off, whole-number ticks for epochs,
positions and steps, the DNA attention map with its bases, sweep labels that fit."""

import numpy as np
import pytest
from figure_checks import problems

from benchmarks import figures
from fastrnn.tasks import plots as task_plots


@pytest.fixture
def saved(monkeypatch):
    """(figure, problems) of every figure the task plots save, checked as written."""
    seen = []
    original = task_plots._save

    def spy(figure, path):
        written = original(figure, path)  # lays the figure out, then writes it
        seen.append((figure, problems(figure)))
        return written

    monkeypatch.setattr(task_plots, "_save", spy)
    return seen


def test_task_plots_have_no_cut_labels(saved, tmp_path):
    rng = np.random.default_rng(0)
    epochs = [{"epoch": e, "loss": 1 / e, "metric": 1 - 1 / (e + 1)} for e in (1, 2, 3)]
    task_plots.curves(epochs, "val_accuracy", tmp_path / "curves.png", "majority")
    steps = np.arange(200)
    task_plots.prediction_vs_truth(steps, np.sin(steps / 9), np.sin(steps / 9), 150,
                                   tmp_path / "sine.png")
    task_plots.states_heatmap({"h": rng.normal(size=(16, 7))}, tmp_path / "states.png", "memory")
    task_plots.accuracy_vs_length({"lstm": {"10": 0.9, "20": 0.6}}, tmp_path / "memory.png",
                                  chance=0.25)
    rows = [{"label": f"hidden={h} lr={lr} layers=2 bidirectional=True", "metric": rng.random(),
             "seconds_per_epoch": rng.random() * 3} for h in (16, 64, 256) for lr in (1e-3, 3e-3)]
    task_plots.sweep_results(rows, "val_accuracy", tmp_path / "sweep.png")
    assert len(saved) == 5 and all(problems == [] for _, problems in saved), saved
    curves = saved[0][0]
    assert [t.get_text() for t in curves.axes[0].get_xticklabels()
            if t in set(figures.drawn_texts(curves))] == ["1", "2", "3"]
    sweep = saved[-1][0]
    # Bars ranked best first, each with its value; points numbered by that rank.
    top = max(sweep.axes[0].get_yticklabels(), key=lambda label: label.get_position()[1])
    assert top.get_text().startswith("1. ")
    assert len(sweep.axes[0].texts) == 6 and len(sweep.axes[1].texts) == 6


def test_dna_attention_map_shows_positions_and_bases(saved, tmp_path):
    weights = np.random.default_rng(0).random((4, 20))
    sequences = ["ACGTGATTACAGGCTTACGA", "TTTTGGGGCCCCAAAATTTT", "GATTA", "ACGTACGTACGTACGTACGT"]
    task_plots.attention_map(weights, [5, -1, 0, -1], 5, ["motif", "no motif", 1, 0],
                             tmp_path / "dna.png", sequences=sequences)
    (figure, problems), = saved
    assert problems == []
    axis = figure.axes[0]
    ticks = [t.get_text() for t in axis.get_xticklabels()]
    assert ticks == [str(i) for i in range(20)]
    bases = [t.get_text() for t in axis.texts]
    assert len(bases) == 20 + 20 + 5 + 20 and set(bases) == set("ACGT")
    assert [t.get_text() for t in axis.get_yticklabels()] == ["motif", "no motif", "label 1",
                                                               "label 0"]
    # Long sequences tick every 5th or 10th position, whole numbers still.
    task_plots.attention_map(np.ones((2, 120)) / 120, [-1, 3], 7, [0, 1], tmp_path / "long.png")
    long_ticks = [t.get_text() for t in saved[-1][0].axes[0].get_xticklabels()]
    assert long_ticks[:3] == ["0", "10", "20"] and saved[-1][1] == []
