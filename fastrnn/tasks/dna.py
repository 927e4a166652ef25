"""`dna`: a bidirectional GRU with attention classifies DNA: a planted motif, or the user's file.

Tutorial model: Embedding(4, 16), bidirectional GRU(16, 32), a learned attention score per step,
softmax over time, the weighted sum of the outputs, Linear(64, 2); Adam 1e-3, batch 32, 10 epochs.
Data: random A/C/G/T strings of length 50; half get the motif planted at a random position.
The label is whether the motif occurs in the final string (the tutorial's version computed a
constant label), so a chance occurrence in an unplanted string is labelled correctly as 1.

With `data=FILE` (`fastrnn train dna --data FILE`): sequences and labels from a CSV/TSV file
(`sequence_column`, `label_column`) or a FASTA file (label in the header), any number of
classes, IUPAC ambiguity codes read as the average of their bases, split three ways (see
data/labelled.py). `positional` and `readout` (dna_model.py) let the model see positions;
file runs start with positional='learned'.
"""

import torch

from fastrnn.tasks import plots
from fastrnn.tasks.base import FILE_DEFAULTS, Predictable, Splits, Task
from fastrnn.tasks.batching import LengthsDataset, SequenceDataset
from fastrnn.tasks.data import nucleotides
from fastrnn.tasks.data.files import FileFormatError, where
from fastrnn.tasks.data.labelled import class_names, label_indices, read_labelled, split_rows
from fastrnn.tasks.dna_model import DNAClassifier
from fastrnn.tasks.layers import sequence_states

ALPHABET = nucleotides.BASES
MOTIF_CLASSES = ["no motif", "motif"]


def encode(text):
    """A DNA string -> codes (T,) int64; A C G T are 0-3, IUPAC codes follow (nucleotides.py)."""
    return nucleotides.encode(text)


