"""The figure of `fastrnn bench --compare`: the rows whose speedup vs torch changed most.

A run has about a hundred rows; a bar for each is a wall of clipped labels. The figure shows the
largest changes only (by the size of the change, gains and losses alike), each bar labelled
with its value, on a log axis centred on 1 (a 2x gain and a 2x loss are the same length).
"""

import math

from benchmarks import figures, formats
from benchmarks.compare import is_baseline
from benchmarks.figures import plt

LIMIT = 20


def _label(change):
    grid, case, mode, provider = change["key"]
    return f"{case} {mode} {provider}" if grid != "tasks" else f"task {case} {provider}"


def plot_compare(changes, path, old_label, new_label, limit=LIMIT, warnings=()):
    """Horizontal bars of the change in speedup vs torch (new / old) of the `limit` rows that
    changed most; a note under the title when the runs differ (`warnings`). Returns the path,
    or None when no row has a speedup in both runs."""
    scored = [c for c in changes if c["change"] is not None and not is_baseline(c)]
    if not scored:
        return None
    shown = sorted(scored, key=lambda c: abs(math.log(c["change"])), reverse=True)[:limit]
    shown.sort(key=lambda c: c["change"])
    figure, axis = plt.subplots(figsize=(11, 1.9 + 0.3 * len(shown)))
    values = [c["change"] for c in shown]
    colors = ["tab:green" if v >= 1 else "tab:red" for v in values]
    # Bars start at 1 (no change) and run left for losses, right for gains.
    axis.barh(range(len(shown)), [math.log10(v) for v in values], color=colors, height=0.7)
    axis.set_yticks(range(len(shown)), [_label(c) for c in shown], fontsize=8)
    labels = [axis.annotate(formats.speedup(v), (math.log10(v), i), xytext=(3 if v >= 1 else -3, 0),
                            textcoords="offset points", va="center",
                            ha="left" if v >= 1 else "right", fontsize=7.5)
              for i, v in enumerate(values)]
    logs = [math.log10(v) for v in values]
    span = max(max(logs + [0.0]) - min(logs + [0.0]), 0.1)
    axis.set_xlim(min(logs + [0.0]) - 0.1 * span, max(logs + [0.0]) + 0.1 * span)
    axis.axvline(0.0, color="black", linewidth=1)
    ticks = _ticks(*axis.get_xlim())
    axis.set_xticks([math.log10(t) for t in ticks], [f"{t:g}x" for t in ticks])
    axis.set_xlabel("speedup vs torch, new / old (> 1: fastrnn gained on torch)")
    axis.grid(True, axis="x", alpha=0.3)
    what = (f"the {len(shown)} largest of {len(scored)} changes" if len(scored) > len(shown)
            else f"all {len(scored)} rows")
    title = f"{new_label} vs {old_label}: {what}"
    if warnings:
        title += "\nruns differ in " + ", ".join(w.split(":")[0] for w in warnings) + \
            " (raw times not comparable; speedups are)"
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    figures.room_for(axis, labels)
    return figures.save(figure, path)


def _ticks(low, high, count=7):
    """Round factors (0.5x, 0.8x, 1x, 2x, ...) inside [low, high] (log10 units), no closer than
    1/count of the range so that their labels never touch; 1x always."""
    candidates = sorted({m * 10.0**e for e in range(-3, 4) for m in (1, 2, 5)} | {0.8, 1.25})
    inside = [t for t in candidates if low <= math.log10(t) <= high]
    gap = (high - low) / count
    chosen = [1.0]
    # Outward from 1x, keeping a tick only when it is far enough from the last one kept.
    above = sorted(t for t in inside if t > 1)
    below = sorted((t for t in inside if t < 1), reverse=True)
    for side in (above, below):
        last = 0.0
        for tick in side:
            if abs(math.log10(tick) - last) >= gap:
                chosen.append(tick)
                last = math.log10(tick)
    return sorted(chosen)
