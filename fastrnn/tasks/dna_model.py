"""The DNA classifier: nucleotide codes -> recurrent stack -> a readout -> class logits.

Dimensions: B batch, T positions (the longest in the batch), E embedding, D directions,
H hidden, C classes.

The tutorial's model pools with attention: a score per position, a softmax over positions, the
weighted sum of the outputs. That pooling is blind to *where* a feature is (a motif at position
5 and one at position 45 pool the same), which is right for "is the motif anywhere?" and wrong
for splice sites, promoters and anything else aligned on a fixed position. Two options give the
model positions:

positional='learned': a learned vector per position added to the input embedding, so the
    recurrent layer reads "G at position 30" rather than "G" (max length fixed at training).
readout='flatten': the head reads the outputs of every position, concatenated (D*H*T features),
    so it has a weight per position and feature, as a logistic regression on one-hot positions
    does; needs T fixed at training (shorter sequences are zero-padded).
readout='both': attention pooling and the flattened outputs side by side.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from fastrnn.tasks.data.nucleotides import BASES, MIX, PAD
from fastrnn.tasks.layers import recurrent

POSITIONAL = ("none", "learned", "sinusoidal")
READOUTS = ("attention", "flatten", "both")


class NucleotideEmbedding(nn.Module):
    """codes (B, T) int64 (nucleotides.CODES, PAD) -> (B, T, E).

    One learned vector per base; an ambiguity code is the mixture of the vectors of the bases it
    stands for (N: their mean), PAD is zero. A, C, G and T embed exactly as nn.Embedding(4, E).
    """

    def __init__(self, embed):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(len(BASES), embed))   # nn.Embedding's init
        self.register_buffer("mix", MIX.clone(), persistent=False)     # (codes, 4)

    def forward(self, codes):
        return F.embedding(codes, self.mix @ self.weight)


def sinusoidal(length, width):
    """(length, width) fixed position features (Vaswani et al. 2017), for positional='sinusoidal'."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(1e4) / width))
    table = torch.zeros(length, width)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : width // 2]
    return table


class DNAClassifier(nn.Module):
    """Nucleotide embedding (+ positions) -> recurrent stack -> dropout -> readout -> Linear.

    forward(codes (B, T) int64, or (codes, lengths (B,) int64 on CPU) for padded batches)
    -> logits (B, C); `attention(x)` -> weights (B, T) (readouts with attention).

    Args: kind, hidden, layers, dropout, bidirectional, backend as the other tasks; classes: C;
    length: the longest training sequence (positional='learned', readout='flatten' size on it);
    positional: POSITIONAL; readout: READOUTS; embed: E.
    """

    def __init__(self, kind, hidden, layers, dropout, bidirectional, backend, *, classes=2,
                 length=None, positional="none", readout="attention", embed=16):
        super().__init__()
        if positional not in POSITIONAL:
            raise ValueError(f"positional must be one of {', '.join(POSITIONAL)}, got {positional!r}")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {', '.join(READOUTS)}, got {readout!r}")
        if (positional != "none" or readout != "attention") and not length:
            raise ValueError("positional encodings and the flatten readout need the sequence length")
        width = hidden * (2 if bidirectional else 1)
        self.length, self.positional, self.readout = length, positional, readout
        self.embed = NucleotideEmbedding(embed)
        self.rnn = recurrent(kind, embed, hidden, layers=layers, dropout=dropout,
                             bidirectional=bidirectional, backend=backend)
        self.score = nn.Linear(width, 1) if readout != "flatten" else None
        pooled = {"attention": width, "flatten": width * (length or 0),
                  "both": width * (1 + (length or 0))}[readout]
        self.head = nn.Linear(pooled, classes)
        self.drop = nn.Dropout(dropout)
        self.position = nn.Embedding(length, embed) if positional == "learned" else None
        if positional == "sinusoidal":
            self.register_buffer("table", sinusoidal(length, embed), persistent=False)

    def features(self, codes):
        """(B, T) codes -> (B, T, E) recurrent input: embeddings plus position vectors."""
        x = self.embed(codes)
        if self.positional == "none":
            return x
        steps = codes.shape[1]
        if steps > self.length:
            raise ValueError(f"a sequence of {steps} letters is longer than the {self.length} "
                             "the model was trained on (positional encodings stop there)")
        positions = (self.position.weight[:steps] if self.positional == "learned"
                     else self.table[:steps])
        return x + positions * (codes != PAD).unsqueeze(-1)

    def _outputs(self, inputs):
        """-> outputs (B, T, D*H) with zeros past each length, and a mask (B, T) of real steps."""
        codes, lengths = inputs if isinstance(inputs, tuple) else (inputs, None)
        x = self.features(codes)
        if lengths is None or bool((lengths == codes.shape[1]).all()):
            output, _ = self.rnn(x)
            return output, torch.ones(codes.shape, dtype=torch.bool, device=codes.device)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        output, _ = self.rnn(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=codes.shape[1])
        mask = torch.arange(codes.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
        return output, mask.to(codes.device)

    def _attend(self, output, mask):
        scores = self.score(output).squeeze(-1).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)                               # (B, T)
        return weights, torch.bmm(weights.unsqueeze(1), output).squeeze(1)  # (B, D*H)

    def _flat(self, output):
        if output.shape[1] > self.length:
            raise ValueError(f"a sequence of {output.shape[1]} letters is longer than the "
                             f"{self.length} the flatten readout was trained on")
        return F.pad(output, (0, 0, 0, self.length - output.shape[1])).flatten(1)

    def forward(self, inputs):
        output, mask = self._outputs(inputs)
        output = self.drop(output)
        if self.readout == "attention":
            pooled = self._attend(output, mask)[1]
        elif self.readout == "flatten":
            pooled = self._flat(output)
        else:
            pooled = torch.cat([self._attend(output, mask)[1], self._flat(output)], dim=1)
        return self.head(pooled)

    def attention(self, inputs):
        """Attention weights (B, T) of the readouts that pool with attention."""
        if self.score is None:
            raise ValueError("readout='flatten' has no attention weights")
        return self._attend(*self._outputs(inputs))[0]