def motif_strings(n, length, motif, generator):
    """n random strings, half with `motif` planted at a random position.

    Returns tokens (N, T) int64, labels (N,) int64 (motif occurs), first occurrence (N,) int64
    (-1 where absent).
    """
    if not motif or any(ch not in ALPHABET for ch in motif) or len(motif) > length:
        raise ValueError(f"motif must be 1..{length} letters from {ALPHABET}, got {motif!r}")
    tokens = torch.randint(0, 4, (n, length), generator=generator)
    planted = torch.randperm(n, generator=generator)[: n // 2]
    starts = torch.randint(0, length - len(motif) + 1, (len(planted),), generator=generator)
    code = encode(motif)
    for row, start in zip(planted.tolist(), starts.tolist()):
        tokens[row, start : start + len(motif)] = code
    strings = ["".join(ALPHABET[i] for i in row) for row in tokens.tolist()]
    first = torch.tensor([s.find(motif) for s in strings], dtype=torch.int64)
    return tokens, (first >= 0).long(), first


def encode_rows(rows):
    """Codes of every row of a labelled file; FileFormatError naming the line of a bad letter."""
    codes = []
    for value, line in zip(rows.values, rows.lines):
        try:
            codes.append(nucleotides.encode(value))
        except ValueError as error:
            raise FileFormatError(f"{where(rows.path, line)}: {error}") from error
    return codes


def sequence_dataset(codes, targets):
    """SequenceDataset when every sequence has one length, else a PAD-padded LengthsDataset."""
    targets = torch.as_tensor(targets, dtype=torch.int64)
    lengths = [len(c) for c in codes]
    if len(set(lengths)) == 1:
        return SequenceDataset(torch.stack(codes), targets)
    padded = torch.full((len(codes), max(lengths)), nucleotides.PAD, dtype=torch.int64)
    for row, c in enumerate(codes):
        padded[row, : len(c)] = c
    return LengthsDataset(padded, lengths, targets)


class DNA(Task):
    name = "dna"
    summary = "bidirectional GRU + attention: is the motif in the string? (or: your file's classes)"
    reads_files = True
    defaults = {"rnn": "gru", "bidirectional": True, "epochs": 10, "hidden": 32, "lr": 1e-3,
                "batch_size": 32, "seq_len": 50, "motif": "GATTACA", "n_train": 4000,
                "n_val": 1000, "n_plot": 6, "embed": 16, "positional": "none",
                "readout": "attention", "sequence_column": "sequence", "label_column": "label"}
    # A file's classes may hang on positions (splice sites, promoters): its runs start from a
    # model that sees them. Measured (docs/own-data.md, seeds 0-2): on a position-dependent set
    # the tutorial's attention pooling reached 0.87-0.89 test accuracy after 22-39 epochs,
    # positional='learned' 0.94-0.955 after 5-7 (a logistic regression on one-hot positions:
    # 0.94-0.95); on the motif task both reach >= 0.99. Up to 40 epochs, as measured: early
    # stopping ends the run when the validation accuracy stops improving.
    file_defaults = {**FILE_DEFAULTS, "positional": "learned", "epochs": 40}
    sizes = {"tiny": {"epochs": 3, "seq_len": 20, "motif": "GATTA", "n_train": 512, "n_val": 256}}

    def make_data(self, config, generator, ctx):
        if config["data"] is not None:
            return self._file_data(config, generator)

        def split(n):
            tokens, labels, first = motif_strings(n, config["seq_len"], config["motif"], generator)
            return SequenceDataset(tokens, labels), first

        (train, _), (val, first) = split(config["n_train"]), split(config["n_val"])
        share = float(val.target.float().mean())
        spec = {"classes": MOTIF_CLASSES, "length": config["seq_len"]}
        return Splits(train, val, {"val_first": first, "chance": max(share, 1 - share),
                                   "classes": MOTIF_CLASSES, "spec": spec})

    def _file_data(self, config, generator):
        rows = read_labelled(config["data"], config["sequence_column"], config["label_column"],
                             config["split_column"], fasta=True)
        codes = encode_rows(rows)
        classes = class_names(rows.labels)
        targets = label_indices(rows, classes)
        parts = split_rows(rows, classes, val_fraction=float(config["val_fraction"]),
                           test_fraction=float(config["test_fraction"]), generator=generator)
        datasets = {name: sequence_dataset([codes[k] for k in index], [targets[k] for k in index])
                    for name, index in parts.items() if index}
        lengths = [len(c) for c in codes]
        counts = torch.bincount(torch.tensor([targets[k] for k in parts["val"]]),
                                minlength=len(classes))
        spec = {"classes": classes, "length": max(lengths)}
        extra = {"classes": classes, "spec": spec, "val_first": None,
                 "chance": float(counts.max() / counts.sum()),
                 "rows": {name: len(index) for name, index in parts.items()},
                 "lengths": [min(lengths), max(lengths)], "source": str(config["data"])}
        return Splits(datasets["train"], datasets["val"], extra, test=datasets.get("test"))

    def make_model(self, config, backend, data):
        spec = data.extra["spec"]
        return DNAClassifier(config["rnn"], config["hidden"], config["layers"], config["dropout"],
                             config["bidirectional"], backend, classes=len(spec["classes"]),
                             length=spec["length"], positional=config["positional"],
                             readout=config["readout"], embed=config["embed"])

    def extras(self, model, data, config, ctx):
        keep = ("chance", "rows", "lengths", "source")
        return {k: data.extra[k] for k in keep if k in data.extra}

    def prediction_data(self, path, config, spec):
        rows = read_labelled(path, config["sequence_column"], config["label_column"],
                             config["split_column"], fasta=True, need_labels=False)
        codes = encode_rows(rows)
        limited = config["positional"] != "none" or config["readout"] != "attention"
        for c, line in zip(codes, rows.lines):
            if limited and len(c) > spec["length"]:
                raise FileFormatError(f"{where(path, line)}: a sequence of {len(c)} letters is "
                                      f"longer than the {spec['length']} the model was trained on")
        labels = label_indices(rows, spec["classes"]) if rows.labels is not None else None
        dataset = sequence_dataset(codes, labels or [0] * len(codes))
        return Predictable(dataset, rows.ids, labels)

    @torch.no_grad()
    def plots(self, model, data, config, ctx):
        if model.score is None:
            return []   # readout='flatten' pools nothing: no attention to draw
        model.eval()
        # Show examples of every class in turn so the contrast is visible (the motif task:
        # positives first, as the tutorial).
        labels = data.val.target
        present = sorted(set(labels.tolist()), reverse=True)
        per_class = max(config["n_plot"] // len(present), 1)
        groups = [torch.nonzero(labels == c).flatten().tolist()[:per_class] for c in present]
        rows = [i for turn in zip(*groups) for i in turn] if len(groups) > 1 else groups[0]
        batch = data.val.collate(rows)
        weights = model.attention(batch.to(ctx.device).inputs).cpu().numpy()
        codes = batch.inputs[0] if isinstance(batch.inputs, tuple) else batch.inputs
        bases = [nucleotides.decode(row) for row in codes.cpu()]
        first = data.extra["val_first"]
        starts = first[rows].tolist() if first is not None else [-1] * len(rows)
        names = [data.extra["classes"][k] for k in labels[rows].tolist()]
        motif = len(config["motif"]) if first is not None else 0
        return [plots.attention_map(weights, starts, motif, names, ctx.out / "dna_attention.png",
                                    sequences=bases)]

    def states(self, model, data, ctx):
        inputs = data.val.collate([0]).inputs
        codes = inputs[0][:, : int(inputs[1][0])] if isinstance(inputs, tuple) else inputs
        return sequence_states(model.rnn, model.features(codes.to(ctx.device)))
