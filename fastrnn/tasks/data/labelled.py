"""Labelled examples from a user's file, their classes, and the train/validation/test split.

    rows = read_labelled("splice.csv", "sequence", "label", "split", fasta=True)
    classes = class_names(rows.labels)
    parts = split_rows(rows, classes, val_fraction=0.1, test_fraction=0.2, generator=g)
    parts["train"]   # row indices, list of int

The split is the file's own where it has a split column (or `split=` in FASTA headers): each
row says train, val or test. Otherwise it is stratified and seeded: every class is shuffled and
cut at the same fractions, so each split has the file's class balance.
"""

from dataclasses import dataclass

import torch

from fastrnn.tasks.data.files import FileFormatError, is_fasta, read_fasta, read_table, read_text, where

SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
               "validation": "val", "dev": "val", "test": "test", "testing": "test"}


@dataclass
class Labelled:
    """Rows of a file. values: the sequence or text of each row; labels: str or None (no label
    column: predict input); splits: 'train' | 'val' | 'test' per row, or None (no split column);
    lines: each row's line in the file; ids: a name per row (FASTA name, `id` column, or line)."""

    path: object
    values: list
    labels: list | None
    splits: list | None
    lines: list
    ids: list


def read_labelled(path, value_column, label_column, split_column, *, fasta=False,
                  need_labels=True, value_option="sequence_column"):
    """Read a CSV/TSV file (or, with `fasta`, a FASTA file with the label in each header).

    need_labels: a missing label column is an error (training) or None labels (prediction).
    Raises FileFormatError naming the file, the line and the problem.
    """
    text = read_text(path)
    if is_fasta(text, path):
        if not fasta:
            raise FileFormatError(f"{path} is FASTA; this task reads CSV/TSV files")
        return _from_fasta(path, text, need_labels)
    table = read_table(path, text)
    values = table.column(value_column, value_option)
    labels = (table.column(label_column, "label_column") if need_labels
              else table.optional(label_column))
    splits = table.optional(split_column)
    ids = table.optional("id") or [f"line {n}" for n in table.lines]
    rows = Labelled(path, values, labels, splits, table.lines, ids)
    _check(rows)
    return rows


def _from_fasta(path, text, need_labels):
    records = read_fasta(path, text)
    names, labels, splits = [], [], []
    for record in records:
        name, label, pairs = record.fields()
        if label is None and need_labels:
            raise FileFormatError(f"{where(path, record.line)}: no label in the header "
                                  f"{record.header!r}; write '>NAME LABEL' or '>NAME label=LABEL'")
        names.append(name)
        labels.append(label)
        splits.append(pairs.get("split"))
    has_split = any(s is not None for s in splits)
    if has_split and any(s is None for s in splits):
        line = next(r.line for r, s in zip(records, splits) if s is None)
        raise FileFormatError(f"{where(path, line)}: some headers give split= and this one does "
                              "not; give it in every header or in none")
    rows = Labelled(path, [r.sequence for r in records],
                    labels if any(lbl is not None for lbl in labels) else None,
                    splits if has_split else None, [r.line for r in records], names)
    _check(rows)
    return rows


def _check(rows):
    for k, line in enumerate(rows.lines):
        if not rows.values[k]:
            raise FileFormatError(f"{where(rows.path, line)}: empty sequence or text")
        if rows.labels is not None and not rows.labels[k]:
            raise FileFormatError(f"{where(rows.path, line)}: empty label")
    if rows.splits is not None:
        normalised = []
        for value, line in zip(rows.splits, rows.lines):
            name = SPLIT_NAMES.get(value.strip().lower())
            if name is None:
                raise FileFormatError(f"{where(rows.path, line)}: split {value!r} is not train, "
                                      "val or test")
            normalised.append(name)
        rows.splits = normalised


def class_names(labels):
    """The sorted distinct labels: numerically when every label is an integer ('2' < '10')."""
    distinct = set(labels)
    if all(label.lstrip("-").isdigit() for label in distinct):
        return sorted(distinct, key=int)
    return sorted(distinct)


def label_indices(rows, classes):
    """Class index per row; FileFormatError naming the line of a label outside `classes`."""
    index = {name: k for k, name in enumerate(classes)}
    result = []
    for label, line in zip(rows.labels, rows.lines):
        if label not in index:
            raise FileFormatError(f"{where(rows.path, line)}: unknown label {label!r} (the "
                                  f"classes are {', '.join(classes)})")
        result.append(index[label])
    return result


def split_rows(rows, classes, *, val_fraction, test_fraction, generator):
    """{'train', 'val', 'test'}: lists of row indices.

    With the file's own split column: its assignment; a file without validation rows gives up
    `val_fraction` of its training rows (stratified), and one without test rows has no test split
    (an empty list). A label that appears outside the training rows is an error. Without a split
    column: a stratified seeded split at the fractions; every class keeps at least one training row.
    """
    targets = label_indices(rows, classes)
    if rows.splits is None:
        return _stratified(range(len(targets)), targets, val_fraction, test_fraction, generator,
                           rows.path)
    parts = {name: [k for k, s in enumerate(rows.splits) if s == name]
             for name in ("train", "val", "test")}
    if not parts["train"]:
        raise FileFormatError(f"{rows.path}: the split column names no training rows")
    seen = {targets[k] for k in parts["train"]}
    for k in parts["val"] + parts["test"]:
        if targets[k] not in seen:
            raise FileFormatError(f"{where(rows.path, rows.lines[k])}: label {rows.labels[k]!r} "
                                  "does not occur in the training rows")
    if not parts["val"]:
        carved = _stratified(parts["train"], targets, val_fraction, 0.0, generator, rows.path)
        parts["train"], parts["val"] = carved["train"], carved["val"]
    return parts


def _stratified(indices, targets, val_fraction, test_fraction, generator, path):
    parts = {"train": [], "val": [], "test": []}
    by_class = {}
    for k in indices:
        by_class.setdefault(targets[k], []).append(k)
    for label in sorted(by_class):
        members = by_class[label]
        order = [members[i] for i in torch.randperm(len(members), generator=generator).tolist()]
        n_test = round(len(order) * test_fraction)
        n_val = round(len(order) * val_fraction)
        while n_test + n_val >= len(order) and n_test + n_val > 0:   # keep one to train on
            if n_test >= n_val:
                n_test -= 1
            else:
                n_val -= 1
        parts["test"] += order[:n_test]
        parts["val"] += order[n_test : n_test + n_val]
        parts["train"] += order[n_test + n_val :]
    for name, fraction in (("val", val_fraction), ("test", test_fraction)):
        if fraction > 0 and not parts[name]:
            raise FileFormatError(f"{path}: {len(list(indices))} rows are too few to hold out "
                                  f"{fraction:g} of them for the {name} split")
    return {name: sorted(part) for name, part in parts.items()}
