"""What every benchmark figure shares: saving (with a check that no label is cut off), room for
value labels, and tick labels a person reads without decoding ('256', not '2^8'; '40', not
'4x10^1').

matplotlib's Agg backend is chosen here, before pyplot loads, so figures draw without a display.
"""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)
from matplotlib.text import Annotation, Text  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402


def problems(figure, slack=1.0):
    """What a reader would find cut off, as short descriptions (empty when none): texts that reach
    past the figure's edge, and value labels or annotations (matplotlib Annotations) that reach past
    their own panel, into a neighbour or off the chart. Draws the figure once."""
    renderer = figure.canvas.get_renderer()
    figure.draw(renderer)
    found = []
    for text in drawn_texts(figure):
        extent = text.get_window_extent(renderer)
        if not _within(extent, figure.bbox, slack):
            found.append(f"past the figure's edge: {text.get_text()!r}")
        elif (isinstance(text, Annotation) and text.axes is not None
              and not _within(extent, text.axes.bbox, slack)):
            found.append(f"past its panel: {text.get_text()!r}")
    return found


def _within(extent, box, slack):
    return (extent.x0 >= box.x0 - slack and extent.y0 >= box.y0 - slack
            and extent.x1 <= box.x1 + slack and extent.y1 <= box.y1 + slack)


def drawn_texts(figure):
    """The visible, non-empty texts a draw of `figure` shows. An axis keeps label objects for ticks
    beyond its view (and spare ones for later ticks) that are laid out but never drawn: they are
    left out, and so are the texts of hidden axes."""
    ticks, drawn = set(), []
    for axes in figure.axes:
        for axis in (axes.xaxis, axes.yaxis):
            low, high = sorted(axis.get_view_interval())
            eps = 1e-9 * (high - low)
            for locs, objects in ((axis.get_majorticklocs(), axis.get_major_ticks()),
                                  (axis.get_minorticklocs(), axis.get_minor_ticks())):
                for tick in objects:
                    ticks.update((tick.label1, tick.label2))
                if axes.get_visible() and axis.get_visible():
                    drawn += [label for loc, tick in zip(locs, objects)
                              if low - eps <= loc <= high + eps
                              for label in (tick.label1, tick.label2)]
    drawn += [text for text in figure.findobj(Text) if text not in ticks
              and (text.axes is None or text.axes.get_visible())]
    return [text for text in drawn if text.get_visible() and text.get_text().strip()]


def save(figure, path, dpi=90, rect=(0, 0, 1, 1)):
    """Lay out, write `path` (folders made) and close `figure`; returns the path.

    The figures are sized so that layout fits every label (the tests hold them to it with
    `problems`); the 'tight' bounding box is the safety net: should a long name still reach past
    an edge, the image grows to hold it rather than cut it off.
    """
    figure.tight_layout(rect=rect)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.08)
    plt.close(figure)
    return path


def room_for(axis, texts, pad=0.03):
    """Widen the x range of `axis` until `texts` (value labels beside bars) lie inside it."""
    renderer = axis.figure.canvas.get_renderer()
    for _ in range(4):  # each widening shrinks the data scale a little; a few rounds settle it
        extents = [text.get_window_extent(renderer) for text in texts]
        inverse = axis.transData.inverted()
        left = inverse.transform((min(e.x0 for e in extents), 0))[0]
        right = inverse.transform((max(e.x1 for e in extents), 0))[0]
        low, high = axis.get_xlim()
        margin = pad * (high - low)
        if left >= low and right <= high:
            return
        axis.set_xlim(low if left >= low else left - margin, high if right <= high else right + margin)


def plain_log_axis(axis, which="y"):
    """Log-scale tick labels as plain numbers ('40', '0.5', '200'), with as many minor ticks
    labelled as fit without touching: all of them on a short axis, fewer as it spans more decades."""
    target = axis.yaxis if which == "y" else axis.xaxis
    target.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))

    def minor(value, _):
        low, high = sorted(target.get_view_interval())
        decades = math.log10(high / low) if low > 0 else math.inf
        leading = f"{value:.1e}"[0]
        for most, digits in ((0.4, "23456789"), (1.2, "235"), (2.5, "25")):
            if decades <= most:
                return f"{value:g}" if leading in digits else ""
        return ""

    target.set_minor_formatter(FuncFormatter(minor))


def swept_ticks(axis, values):
    """x ticks at exactly the swept sizes, labelled as integers, on a log2 axis."""
    values = sorted(set(values))
    axis.set_xscale("log", base=2)
    axis.xaxis.set_major_locator(FixedLocator(values))
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.xaxis.set_minor_locator(NullLocator())
