"""A real-valued series from a user's file, its chronological split and its naive forecasts.

The file is a CSV/TSV table (one column picked by name, or by number when the file has no
header) or a plain list of numbers, one per line. Rows are in time order.
"""

from dataclasses import dataclass

import torch

from fastrnn.tasks.data.files import FileFormatError, is_fasta, read_table, read_text, where


@dataclass
class Series:
    """values (N,) float64 in file order; lines: each value's line in the file; column: its name;
    splits: per value 'train' | 'val' | 'test' from the file's split column, or None."""

    path: object
    values: torch.Tensor
    lines: list
    column: str
    splits: list | None


def _pick_column(table, column):
    if column is not None:
        table.column(column, "column")   # the error for a missing one
        return column
    if len(table.columns) == 1:
        return table.columns[0]
    if "value" in table.columns:
        return "value"
    numeric = [c for c in table.columns
               if all(_number(row[c]) is not None for row in table.rows[:20])]
    if len(numeric) == 1:
        return numeric[0]
    header = "the file has no header, so they are numbered" if table.columns[0] == "1" else ""
    raise FileFormatError(f"{table.path}: which column is the series? columns: "
                          f"{', '.join(table.columns)}{'; ' + header if header else ''}; "
                          "choose one with --column NAME")


def _number(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def read_series(path, column=None, split_column="split"):
    """Read one column of numbers -> Series. FileFormatError naming the line of an empty or
    non-numeric value, or the columns to choose from when `column` is not given and unclear."""
    text = read_text(path)
    if is_fasta(text, path):
        raise FileFormatError(f"{path} is FASTA; sine reads a column of numbers")
    table = read_table(path, text, headerless_numbers=True)
    name = _pick_column(table, column)
    values = []
    for row, line in zip(table.rows, table.lines):
        value = _number(row[name])
        if value is None:
            shown = repr(row[name]) if row[name] else "an empty value"
            raise FileFormatError(f"{where(path, line)}: {shown} in column {name!r} is not a "
                                  "finite number")
        values.append(value)
    splits = table.optional(split_column) if split_column != name else None
    if splits is not None:
        names = {"train": "train", "val": "val", "validation": "val", "test": "test"}
        for k, (value, line) in enumerate(zip(splits, table.lines)):
            if value.strip().lower() not in names:
                raise FileFormatError(f"{where(path, line)}: split {value!r} is not train, val "
                                      "or test")
            splits[k] = names[value.strip().lower()]
    return Series(path, torch.tensor(values, dtype=torch.float64), table.lines, name, splits)


def chronological(n, window, val_fraction, test_fraction, path):
    """Split the targets t = window .. n-1 of a series of n values in time order.

    The last round(n * test_fraction) values are the test targets, the round(n * val_fraction)
    before them the validation targets, the rest (after the first window) the training targets.
    Returns {'train', 'val', 'test'}: lists of target indices t, and `train_end`, the number of
    leading values the training part spans (normalisation statistics come from these alone).
    """
    short = _short(n, window, val_fraction, test_fraction)
    if short:
        least = next(m for m in range(n + 1, n + 100 * (window + 10))
                     if not _short(m, window, val_fraction, test_fraction))
        raise FileFormatError(
            f"{path}: a series of {n} values is too short for window {window} with "
            f"val_fraction {val_fraction:g} and test_fraction {test_fraction:g}: no {short} "
            f"targets left; it needs at least {least} values (or a smaller --set window=N)")
    n_test, n_val = round(n * test_fraction), round(n * val_fraction)
    train_end = n - n_val - n_test
    return {"train": list(range(window, train_end)), "val": list(range(train_end, n - n_test)),
            "test": list(range(n - n_test, n)), "train_end": train_end}


def _short(n, window, val_fraction, test_fraction):
    """The first split a series of n values leaves without targets, or None."""
    n_test, n_val = round(n * test_fraction), round(n * val_fraction)
    for name, count, wanted in (("training", n - n_val - n_test - window, True),
                                ("validation", n_val, val_fraction > 0),
                                ("test", n_test, test_fraction > 0)):
        if wanted and count < 1:
            return name
    return None


def by_split_column(series, window):
    """Target indices per split from the file's split column; normalisation from 'train' rows."""
    parts = {name: [t for t in range(window, len(series.values)) if series.splits[t] == name]
             for name in ("train", "val", "test")}
    for name in ("train", "val"):
        if not parts[name]:
            raise FileFormatError(f"{series.path}: the split column leaves no {name} targets "
                                  f"after the first window of {window} values")
    return parts


def naive_errors(values, targets, season=0):
    """MSE and MAE of the naive forecast (the previous value) at target indices `targets`, and
    of the seasonal naive one (the value `season` steps back) when season > 0. values: (N,)."""
    index = torch.tensor(targets)
    truth = values[index]
    result = {}
    for name, lag in (("naive", 1), ("seasonal_naive", season)):
        if lag < 1:
            continue
        if int(index.min()) - lag < 0:
            raise ValueError(f"season {lag} reaches before the start of the series")
        difference = truth - values[index - lag]
        result[f"{name}_mse"] = float((difference**2).mean())
        result[f"{name}_mae"] = float(difference.abs().mean())
    return result
