"""Hyperparameter sweeps: train every combination of the given values, tabulate and plot."""

import itertools
import json
import time
from pathlib import Path

from fastrnn.tasks import get_task, plots, train

# Sweepable settings: name -> type of one value.
AXES = {"rnn": str, "hidden": int, "layers": int, "lr": float, "dropout": float,
        "batch_size": int}


def parse_axis(name, text):
    """'32,64' -> [32, 64] with the axis's type; ValueError naming the axis otherwise."""
    try:
        values = [AXES[name](part.strip()) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise ValueError(f"--{name.replace('_', '-')}: {error}") from error
    if not values:
        raise ValueError(f"--{name.replace('_', '-')}: no values in {text!r}")
    return values


def grid(axes):
    """{name: [values]} -> list of {name: value}, every combination, in a stable order."""
    names = list(axes)
    return [dict(zip(names, combo)) for combo in itertools.product(*(axes[n] for n in names))]


def label(point):
    return " ".join(f"{k}={v}" for k, v in point.items()) or "defaults"


def run_sweep(task_name, axes, *, out=None, log=print, **fixed):
    """Train `task_name` for every point of the grid `axes`; other settings from `fixed`.

    Returns {'task', 'metric', 'higher_is_better', 'rows': [{label, settings, metric,
    val_metric, seconds_per_epoch, total_seconds}], 'best'}; writes sweep.json, sweep.md,
    sweep.png and each run's record under `out` when given. `best` is chosen on val_metric: the
    final metric itself for generated data, the best validation score for file runs (whose final
    metric is the test score, which must not choose).
    """
    task = get_task(task_name)
    points = grid(axes)
    rows = []
    for index, point in enumerate(points, 1):
        run_out = Path(out) / f"run{index:02d}" if out is not None else None
        start = time.perf_counter()
        record = train(task_name, out=run_out, quiet=True, **fixed, **point)
        epochs, final = record["epochs"], record["final"]
        tested = final["extras"].get("report", {}).get("split") == "test"
        rows.append({"label": label(point), "settings": point, "metric": final["value"],
                     "metric_name": final["metric"],
                     "val_metric": (final["extras"]["training"]["best_val"] if tested
                                    else final["value"]),
                     "seconds_per_epoch": sum(e["seconds"] for e in epochs) / len(epochs),
                     "total_seconds": time.perf_counter() - start})
        log(f"[{index}/{len(points)}] {label(point)}: {final['metric']} "
            f"{rows[-1]['metric']:.4f}, {rows[-1]['seconds_per_epoch']:.2f}s/epoch")
    pick = max if task.higher_is_better else min
    result = {"task": task_name, "metric": task.metric, "higher_is_better": task.higher_is_better,
              "fixed": {k: v for k, v in fixed.items() if v is not None}, "rows": rows,
              "best": pick(rows, key=lambda r: r["val_metric"])["label"]}
    if out is not None:
        out = Path(out)
        (out / "sweep.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / "sweep.md").write_text(table(result) + "\n")
        plots.sweep_results(rows, task.metric, out / "sweep.png",
                            higher_is_better=task.higher_is_better)
    return result


def table(result):
    """Markdown table of a sweep, best configuration marked; file runs show the validation score
    that chose and the test score beside it."""
    rows = result["rows"]
    tested = [r for r in rows if r.get("metric_name", result["metric"]) != result["metric"]]
    if tested:
        lines = [f"| configuration | best {result['metric']} | {tested[0]['metric_name']} | "
                 "s/epoch |", "|---|---|---|---|"]
    else:
        lines = [f"| configuration | {result['metric']} | s/epoch |", "|---|---|---|"]
    for row in rows:
        mark = " (best)" if row["label"] == result["best"] else ""
        scores = f"{row['val_metric']:.4f} | {row['metric']:.4f}" if tested else f"{row['metric']:.4f}"
        lines.append(f"| {row['label']}{mark} | {scores} | {row['seconds_per_epoch']:.2f} |")
    return "\n".join(lines)
