"""A plain-text table of declared columns, no wider than a terminal, for the printed reports.

A column is a header, a function from a row to its text, and an alignment. A column whose every
cell is empty ('' or '-') is dropped: a CPU run has no peak memory, and a column of dashes only
makes the reader scan further. Rows can be interleaved with group titles (plain strings), printed
flush left above their rows. A last column that would pass the width continues on the next line
under itself, so nothing is cut off.
"""

from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.formats import MISSING

WIDTH = 120


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[dict], str]
    align: str = ">"  # '<' for names, '>' for numbers


def _empty(text):
    return text in ("", MISSING)


def render(columns, items, width=WIDTH, indent="  "):
    """(lines, kept): the header, a rule and one line per row (group titles as they are), and the
    columns that were kept. `items`: row dicts and title strings in print order."""
    rows = [item for item in items if not isinstance(item, str)]
    cells = {id(row): [column.cell(row) for column in columns] for row in rows}
    keep = [i for i in range(len(columns))
            if not all(_empty(cells[id(row)][i]) for row in rows)]
    kept = [columns[i] for i in keep]
    sizes = [max([len(columns[i].header)] + [len(cells[id(row)][i]) for row in rows])
             for i in keep]
    header = indent + " ".join(f"{c.header:{c.align}{s}}" for c, s in zip(kept, sizes))
    header = header.rstrip()
    lines = [header, indent + "-" * (min(len(header), width) - len(indent))]
    for item in items:
        if isinstance(item, str):
            lines.append(item)
            continue
        texts = [cells[id(item)][i] for i in keep]
        lines += _row_lines(kept, sizes, texts, width, indent)
    return lines, kept


def _row_lines(columns, sizes, texts, width, indent):
    """One row; a last cell that would pass `width` goes on under its column, word by word."""
    parts = [f"{t:{c.align}{s}}" for c, t, s in zip(columns[:-1], texts[:-1], sizes[:-1])]
    start = indent + " ".join(parts) + (" " if parts else "")
    last = texts[-1] if texts else ""
    room = max(width - len(start), 8)
    if len(last) <= room:
        align = columns[-1].align if columns else "<"
        return [(start + f"{last:{align}{sizes[-1] if sizes else 0}}").rstrip()]
    # Words, where a '+'-joined list of kernel forms breaks after each '+'.
    words = [w for word in last.split() for w in _pieces(word.replace("+", "+\n"), room)]
    chunks, line = [], ""
    for word in words:
        if line and len(line) + len(word) > room:
            chunks.append(line.rstrip())
            line = ""
        line += word + ("" if word.endswith("+") else " ")
    chunks.append(line.rstrip())
    return [start + chunks[0]] + [" " * len(start) + chunk for chunk in chunks[1:]]


def _pieces(word, room):
    """`word` split at its line breaks, and pieces longer than `room` cut to fit."""
    return [piece[i:i + room] for piece in word.split("\n") for i in range(0, len(piece), room)]
