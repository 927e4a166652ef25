"""Figures drawn only from result files (never from live timings).

    sweep figures  one per (grid, sweep): per (cell, dtype, mode) two panels, time vs the swept
                   size on log axes with the p20-p80 band per provider, and speedup vs torch
    tasks figure   seconds per epoch per task and backend on a linear axis, each bar labelled with
                   its time and the task's final metric
    headline figure µs per step vs H per provider (each kernel form, cuDNN fp16 and bf16), a panel
                   per (cell, dtype, mode): the figure of `fastrnn gpu-run`

The comparison of two runs is drawn by compare_plot.py; saving and tick labels are figures.py's.
"""

import math
from collections import defaultdict
from pathlib import Path

from benchmarks import figures
from benchmarks.cases import DTYPE_SHORT, MODES, provider_order
from benchmarks.figures import plt

_COLORS = {"torch": "tab:blue", "reference": "tab:green", "triton": "tab:red", "cells": "tab:gray",
           "torch-fp16": "tab:cyan", "torch-bf16": "tab:purple", "torch-fp32": "tab:olive"}
# triton-<form> providers, in the order they are met (the forms change with the kernels).
_FORM_COLORS = ("tab:orange", "tab:brown", "tab:pink", "gold", "black")


def _color(provider, order=()):
    """A fixed color per provider; triton-<form> ones by their place among `order`."""
    if provider in _COLORS:
        return _COLORS[provider]
    forms = [p for p in order if p.startswith("triton-")]
    if provider in forms:
        return _FORM_COLORS[forms.index(provider) % len(_FORM_COLORS)]
    return None


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
    providers = sorted({r["provider"] for r in rows}, key=provider_order)
    for provider in providers:
        points = sorted(((r[variable], r) for r in rows if r["provider"] == provider),
                        key=lambda point: point[0])
        xs = [x for x, _ in points]
        color = _color(provider, providers)
        time_axis.plot(xs, [r["median_ms"] for _, r in points], "o-", label=provider,
                       color=color)
        time_axis.fill_between(xs, [r["p20_ms"] for _, r in points],
                               [r["p80_ms"] for _, r in points], alpha=0.2, color=color)
        speed = [(x, r["speedup_vs_torch"]) for x, r in points if r["speedup_vs_torch"]]
        if speed and provider != "torch":
            speed_axis.plot(*zip(*speed), "o-", label=provider, color=color)
    time_axis.set_yscale("log")
    figures.plain_log_axis(time_axis)
    time_axis.set_ylabel("median ms (p20-p80 band)")
    speed_axis.set_yscale("log")
    figures.plain_log_axis(speed_axis)
    speed_axis.axhline(1.0, color=_COLORS["torch"], linestyle="--", linewidth=1)
    speed_axis.set_ylabel("speedup vs torch (x)")
    for axis in (time_axis, speed_axis):
        figures.swept_ticks(axis, [r[variable] for r in rows])
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
        width, height = max(4.6 * len(modes), 5.0), 3.0 * 2 * len(panels) + 1.0
        figure, axes = plt.subplots(2 * len(panels), len(modes), squeeze=False,
                                    figsize=(width, height))
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
        # One legend under all panels: inside a panel, eight providers would hide the lines.
        legend_inches = _legend_below(figure, width)
        figure.suptitle(f"{grid} grid, sweep {sweep} ({_where(result)})", fontsize=11)
        path = out_dir / f"{stem}-{_slug(grid)}-{_slug(sweep)}.png"
        paths.append(figures.save(figure, path, dpi=80,
                                  rect=(0, legend_inches / height, 1, 1 - 0.4 / height)))
    return paths


