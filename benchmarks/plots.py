"""Figures drawn only from result files (never from live timings), with matplotlib's Agg backend.

    sweep figures  one per (grid, sweep): per (cell, dtype, mode) two panels, time vs the swept
                   size on log axes with the p20-p80 band per provider, and speedup vs torch
    tasks figure   seconds per epoch per task and backend
    compare figure new/old time ratio per row of two runs
    headline figure µs per step vs H per provider (each kernel form, cuDNN fp16 and bf16), a panel
                   per (cell, dtype, mode): the figure of `fastrnn gpu-run`
"""

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)
from matplotlib.ticker import FuncFormatter, NullLocator  # noqa: E402

from benchmarks.cases import DTYPE_SHORT, MODES, provider_order  # noqa: E402

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
    figure, axes = plt.subplots(len(panels), len(modes), squeeze=False,
                                figsize=(5.2 * len(modes), 3.4 * len(panels)))
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
            axis.set_xscale("log", base=2)
            sizes = sorted({r["H"] for r in rows})
            axis.set_xticks(sizes, [str(h) for h in sizes])
            axis.xaxis.set_minor_locator(NullLocator())
            axis.set_yscale("log")
            axis.set_xlabel("H (= I)")
            axis.set_ylabel("µs per step (median)")
            axis.grid(True, which="both", alpha=0.3)
            axis.set_title(f"{cell} {dtype} {mode}", fontsize=9)
    handles = {}
    for axis in figure.axes:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    labels = sorted(handles, key=provider_order)
    figure.legend([handles[label] for label in labels], labels, loc="lower center",
                  ncol=min(6, len(labels)), fontsize=8)
    env = result["env"]
    where = env.get("gpu_name") or env.get("cpu_model") or result["device"]
    shape = ", ".join(f"{key}={'/'.join(map(str, sorted({r[key] for r in timed})))}"
                      for key in ("B", "T"))
    figure.suptitle(f"{result['grids'][0]}: {shape} ({where}; open marker: parity failed)",
                    fontsize=10)
    figure.tight_layout(rect=(0, 0.04, 1, 0.97))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path
