"""`fastrnn bench --compare`: warnings where the runs differ in device, threads or load; rows
compared by their speedup vs torch, not raw time; a plot of the largest changes only."""

import json
import math
from pathlib import Path

import pytest
from bench_samples import gpu_result
from figure_checks import problems

from benchmarks import compare, compare_plot, figures, results

CPU_RESULT = Path(__file__).resolve().parent.parent / "benchmarks/results/cpu/2026-11-22-b51cc7f.json"


@pytest.fixture(scope="module")
def old():
    return results.load(CPU_RESULT)


def _copy(result):
    return json.loads(json.dumps(result))


def _slower_machine(result, factor):
    """The same run on a machine `factor` times slower: every row's time scaled, speedups kept."""
    new = _copy(result)
    for row in new["rows"]:
        if row["median_ms"] is not None:
            row.update(median_ms=factor * row["median_ms"], p20_ms=factor * row["p20_ms"],
                       p80_ms=factor * row["p80_ms"])
    for row in new["tasks"]:
        if row["seconds_per_epoch"] is not None:
            row["seconds_per_epoch"] *= factor
    return new


def test_identical_runs_warn_about_nothing(old):
    assert compare.warnings(old, _copy(old)) == []
    text = compare.format_compare(old, _copy(old), "a.json", "b.json")
    assert "WARNING" not in text and "0 of 60 rows gained" in text


@pytest.mark.parametrize("what, change, expected", [
    ("device", lambda r: r["env"].update(cpu_model="Intel Xeon"),
     "device: cpu AMD EPYC, 2 cores vs cpu Intel Xeon, 2 cores"),
    ("threads", lambda r: r["settings"].update(threads=2), "threads: 1 vs 2"),
    ("load", lambda r: r["env"].update(load_average_1min=5.0), "load: 0.47 vs 2.50 per core"),
])
def test_differing_device_threads_or_load_warn(old, what, change, expected):
    new = _copy(old)
    change(new)
    found = compare.warnings(old, new)
    assert len(found) == 1 and found[0].startswith(expected), found
    text = compare.format_compare(old, new, "old.json", "new.json")
    assert "WARNING: the runs differ in what they ran on; raw times are not comparable" in text
    assert expected in text


def test_a_slower_machine_changes_no_speedup(old):
    """The new user's case: a 2.8x slower machine is not a 2.8x slower fastrnn."""
    new = _slower_machine(old, 2.8)
    new["env"].update(cpu_model="Intel Xeon", load_average_1min=4.0)
    changes = compare.compare(old, new)
    scored = [c for c in changes if c["change"] is not None and not compare.is_baseline(c)]
    assert len(scored) == 60 and all(c["change"] == pytest.approx(1.0) for c in scored)
    text = compare.format_compare(old, new, "old.json", "new.json", changes=changes)
    assert "infer 2.80x, fwd 2.80x, fwdbwd 2.80x, tasks 2.80x" in " ".join(text.split())
    assert "0 of 60 rows gained more than 5%, 0 lost more than 5%." in text
    assert max(len(line) for line in text.splitlines()) <= 120


def test_changed_speedups_are_reported_per_provider(old):
    new = _copy(old)
    for row in new["rows"]:
        if row["provider"] == "reference" and row["mode"] == "fwdbwd":
            row["median_ms"] /= 2
            row["speedup_vs_torch"] *= 2
    text = compare.format_compare(old, new, "old.json", "new.json")
    summary = text[text.index("Change of the speedup"):].splitlines()
    reference = next(line for line in summary if line.startswith("reference"))
    assert reference.split()[1:7] == ["1.00x", "(10)", "1.00x", "(10)", "2.00x", "(10)"]
    assert "10 of 60 rows gained more than 5%, 0 lost" in text


def _saved_figures(monkeypatch):
    """Collect (figure, problems) of every figure saved, checked as laid out for saving."""
    seen = []
    original = figures.save

    def spy(figure, path, *args, **kwargs):
        figure.tight_layout(rect=kwargs.get("rect", (0, 0, 1, 1)))
        seen.append((figure, problems(figure)))
        return original(figure, path, *args, **kwargs)

    monkeypatch.setattr(figures, "save", spy)
    return seen


def test_compare_plot_shows_the_largest_changes_readably(monkeypatch, tmp_path):
    old = gpu_result(seed=0)
    new = gpu_result(seed=1)
    new["settings"]["threads"] = 4
    seen = _saved_figures(monkeypatch)
    changes = compare.compare(old, new)
    scored = [c for c in changes if c["change"] is not None and not compare.is_baseline(c)]
    assert len(scored) > 300
    path = compare_plot.plot_compare(changes, tmp_path / "cmp.png", "old", "new",
                                     warnings=compare.warnings(old, new))
    assert path.read_bytes()[:4] == b"\x89PNG"
    (figure, found), = seen
    assert found == []
    axis = figure.axes[0]
    labels = [t.get_text() for t in axis.get_yticklabels()]
    assert len(labels) == compare_plot.LIMIT
    biggest = max(scored, key=lambda c: abs(math.log(c["change"])))
    assert compare_plot._label(biggest) in labels
    assert "the 20 largest of" in axis.get_title() and "threads" in axis.get_title()

