"""Generated example data in the file formats `--data` reads, for the docs, the tests and for
choosing the models' options. Everything is synthetic and seeded (no licence questions).

splice_like: DNA where the class depends on what sits at a fixed position, as in splice-junction
    data: 'EI' (exon-intron, a donor site GT right after the middle), 'IE' (intron-exon, an
    acceptor AG right before it, after a pyrimidine tract) or 'N' (neither). Every class also
    carries decoy copies of both signals elsewhere, so knowing *whether* a signal occurs is not
    enough: a model has to know *where*. A few letters are IUPAC ambiguity codes.
sunspot_like: a monthly series with ~11-year cycles of varying height, skewed rise and fall and
    noise that grows with the level, in the spirit of sunspot counts (never negative).
reviews: labelled review texts (from synthetic.py's aclImdb generator) for `sentiment --data`.

Write one from the shell: python -m fastrnn.tasks.data.examples splice splice.csv
"""

import csv
import math
import random
from pathlib import Path

import torch

from fastrnn.tasks.data import synthetic

BASES = "ACGT"
AMBIGUOUS = "RYSWKMBDHVN"
SPLICE_LENGTH = 60
SPLICE_MIDDLE = 30          # the junction lies between positions 29 and 30 (0-based)
DONOR = ["AC", "A", "G", "G", "T", "AG", "A", "G", "T"]   # MAG|GTRAGT, the junction after 3
ACCEPTOR_TRACT = 10         # pyrimidines (C/T) before ...AG|G


def _rng(generator):
    """A Python random.Random seeded from a torch.Generator: per-letter draws are 100x faster
    than torch's scalar calls, and the run's seed still decides everything."""
    return random.Random(int(torch.randint(0, 2**62, (1,), generator=generator)))


def _pick(options, rng):
    return options[rng.randrange(len(options))]


def _chance(p, rng):
    return rng.random() < p


def _plant_donor(row, start, generator, fidelity):
    for k, allowed in enumerate(DONOR):
        # The GT itself is always there (the GT-AG rule); the rest of the consensus is frequent.
        if k in (3, 4) or _chance(fidelity, generator):
            row[start + k] = _pick(allowed, generator)


def _plant_acceptor(row, end, generator, fidelity):
    """An acceptor whose AG ends just before `end`: a pyrimidine tract, one base, then AG."""
    row[end - 2], row[end - 1] = "A", "G"
    for k in range(end - 3 - ACCEPTOR_TRACT, end - 3):
        if _chance(fidelity, generator):
            row[k] = _pick("CT", generator)


def splice_like(n, generator, *, ambiguity=0.01, fidelity=0.7, decoys=0.5):
    """n strings of length 60 and their labels ('EI' 25%, 'IE' 25%, 'N' 50%).

    fidelity: chance that each consensus letter besides GT/AG follows the consensus. decoys:
    chance, per example and signal, of a copy planted away from the middle. ambiguity: chance
    that a letter becomes an IUPAC ambiguity code. Returns (list of str, list of str).
    """
    generator = _rng(generator)
    strings, labels = [], []
    for _ in range(n):
        row = [_pick(BASES, generator) for _ in range(SPLICE_LENGTH)]
        draw = generator.random()
        label = "EI" if draw < 0.25 else "IE" if draw < 0.5 else "N"
        if _chance(decoys, generator):   # a donor away from the middle
            start = _pick([s for s in range(0, SPLICE_LENGTH - len(DONOR) + 1)
                           if abs(s + 3 - SPLICE_MIDDLE) > 6], generator)
            _plant_donor(row, start, generator, fidelity)
        if _chance(decoys, generator):   # an acceptor away from the middle
            end = _pick([e for e in range(ACCEPTOR_TRACT + 3, SPLICE_LENGTH + 1)
                         if abs(e - SPLICE_MIDDLE) > 6], generator)
            _plant_acceptor(row, end, generator, fidelity)
        if label == "EI":
            _plant_donor(row, SPLICE_MIDDLE - 3, generator, fidelity)
        elif label == "IE":
            _plant_acceptor(row, SPLICE_MIDDLE, generator, fidelity)
            if _chance(fidelity, generator):
                row[SPLICE_MIDDLE] = "G"
        for k in range(SPLICE_LENGTH):
            if _chance(ambiguity, generator):
                row[k] = _pick(AMBIGUOUS, generator)
        strings.append("".join(row))
        labels.append(label)
    return strings, labels


