"""Variable-length token sequences batched by length: little padding, lengths for packing.

Dimensions: N examples, B batch, T longest sequence in the batch.
"""

import math

import torch

from fastrnn.tasks.batching import Batch

POOL = 50   # batches per sorting pool: long enough to group lengths, short enough to stay random


class PaddedTextDataset:
    """Token-id lists with labels; `batches` yields Batch((tokens (B, T), lengths (B,)), labels (B,)).

    Padding id is 0. Lengths are int64 on the CPU, as pack_padded_sequence wants them.
    Empty sequences are given one padding token so every length is >= 1.
    """

    def __init__(self, sequences, labels):
        if len(sequences) != len(labels):
            raise ValueError(f"{len(sequences)} sequences but {len(labels)} labels")
        self.sequences = [list(s) if s else [0] for s in sequences]
        self.labels = torch.as_tensor(labels, dtype=torch.int64)
        self.lengths = torch.tensor([len(s) for s in self.sequences], dtype=torch.int64)

    def __len__(self):
        return len(self.sequences)

    def num_batches(self, batch_size):
        return math.ceil(len(self) / batch_size)

    def collate(self, index):
        """Batch of the examples at `index` (a list of ints), padded to the longest."""
        lengths = self.lengths[index]
        tokens = torch.zeros(len(index), int(lengths.max()), dtype=torch.int64)
        for row, i in enumerate(index):
            tokens[row, : lengths[row]] = torch.tensor(self.sequences[i])
        return Batch((tokens, lengths), self.labels[index], int(lengths.sum()))

    def batches(self, batch_size, shuffle=False, generator=None, ordered=False):
        """Length-bucketed batches. Shuffled: random pools of POOL batches, sorted by length within
        a pool, batch order shuffled. Not shuffled: all examples sorted by length (deterministic),
        or in dataset order when `ordered` (for predictions that go back to their rows)."""
        if not shuffle:
            order = (list(range(len(self))) if ordered
                     else torch.argsort(self.lengths, stable=True).tolist())
            for start in range(0, len(order), batch_size):
                yield self.collate(order[start : start + batch_size])
            return
        order = torch.randperm(len(self), generator=generator)
        chunks = []
        pool = batch_size * POOL
        for start in range(0, len(order), pool):
            part = order[start : start + pool]
            part = part[torch.argsort(self.lengths[part], stable=True)].tolist()
            chunks += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
        for k in torch.randperm(len(chunks), generator=generator).tolist():
            yield self.collate(chunks[k])
