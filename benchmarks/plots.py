"""Figures drawn only from result files (never from live timings), with matplotlib's Agg backend.

    sweep figures  one per (grid, sweep): per (cell, dtype, mode) two panels, time vs the swept
                   size on log axes with the p20-p80 band per provider, and speedup vs torch
    tasks figure   seconds per epoch per task and backend
    compare figure new/old time ratio per row of two runs
"""

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)
from matplotlib.ticker import FuncFormatter  # noqa: E402

from benchmarks.cases import MODES, PROVIDERS  # noqa: E402

_COLORS = {"torch": "tab:blue", "reference": "tab:green", "triton": "tab:red", "cells": "tab:gray"}


def _slug(text):
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")


def _swept_variable(sweep):
    """'B@H512' -> 'B': a sweep is named by its variable, optionally '@' the fixed context."""
    return sweep.split("@")[0]


def _sweep_groups(rows):
    """{(grid, sweep): {(cell, dtype, mode): [rows]}} for timed rows that belong to a sweep."""
    groups = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["median_ms"] is None:
            continue
        for sweep in row["sweeps"]:
            groups[(row["grid"], sweep)][(row["cell"], row["dtype"], row["mode"])].append(row)
    return groups


def _draw_panel(time_axis, speed_axis, rows, variable):
    providers = sorted({r["provider"] for r in rows},
                       key=lambda p: PROVIDERS.index(p) if p in PROVIDERS else 99)
    for provider in providers:
        points = sorted(((r[variable], r) for r in rows if r["provider"] == provider),
                        key=lambda point: point[0])
        xs = [x for x, _ in points]
        color = _COLORS.get(provider)
        time_axis.plot(xs, [r["median_ms"] for _, r in points], "o-", label=provider,
                       color=color)
        time_axis.fill_between(xs, [r["p20_ms"] for _, r in points],
                               [r["p80_ms"] for _, r in points], alpha=0.2, color=color)
        speed = [(x, r["speedup_vs_torch"]) for x, r in points if r["speedup_vs_torch"]]
        if speed and provider != "torch":
            speed_axis.plot(*zip(*speed), "o-", label=provider, color=color)
    time_axis.set_yscale("log")
    time_axis.set_ylabel("median ms (p20-p80 band)")
    speed_axis.set_yscale("log")
    # Plain '0.8x' labels on the log axis instead of matplotlib's '8x10^-1'.
    label = FuncFormatter(lambda value, _: f"{value:.3g}x")
    speed_axis.yaxis.set_major_formatter(label)
    speed_axis.yaxis.set_minor_formatter(label)
    speed_axis.axhline(1.0, color=_COLORS["torch"], linestyle="--", linewidth=1)
    speed_axis.set_ylabel("speedup vs torch")
    for axis in (time_axis, speed_axis):
        axis.set_xscale("log", base=2)
        axis.set_xlabel(variable)
        axis.grid(True, which="both", alpha=0.3)


def plot_sweeps(result, out_dir, stem):
    """One PNG per (grid, sweep) of `result`; returns the paths written.

    Layout: a column per mode; per (cell, dtype) two rows, time vs the swept size and speedup.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for (grid, sweep), series in sorted(_sweep_groups(result["rows"]).items()):
        variable = _swept_variable(sweep)
        panels = sorted({(cell, dtype) for cell, dtype, _ in series})
        modes = [m for m in MODES if any(key[2] == m for key in series)]
        figure, axes = plt.subplots(2 * len(panels), len(modes), squeeze=False,
                                    figsize=(4.6 * len(modes), 3.0 * 2 * len(panels)))
        for index, (cell, dtype) in enumerate(panels):
            for column, mode in enumerate(modes):
                time_axis, speed_axis = axes[2 * index][column], axes[2 * index + 1][column]
                rows = series.get((cell, dtype, mode), [])
                if not rows:
                    time_axis.set_visible(False)
                    speed_axis.set_visible(False)
                    continue
                _draw_panel(time_axis, speed_axis, rows, variable)
                device = rows[0]["device"]
                time_axis.set_title(f"{cell} {dtype} {mode} on {device}", fontsize=9)
                speed_axis.set_title(f"{cell} {dtype} {mode}: speedup vs torch", fontsize=9)
                if column == 0:
                    time_axis.legend(fontsize=7)
        where = result["env"]["gpu_name"] or result["env"]["cpu_model"] or "CPU"
        figure.suptitle(f"{grid} grid, sweep {sweep} ({where})", fontsize=11)
        figure.tight_layout(rect=(0, 0, 1, 0.98))
        path = out_dir / f"{stem}-{_slug(grid)}-{_slug(sweep)}.png"
        figure.savefig(path, dpi=80)
        plt.close(figure)
        paths.append(path)
    return paths


def plot_tasks(result, out_dir, stem):
    """Grouped bars of seconds per epoch per task and backend; None when no task was timed."""
    timed = [r for r in result["tasks"] if r["seconds_per_epoch"] is not None]
    if not timed:
        return None
    tasks = list(dict.fromkeys(r["task"] for r in timed))
    backends = list(dict.fromkeys(r["backend"] for r in timed))
    figure, axis = plt.subplots(figsize=(9, 0.6 + 0.5 * len(tasks) * len(backends)))
    height = 0.8 / len(backends)
    for index, backend in enumerate(backends):
        by_task = {r["task"]: r["seconds_per_epoch"] for r in timed if r["backend"] == backend}
        ys = [t + index * height for t in range(len(tasks)) if tasks[t] in by_task]
        axis.barh(ys, [by_task[t] for t in tasks if t in by_task], height=height, label=backend,
                  color=_COLORS.get(backend))
    axis.set_yticks([t + 0.4 - height / 2 for t in range(len(tasks))], tasks)
    axis.set_xscale("log")
    axis.set_xlabel("seconds per epoch (median)")
    axis.legend(fontsize=8)
    axis.set_title(f"tasks ({timed[0]['size']} size) on {timed[0]['device']}", fontsize=10)
    figure.tight_layout()
    path = Path(out_dir) / f"{stem}-tasks.png"
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def plot_result(result, out_dir, stem):
    """Every figure of a result file; returns the paths written."""
    paths = plot_sweeps(result, out_dir, stem)
    tasks = plot_tasks(result, out_dir, stem)
    return paths + ([tasks] if tasks else [])


def plot_compare(changes, path, old_label, new_label):
    """Horizontal bars of new/old per common row (log axis, 1 = unchanged); returns the path."""
    changes = sorted(changes, key=lambda c: c["ratio"])
    labels = [" ".join(str(part) for part in c["key"]) for c in changes]
    figure, axis = plt.subplots(figsize=(10, 1 + 0.25 * max(len(changes), 1)))
    colors = ["tab:green" if c["ratio"] < 1 else "tab:red" for c in changes]
    axis.barh(range(len(changes)), [c["ratio"] for c in changes], color=colors)
    axis.set_yticks(range(len(changes)), labels, fontsize=6)
    axis.set_xscale("log")
    axis.axvline(1.0, color="black", linewidth=1)
    axis.set_xlabel("new / old median time (< 1: faster)")
    axis.set_title(f"{new_label} vs {old_label}", fontsize=9)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