def sunspot_like(n_months, generator):
    """(n_months,) float64 series of non-negative monthly values with ~132-month cycles."""
    values, month = [], 0
    while month < n_months:
        period = 108 + int(torch.randint(0, 48, (1,), generator=generator))   # 9 to 13 years
        height = 60 + 140 * float(torch.rand((), generator=generator))
        rise = 0.35 * period                                 # rises faster than it falls
        for t in range(period):
            phase = t / rise if t < rise else 1 + (t - rise) / (period - rise)
            level = height * math.sin(0.5 * math.pi * phase) ** 2
            values.append(level)
        month += period
    series = torch.tensor(values[:n_months], dtype=torch.float64)
    noise = torch.zeros(n_months, dtype=torch.float64)
    shocks = torch.randn(n_months, generator=generator, dtype=torch.float64)
    for t in range(1, n_months):   # AR(1) noise: months near each other err alike
        noise[t] = 0.6 * noise[t - 1] + shocks[t]
    return (series + noise * (3 + 0.15 * series)).clamp(min=0.0)


def write_csv(path, columns, rows, delimiter=None):
    """Write rows (iterables of values) under a header; the delimiter from the suffix (.tsv tab)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    delimiter = delimiter or ("\t" if path.suffix in (".tsv", ".tab") else ",")
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def write_fasta(path, names, sequences, labels, splits=None, width=60):
    """Write '>NAME LABEL [split=S]' records with sequence lines of `width` letters."""
    path = Path(path)
    with open(path, "w", encoding="utf-8") as handle:
        for k, (name, sequence, label) in enumerate(zip(names, sequences, labels)):
            split = f" split={splits[k]}" if splits is not None else ""
            handle.write(f">{name} {label}{split}\n")
            for start in range(0, len(sequence), width):
                handle.write(sequence[start : start + width] + "\n")
    return path


def write_splice(path, n=3000, seed=0):
    """A splice_like file: CSV/TSV with id, sequence, label columns, or FASTA for .fa/.fasta."""
    strings, labels = splice_like(n, torch.Generator().manual_seed(seed))
    names = [f"s{k + 1}" for k in range(n)]
    if Path(path).suffix in (".fa", ".fasta"):
        return write_fasta(path, names, strings, labels)
    return write_csv(path, ["id", "sequence", "label"], zip(names, strings, labels))


def write_sunspots(path, n_months=2400, seed=0):
    """A sunspot_like CSV with columns month (YYYY-MM from 1800-01) and value."""
    series = sunspot_like(n_months, torch.Generator().manual_seed(seed))
    months = [f"{1800 + k // 12}-{k % 12 + 1:02d}" for k in range(n_months)]
    return write_csv(path, ["month", "value"], ((m, f"{v:.1f}") for m, v in zip(months, series.tolist())))


def write_reviews(path, n_per_class=300, seed=0):
    """A CSV of synthetic reviews with columns text and label (pos/neg)."""
    rows = [(text, name) for (split, name), entries in synthetic.reviews(n_per_class, seed).items()
            if split == "train" for _, text in entries]
    return write_csv(path, ["text", "label"], rows)


WRITERS = {"splice": write_splice, "sunspots": write_sunspots, "reviews": write_reviews}


def main(argv=None):
    """python -m fastrnn.tasks.data.examples {splice,sunspots,reviews} FILE [--seed S]"""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fastrnn.tasks.data.examples",
                                     description="write a generated example file for --data")
    parser.add_argument("kind", choices=list(WRITERS))
    parser.add_argument("file", help="where to write it (.csv, .tsv; .fa/.fasta for splice)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(WRITERS[args.kind](args.file, seed=args.seed))


if __name__ == "__main__":
    main()