def _legend_below(figure, width):
    """A legend of every provider drawn in `figure`, centred under the panels, in as many columns
    as fit `width` inches; returns the height in inches it takes."""
    handles = {}
    for axis in figure.axes:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    labels = sorted(handles, key=provider_order)
    if not labels:
        return 0.0
    # An entry of the longest provider name takes about 1.7 inches at 8 points.
    columns = min(len(labels), max(1, int(width // 1.7)))
    figure.legend([handles[label] for label in labels], labels, loc="lower center",
                  ncol=columns, fontsize=8)
    return 0.15 + 0.22 * math.ceil(len(labels) / columns)


def _task_label(row):
    """'0.033 s, val_accuracy 0.879': the bar's time and the model it trained."""
    text = f"{row['seconds_per_epoch']:.3g} s"
    if row["final_metric"] is not None:
        text += f", {row['metric']} {row['final_metric']:.3g}"
    return text


def plot_tasks(result, out_dir, stem):
    """Grouped bars of seconds per epoch per task and backend on a linear axis (a bar's length is
    its time), each labelled with the time and the final metric; backends that did not run are
    named under the chart. None when no task was timed."""
    timed = [r for r in result["tasks"] if r["seconds_per_epoch"] is not None]
    if not timed:
        return None
    tasks = list(dict.fromkeys(r["task"] for r in timed))
    backends = list(dict.fromkeys(r["backend"] for r in timed))
    figure, axis = plt.subplots(figsize=(9, 1.4 + 0.42 * len(tasks) * len(backends)))
    height = 0.8 / len(backends)
    labels = []
    for index, backend in enumerate(backends):
        rows = {r["task"]: r for r in timed if r["backend"] == backend}
        # The first backend on top within each task, tasks top to bottom in run order.
        ys = {t: len(tasks) - 1 - tasks.index(t) + 0.4 - (index + 0.5) * height for t in rows}
        axis.barh([ys[t] for t in rows], [r["seconds_per_epoch"] for r in rows.values()],
                  height=height * 0.92, label=backend, color=_color(backend, backends))
        labels += [axis.annotate(_task_label(r), (r["seconds_per_epoch"], ys[t]),
                                 xytext=(4, 0), textcoords="offset points", va="center",
                                 fontsize=7.5) for t, r in rows.items()]
    axis.set_yticks([len(tasks) - 1 - i for i in range(len(tasks))], tasks)
    axis.set_xlim(0, max(r["seconds_per_epoch"] for r in timed) * 1.05)
    axis.set_xlabel("seconds per epoch (median of the epochs after the first)")
    axis.grid(True, axis="x", alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    axis.set_title(f"tasks ({timed[0]['size']} preset) on {_where(result)}", fontsize=10)
    missing = sorted({r["backend"] for r in result["tasks"] if r["seconds_per_epoch"] is None}
                     - set(backends))
    bottom = 0.0
    if missing:
        figure.text(0.01, 0.01, f"not run: {', '.join(missing)} (see the report for why)",
                    fontsize=8, color="0.35")
        bottom = 0.5 / figure.get_figheight()
    figure.tight_layout(rect=(0, bottom, 1, 1))
    figures.room_for(axis, labels)
    return figures.save(figure, Path(out_dir) / f"{stem}-tasks.png", rect=(0, bottom, 1, 1))


def _where(result):
    env = result["env"]
    return env.get("gpu_name") or env.get("cpu_model") or result["device"]


def plot_result(result, out_dir, stem):
    """Every figure of a result file; returns the paths written."""
    paths = plot_sweeps(result, out_dir, stem)
    tasks = plot_tasks(result, out_dir, stem)
    return paths + ([tasks] if tasks else [])


def plot_headline(result, path):
    """µs per step vs H, one line per provider (torch.nn baselines dashed), log axes; a panel per
    (cell, dtype, mode) of the timed rows; a row that failed parity is drawn with an open marker.
    Returns the path, or None when no row was timed."""
    timed = [r for r in result["rows"] if r["us_per_step"] is not None]
    if not timed:
        return None
    panels = sorted({(r["cell"], r["dtype"]) for r in timed})
    modes = [m for m in MODES if any(r["mode"] == m for r in timed)]
    order = sorted({r["provider"] for r in timed}, key=provider_order)
    # At least 8 inches wide: the shared legend and the title must fit even over one panel.
    width, height = max(5.2 * len(modes), 8.0), 3.4 * len(panels) + 0.9
    figure, axes = plt.subplots(len(panels), len(modes), squeeze=False, figsize=(width, height))
    for index, (cell, dtype) in enumerate(panels):
        for column, mode in enumerate(modes):
            axis = axes[index][column]
            rows = [r for r in timed if (r["cell"], r["dtype"], r["mode"]) == (cell, dtype, mode)]
            for provider in order:
                points = sorted((r["H"], r) for r in rows if r["provider"] == provider)
                if not points:
                    continue
                style = "--" if provider.startswith("torch") else "-"
                # `torch` runs the case's own dtype: drawn and named as the torch-<dtype> baseline,
                # so a color means the same cuDNN precision in every panel.
                label = f"torch-{DTYPE_SHORT[dtype]}" if provider == "torch" else provider
                color = _color(label, order)
                axis.plot([h for h, _ in points], [r["us_per_step"] for _, r in points], style,
                          color=color, label=label)
                for h, r in points:
                    ok = r["status"] == "ok"
                    axis.plot([h], [r["us_per_step"]], "o", color=color,
                              markerfacecolor=color if ok else "none")
            figures.swept_ticks(axis, [r["H"] for r in rows] or [r["H"] for r in timed])
            axis.set_yscale("log")
            figures.plain_log_axis(axis)
            axis.set_xlabel("H (= I)")
            axis.set_ylabel("µs per step (median)")
            axis.grid(True, which="both", alpha=0.3)
            axis.set_title(f"{cell} {dtype} {mode}", fontsize=9)
    legend_inches = _legend_below(figure, width)
    shape = ", ".join(f"{key}={'/'.join(map(str, sorted({r[key] for r in timed})))}"
                      for key in ("B", "T"))
    figure.suptitle(f"{result['grids'][0]}: {shape} on {_where(result)}\n"
                    f"open marker: parity failed; dashed: torch.nn", fontsize=10)
    return figures.save(figure, path, dpi=80,
                        rect=(0, legend_inches / height, 1, 1 - 0.55 / height))
