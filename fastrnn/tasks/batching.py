"""Fixed-length datasets and the Batch every training loop consumes.

Dimensions: N examples, T time steps, F features per step, B batch.
"""

import math
from dataclasses import dataclass

import torch


def _move(value, device):
    if isinstance(value, tuple):
        return tuple(_move(v, device) for v in value)
    return value.to(device)


@dataclass
class Batch:
    """One mini-batch.

    inputs: what the model's forward takes (a tensor, or a tuple such as (tokens, lengths)).
    target: (B,) int64 class labels or (B, 1) float regression targets.
    tokens: number of real (unpadded) time steps in the batch, for tokens/s.
    """

    inputs: object
    target: torch.Tensor
    tokens: int

    @property
    def size(self):
        return self.target.shape[0]

    def to(self, device):
        # lengths for pack_padded_sequence must stay on the CPU.
        if isinstance(self.inputs, tuple) and len(self.inputs) == 2 and self.inputs[1].dtype == torch.int64:
            inputs = (self.inputs[0].to(device), self.inputs[1])
        else:
            inputs = _move(self.inputs, device)
        return Batch(inputs, self.target.to(device), self.tokens)


class SequenceDataset:
    """Equal-length sequences held as tensors.

    inputs: (N, T) int64 tokens or (N, T, F) float features (batch first).
    target: (N,) int64 labels or (N, 1) float targets.
    """

    def __init__(self, inputs, target):
        if inputs.shape[0] != target.shape[0]:
            raise ValueError(f"{inputs.shape[0]} inputs but {target.shape[0]} targets")
        self.inputs = inputs
        self.target = target

    def __len__(self):
        return self.inputs.shape[0]

    def num_batches(self, batch_size):
        return math.ceil(len(self) / batch_size)

    def batches(self, batch_size, shuffle=False, generator=None, ordered=False):
        """Yield Batch objects; `shuffle` draws a permutation from `generator` (seeded by the loop).

        Unshuffled batches are always in dataset order (`ordered` is accepted for the datasets
        that otherwise group by length)."""
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for start in range(0, len(self), batch_size):
            yield self.collate(order[start : start + batch_size])

    def collate(self, index):
        """Batch of the examples at `index` (int64 tensor or list)."""
        index = torch.as_tensor(index, dtype=torch.int64)
        return Batch(self.inputs[index], self.target[index], self.inputs.shape[1] * index.numel())


class LengthsDataset(SequenceDataset):
    """Sequences of different lengths, right-padded: batches carry (inputs, lengths).

    inputs: (N, T) int64 tokens or (N, T, F) floats, padded past each length; lengths: (N,) int64
    (>= 1, <= T); target (N,). A batch's inputs are cut to its longest sequence, and its lengths
    stay on the CPU (as pack_padded_sequence wants them).
    """

    def __init__(self, inputs, lengths, target):
        super().__init__(inputs, target)
        self.lengths = torch.as_tensor(lengths, dtype=torch.int64)

    def collate(self, index):
        index = torch.as_tensor(index, dtype=torch.int64)
        lengths = self.lengths[index]
        inputs = self.inputs[index, : int(lengths.max())]
        return Batch((inputs, lengths), self.target[index], int(lengths.sum()))
