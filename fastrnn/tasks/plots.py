"""Plots of a run, drawn with matplotlib's Agg canvas (no display, no pyplot global state)."""

from pathlib import Path

import numpy as np

from fastrnn.tasks.deps import require


def available():
    """Raise MissingDependency (naming the extra to install) unless matplotlib can be imported.

    Called before training, so a run that would end by drawing its figures fails at once."""
    require("matplotlib", "the plots")


def _figure(width=6.4, height=4.0, **subplots):
    require("matplotlib", "the plots")
    # Imported here, not at module level: the tasks train without matplotlib when nothing is drawn.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

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
        _integer_ticks(axis.xaxis)  # a 3-epoch run would otherwise get ticks at 1.5 and 2.5
    return _save(figure, path)


def _integer_ticks(axis):
    """Ticks only at whole numbers (epochs, positions, time steps, lengths)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def prediction_vs_truth(time_axis, truth, prediction, split_at, path,
                        title="sine: prediction vs truth"):
    """Forecasting: one-step-ahead predictions against the series; the held-out part shaded."""
    figure, axis = _figure(10, 4)
    axis.plot(time_axis, truth, ".", markersize=3, color="0.5", label="truth")
    axis.plot(time_axis, prediction, color="tab:blue", label="prediction (one step ahead)")
    axis.axvspan(split_at, time_axis[-1], color="tab:orange", alpha=0.12, label="held out")
    axis.set(xlabel="t", ylabel="value", title=title)
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return _save(figure, path)


def attention_map(weights, motif_starts, motif_length, labels, path, sequences=None):
    """DNA attention: one row per example (positions on x), the planted motif outlined in red.

    weights: (N, T) attention weights. motif_starts: N ints, -1 where no motif was planted.
    labels: N class names (or ints). sequences: optional N strings of bases, written in the cells
    (a string shorter than T leaves the padded tail blank).
    """
    weights = np.asarray(weights)
    count, length = weights.shape
    # About a fifth of an inch per position holds a base letter; wide maps get a larger figure.
    figure, axis = _figure(min(max(7.0, 0.2 * length + 2.5), 24.0), 0.55 * count + 1.6)
    image = axis.imshow(weights, aspect="auto", cmap="viridis", interpolation="nearest")
    for row, start in enumerate(motif_starts):
        if start >= 0 and motif_length:
            axis.add_patch(_rectangle(start - 0.5, row - 0.5, motif_length, 1.0))
    if sequences is not None:
        _write_bases(axis, image, weights, sequences)
    step = _position_step(length)
    axis.set_xticks(range(0, length, step))
    axis.set_xticks(range(length), minor=True)
    axis.tick_params(axis="x", which="minor", length=2)
    axis.set_yticks(range(count), [_class_name(label) for label in labels])
    axis.set(xlabel="position (0 = first base)",
             title="dna: attention weight per position"
                   + (" (red box: planted motif)" if motif_length else ""))
    figure.colorbar(image, ax=axis, fraction=0.03, label="attention weight")
    return _save(figure, path)


def _position_step(length):
    """Tick every position on short maps, every 5th or 10th... on longer ones (integers only)."""
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500):
        if length / step <= 20:
            return step
    return 1000


def _class_name(label):
    return label if isinstance(label, str) else f"label {label}"


def _write_bases(axis, image, weights, sequences):
    """Each base in its cell, dark on light cells and light on dark ones, sized to the cell."""
    count, length = weights.shape
    width, _ = axis.figure.get_size_inches()
    size = max(4.0, min(9.0, 0.6 * 72 * (width - 2.5) / length))
    for row, bases in enumerate(sequences):
        for column, base in enumerate(str(bases)[:length]):
            dark = image.norm(weights[row, column]) < 0.6  # viridis is dark below ~0.6
            axis.text(column, row, base, ha="center", va="center", fontsize=size,
                      family="monospace", color="white" if dark else "black")


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
        _integer_ticks(axis.xaxis)
        _integer_ticks(axis.yaxis)
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
    _integer_ticks(axis.xaxis)
    axis.legend()
    return _save(figure, path)


def sweep_results(rows, metric, path, higher_is_better=True):
    """Sweep: final metric per configuration (bars, best on top, values written) and metric vs
    seconds per epoch (scatter, points numbered as the bars).

    rows: list of {'label': str, 'metric': float, 'seconds_per_epoch': float}.
    """
    order = sorted(range(len(rows)), key=lambda i: rows[i]["metric"], reverse=higher_is_better)
    ranked = [rows[i] for i in order]
    longest = max([len(row["label"]) for row in rows] + [10])
    # The bar labels need about 0.065 inch per character at 7.5 points; the rest is the two panels.
    figure, (left, right) = _figure(min(8.0 + 0.065 * longest, 20.0), 1.8 + 0.28 * len(rows),
                                    ncols=2, gridspec_kw={"width_ratios": (1.2, 1)})
    places = list(range(len(ranked)))[::-1]  # rank 1 at the top
    left.barh(places, [row["metric"] for row in ranked], color="tab:blue", height=0.7)
    left.set_yticks(places, [f"{rank}. {row['label']}" for rank, row in enumerate(ranked, 1)],
                    fontsize=7.5)
    values = [left.annotate(f"{row['metric']:.4g}", (row["metric"], place), xytext=(3, 0),
                            textcoords="offset points", va="center", fontsize=7)
              for row, place in zip(ranked, places)]
    left.set(xlabel=metric, title=f"final {metric} per configuration "
                                  f"({'higher' if higher_is_better else 'lower'} is better)")
    right.scatter([row["seconds_per_epoch"] for row in ranked], [row["metric"] for row in ranked])
    for rank, row in enumerate(ranked, 1):
        right.annotate(str(rank), (row["seconds_per_epoch"], row["metric"]), xytext=(4, 3),
                       textcoords="offset points", fontsize=7.5)
    right.margins(x=0.12, y=0.12)  # room for the numbers beside the outermost points
    right.set(xlabel="seconds per epoch", ylabel=metric,
              title="speed vs result (numbers: rank at left)")
    right.grid(alpha=0.3)
    figure.tight_layout()
    _room_right(left, values)
    return _save(figure, path)


def _room_right(axis, texts):
    """Widen the x range of `axis` until `texts` (value labels right of bars) lie inside it."""
    if not texts:
        return
    renderer = axis.figure.canvas.get_renderer()
    for _ in range(4):  # each widening shrinks the data scale; a few rounds settle it
        right = max(text.get_window_extent(renderer).x1 for text in texts)
        needed = axis.transData.inverted().transform((right, 0))[0]
        low, high = axis.get_xlim()
        if needed <= high:
            return
        axis.set_xlim(low, needed + 0.02 * (needed - low))
