"""`dna`: a bidirectional GRU with attention finds a planted motif in random DNA.

Tutorial model: Embedding(4, 16), bidirectional GRU(16, 32), a learned attention score per step,
softmax over time, the weighted sum of the outputs, Linear(64, 2); Adam 1e-3, batch 32, 10 epochs.
Data: random A/C/G/T strings of length 50; half get the motif planted at a random position.
The label is whether the motif occurs in the final string (the tutorial's version computed a
constant label), so a chance occurrence in an unplanted string is labelled correctly as 1.
"""

import torch
from torch import nn

from fastrnn.tasks import plots
from fastrnn.tasks.base import Splits, Task
from fastrnn.tasks.batching import SequenceDataset
from fastrnn.tasks.layers import recurrent, sequence_states

ALPHABET = "ACGT"


def encode(text):
    return torch.tensor([ALPHABET.index(ch) for ch in text], dtype=torch.int64)


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


class AttentionClassifier(nn.Module):
    """Embedding -> recurrent stack -> softmax attention over time -> linear head.

    forward(x: (B, T) int64) -> logits (B, 2); `attention(x)` -> weights (B, T).
    """

    def __init__(self, kind, hidden, layers, dropout, bidirectional, backend, embed=16):
        super().__init__()
        width = hidden * (2 if bidirectional else 1)
        self.embed = nn.Embedding(len(ALPHABET), embed)
        self.rnn = recurrent(kind, embed, hidden, layers=layers, dropout=dropout,
                             bidirectional=bidirectional, backend=backend)
        self.score = nn.Linear(width, 1)
        self.head = nn.Linear(width, 2)

    def _attend(self, x):
        output, _ = self.rnn(self.embed(x))                    # (B, T, D*H)
        weights = torch.softmax(self.score(output).squeeze(-1), dim=1)   # (B, T)
        return weights, torch.bmm(weights.unsqueeze(1), output).squeeze(1)

    def forward(self, x):
        return self.head(self._attend(x)[1])

    def attention(self, x):
        return self._attend(x)[0]


class DNA(Task):
    name = "dna"
    summary = "bidirectional GRU + attention: is the motif in the string?"
    defaults = {"rnn": "gru", "bidirectional": True, "epochs": 10, "hidden": 32, "lr": 1e-3,
                "batch_size": 32, "seq_len": 50, "motif": "GATTACA", "n_train": 4000,
                "n_val": 1000, "n_plot": 6}
    sizes = {"tiny": {"epochs": 3, "seq_len": 20, "motif": "GATTA", "n_train": 512, "n_val": 256}}

    def make_data(self, config, generator, ctx):
        def split(n):
            tokens, labels, first = motif_strings(n, config["seq_len"], config["motif"], generator)
            return SequenceDataset(tokens, labels), first

        (train, _), (val, first) = split(config["n_train"]), split(config["n_val"])
        share = float(val.target.float().mean())
        return Splits(train, val, {"val_first": first, "chance": max(share, 1 - share)})

    def make_model(self, config, backend, data):
        return AttentionClassifier(config["rnn"], config["hidden"], config["layers"],
                                   config["dropout"], config["bidirectional"], backend)

    def extras(self, model, data, config, ctx):
        return {"chance": data.extra["chance"]}

    @torch.no_grad()
    def plots(self, model, data, config, ctx):
        model.eval()
        # Show positives and negatives alternately so the contrast is visible.
        labels = data.val.target
        positives = torch.nonzero(labels == 1).flatten().tolist()
        negatives = torch.nonzero(labels == 0).flatten().tolist()
        half = max(config["n_plot"] // 2, 1)
        rows = [i for pair in zip(positives[:half], negatives[:half]) for i in pair]
        weights = model.attention(data.val.inputs[rows].to(ctx.device)).cpu().numpy()
        starts = data.extra["val_first"][rows].tolist()
        return [plots.attention_map(weights, starts, len(config["motif"]), labels[rows].tolist(),
                                    ctx.out / "dna_attention.png")]

    def states(self, model, data, ctx):
        return sequence_states(model.rnn, model.embed(data.val.inputs[:1].to(ctx.device)))
