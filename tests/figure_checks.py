"""What the figure tests look for: labels cut off at a figure's edge, value labels and annotations
past their panel, and x tick labels that touch."""

from benchmarks import figures


def problems(figure):
    """Descriptions of everything a reader would find cut off or overlapping (empty: none)."""
    found = figures.problems(figure)  # draws the figure
    renderer = figure.canvas.get_renderer()
    drawn = set(figures.drawn_texts(figure))
    for axis in figure.axes:
        boxes = sorted(((t.get_window_extent(renderer), t.get_text())
                        for t in axis.get_xticklabels() if t in drawn), key=lambda item: item[0].x0)
        found += [f"x tick labels touch: {a!r} {b!r}" for (left, a), (right, b)
                  in zip(boxes, boxes[1:]) if left.x1 > right.x0]
    return found
