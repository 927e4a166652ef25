"""Plots of a run, drawn with matplotlib's Agg canvas (no display, no pyplot global state)."""

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _figure(width=6.4, height=4.0, **subplots):
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure, figure.subplots(**subplots)


def _save(figure, path):
    path = Path(path)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def curves(epochs, metric, path, title):
    """Training loss and validation metric per epoch. epochs: list of record rows."""
    figure, (left, right) = _figure(10, 4, ncols=2)
    x = [row["epoch"] for row in epochs]
    left.plot(x, [row["loss"] for row in epochs], marker=".")
    left.set(xlabel="epoch", ylabel="training loss", title=f"{title}: loss")
    right.plot(x, [row["metric"] for row in epochs], marker=".", color="tab:orange")
    right.set(xlabel="epoch", ylabel=metric, title=f"{title}: {metric}")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    return _save(figure, path)


def prediction_vs_truth(time_axis, truth, prediction, split_at, path):
    """Sine forecasting: one-step-ahead predictions against the noisy series; held-out tail shaded."""
    figure, axis = _figure(10, 4)
    axis.plot(time_axis, truth, ".", markersize=3, color="0.5", label="truth (noisy)")
    axis.plot(time_axis, prediction, color="tab:blue", label="prediction (one step ahead)")
    axis.axvspan(split_at, time_axis[-1], color="tab:orange", alpha=0.12, label="held-out tail")
    axis.set(xlabel="t", ylabel="value", title="sine: prediction vs truth")
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return _save(figure, path)


def attention_map(weights, motif_starts, motif_length, labels, path):
    """DNA attention: one row per example (positions on x), the planted motif outlined in red.

    weights: (N, T) attention weights. motif_starts: N ints, -1 where no motif was planted.
    """
    weights = np.asarray(weights)
    figure, axis = _figure(10, 0.6 * len(weights) + 1.5)
    image = axis.imshow(weights, aspect="auto", cmap="viridis", interpolation="nearest")
    for row, start in enumerate(motif_starts):
        if start >= 0:
            axis.add_patch(_rectangle(start - 0.5, row - 0.5, motif_length, 1.0))
    axis.set_yticks(range(len(weights)), [f"label {lbl}" for lbl in labels])
    axis.set(xlabel="position", title="dna: attention weights (red box: planted motif)")
    figure.colorbar(image, ax=axis, fraction=0.03)
    return _save(figure, path)


def _rectangle(x, y, width, height):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), width, height, fill=False, edgecolor="red", linewidth=2)


def states_heatmap(states, path, title):
    """One heatmap (units x time) per state in `states` ({name: (units, T) tensor or array})."""
    names = list(states)
    figure, axes = _figure(10, 2.2 * len(names) + 0.5, nrows=len(names), squeeze=False)
    for axis, name in zip(axes[:, 0], names):
        values = np.asarray(states[name], dtype=float)
        # Symmetric colour scale per panel: h lies in [-1, 1] but LSTM cell states do not.
        limit = max(float(np.abs(values).max()), 1e-6)
        image = axis.imshow(values, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit,
                            interpolation="nearest")
        axis.set(ylabel="unit", title=f"{title}: {name}")
        figure.colorbar(image, ax=axis, fraction=0.03)
    axes[-1, 0].set_xlabel("time step")
    return _save(figure, path)


def accuracy_vs_length(table, path, chance=None):
    """Memory task: accuracy against sequence length T, one line per cell type.

    table: {cell: {T: accuracy}}.
    """
    figure, axis = _figure()
    for cell, row in table.items():
        lengths = sorted(row, key=int)
        axis.plot([int(t) for t in lengths], [row[t] for t in lengths], marker="o", label=cell)
    if chance is not None:
        axis.axhline(chance, color="0.5", linestyle="--", label="chance")
    axis.set(xlabel="sequence length T", ylabel="val accuracy", ylim=(0, 1.02),
             title="memory: recall the first token after T-1 distractors")
    axis.grid(alpha=0.3)
    axis.legend()
    return _save(figure, path)


def sweep_results(rows, metric, path):
    """Sweep: final metric per configuration (bars) and metric vs time per epoch (scatter).

    rows: list of {'label': str, 'metric': float, 'seconds_per_epoch': float}.
    """
    figure, (left, right) = _figure(12, 4.5, ncols=2)
    labels = [row["label"] for row in rows]
    left.barh(range(len(rows)), [row["metric"] for row in rows], color="tab:blue")
    left.set_yticks(range(len(rows)), labels, fontsize=7)
    left.set(xlabel=metric, title="sweep: final metric per configuration")
    right.scatter([row["seconds_per_epoch"] for row in rows], [row["metric"] for row in rows])
    for row in rows:
        right.annotate(row["label"], (row["seconds_per_epoch"], row["metric"]), fontsize=6)
    right.set(xlabel="seconds per epoch", ylabel=metric, title="speed vs accuracy")
    right.grid(alpha=0.3)
    return _save(figure, path)
