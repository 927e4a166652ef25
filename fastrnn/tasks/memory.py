"""`memory`: why LSTMs beat plain RNNs. Recall the first token after T-1 distractors.

Each example is a class token (one of `n_classes`) followed by T-1 distractor tokens drawn from a
disjoint set; the label is the class token. The model (embedding, recurrent stack, linear head on
the last step) only sees the answer at step 0, so the gradient has to survive T steps. One model
per cell type and length, all of equal hidden size; the result is accuracy vs T per cell type.

The gated cells start with their memory gate biased open (`gate_bias`, default 3: LSTM forget gate,
GRU update gate at sigmoid(3) = 0.95), the standard initialisation for long-memory tasks. That is
the point of the lesson: a gate can hold the state (and its gradient) over T steps, a plain RNN has
nothing to hold it with. With torch's default initialisation (gate_bias=0) the gates start at 0.5,
the gradient vanishes as 0.5^T, and within this training budget LSTM and GRU fail at T=50 too
(measured: val accuracy 0.23-0.30, chance 0.25, after 10-15 epochs).

Measured with the defaults (seed 0, reference and torch backends identical): GRU 1.0 at every T up
to 200; LSTM 1.0 up to T=50, chance at 100 and 200 (its input gate keeps adding distractors to the
cell, where GRU's coupled update gate lets little in); plain RNN 1.0 at T=10, chance from T=50.
"""

import torch
from torch import nn

from fastrnn.tasks import loop, plots
from fastrnn.tasks.base import RunResult, Splits, Task
from fastrnn.tasks.batching import SequenceDataset
from fastrnn.tasks.layers import RNN_KINDS, recurrent, sequence_states, set_memory_bias


def first_token_sequences(n, length, n_classes, n_distractors, generator):
    """tokens (N, T) int64: a class token in [0, n_classes) then distractors; labels (N,)."""
    labels = torch.randint(0, n_classes, (n,), generator=generator)
    tokens = torch.randint(n_classes, n_classes + n_distractors, (n, length), generator=generator)
    tokens[:, 0] = labels
    return tokens, labels


class LastStepClassifier(nn.Module):
    """Embedding -> recurrent stack -> dropout -> linear head on the last step.
    (B, T) int64 -> (B, C)."""

    def __init__(self, kind, vocab, classes, hidden, layers, dropout, bidirectional, backend,
                 embed=16, gate_bias=0.0):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.rnn = recurrent(kind, embed, hidden, layers=layers, dropout=dropout,
                             bidirectional=bidirectional, backend=backend)
        if gate_bias:
            set_memory_bias(self.rnn, gate_bias)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), classes)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        output, _ = self.rnn(self.embed(x))
        return self.head(self.drop(output[:, -1]))


def _cells(value):
    """'all' or a comma-separated list (or a list) of cell types -> tuple of cell types."""
    if value == "all":
        return RNN_KINDS
    cells = tuple(value.split(",")) if isinstance(value, str) else tuple(value)
    for cell in cells:
        if cell not in RNN_KINDS:
            raise ValueError(f"memory: rnn must be 'all' or from {', '.join(RNN_KINDS)}, got {cell!r}")
    return cells


def _lengths(value):
    lengths = tuple(int(t) for t in (value.split(",") if isinstance(value, str) else value))
    if not lengths or min(lengths) < 1:
        raise ValueError(f"memory: lengths must be positive integers, got {value!r}")
    return lengths


class Memory(Task):
    name = "memory"
    summary = "recall the first token after T-1 distractors: LSTM vs GRU vs RNN"
    metric = "mean_val_accuracy"
    bidirectional_ok = False   # a backward pass over the sequence would see the answer last
    defaults = {"rnn": "all", "epochs": 10, "hidden": 32, "lr": 3e-3, "batch_size": 32,
                "lengths": "10,50,100,200", "n_classes": 4, "n_distractors": 4,
                "n_train": 2000, "n_val": 500, "gate_bias": 3.0}
    sizes = {"tiny": {"epochs": 3, "lr": 1e-2, "lengths": "5,10", "n_train": 256, "n_val": 128}}

    def validate(self, config):
        config = {**config, "rnn": "lstm"}   # the base checks apply per cell type
        super().validate(config)
        _lengths(config["lengths"])

    def resolve(self, requested):
        config = super().resolve(requested)
        _cells(config["rnn"])
        return config

    def model_rnn(self, config):
        return list(_cells(config["rnn"]))

    def make_data(self, config, generator, ctx):
        def split(n):
            return SequenceDataset(*first_token_sequences(n, config["seq_len"], config["n_classes"],
                                                          config["n_distractors"], generator))

        return Splits(split(config["n_train"]), split(config["n_val"]))

    def make_model(self, config, backend, data):
        return LastStepClassifier(config["rnn"], config["n_classes"] + config["n_distractors"],
                                  config["n_classes"], config["hidden"], config["layers"],
                                  config["dropout"], False, backend,
                                  gate_bias=float(config["gate_bias"]))

    def states(self, model, data, ctx):
        return sequence_states(model.rnn, model.embed(data.val.inputs[:1].to(ctx.device)))

    def run(self, config, ctx):
        """Train one model per (cell type, T); epochs in the record average over the grid."""
        table, runs, last = {}, [], None
        for cell in _cells(config["rnn"]):
            for length in _lengths(config["lengths"]):
                single = {**config, "rnn": cell, "seq_len": length}
                # Every (cell, T) pair sees the same data for its T: the comparison is fair.
                data = self.make_data(single, loop.generator(ctx.seed + length), ctx)
                model = self.make_model(single, ctx.backend, data).to(ctx.device)
                rows = loop.fit(model, data, self.kind, "val_accuracy", single, ctx,
                                label=f"{cell} T={length}").rows
                table.setdefault(cell, {})[str(length)] = rows[-1]["metric"]
                runs.append({"rnn": cell, "T": length, "epochs": rows,
                             "seconds_per_epoch": sum(r["seconds"] for r in rows) / len(rows)})
                last = (model, data)
        epochs = _average_epochs(runs)
        chance = 1.0 / config["n_classes"]
        result = RunResult(epochs, epochs[-1]["metric"],
                           {"accuracy": table, "chance": chance, "runs": runs})
        ctx.log(_table_text(table))
        if ctx.out is not None:
            result.plots.append(plots.accuracy_vs_length(table, ctx.out / "memory_accuracy.png",
                                                         chance))
            if config["plot_states"]:
                result.plots.append(plots.states_heatmap(self.states(*last, ctx),
                                                         ctx.out / "states.png", self.name))
        return result


def _average_epochs(runs):
    """Per-epoch rows over all (cell, T) runs: mean loss/metric, summed time and tokens."""
    rows = []
    for epoch in range(len(runs[0]["epochs"])):
        group = [run["epochs"][epoch] for run in runs]
        seconds = sum(r["seconds"] for r in group)
        tokens = sum(r["tokens"] for r in group)
        rows.append({
            "epoch": epoch + 1,
            "loss": sum(r["loss"] for r in group) / len(group),
            "metric": sum(r["metric"] for r in group) / len(group),
            "seconds": seconds,
            "tokens": tokens,
            "tokens_per_s": tokens / seconds if seconds > 0 else 0.0,
        })
    return rows


def _table_text(table):
    lengths = sorted({t for row in table.values() for t in row}, key=int)
    lines = ["accuracy  " + "  ".join(f"T={t:>4}" for t in lengths)]
    for cell, row in table.items():
        lines.append(f"{cell:<8}  " + "  ".join(f"{row[t]:6.3f}" for t in lengths))
    return "\n".join(lines)
