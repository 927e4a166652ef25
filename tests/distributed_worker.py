"""One rank of the distributed tests: train a model with fastrnn layers under DDP or FSDP2.

    python tests/distributed_worker.py WRAPPER RANK WORLD PORT OUT

WRAPPER is 'ddp' (DistributedDataParallel) or 'fsdp' (torch.distributed.fsdp.fully_shard), or
'single' (no process group, the whole batch: the expected result). Every rank builds the same
model from the same seed, takes its slice of the same global batch, runs STEPS steps of SGD and
writes the full parameters (gathered for FSDP) and the loss of each step to OUT (torch.save).
Gloo over 127.0.0.1 on CPU tensors: nothing leaves the machine.
"""

import sys

import torch
import torch.distributed as dist
from torch import nn

import fastrnn

STEPS = 3
BATCH, STEPS_T, FEATURES, HIDDEN = 8, 6, 3, 5


class Model(nn.Module):
    """A bidirectional two-layer LSTM, a GRU cell over its last output, a linear readout."""

    def __init__(self):
        super().__init__()
        self.lstm = fastrnn.LSTM(FEATURES, HIDDEN, num_layers=2, bidirectional=True,
                                 batch_first=True)
        self.cell = fastrnn.GRUCell(2 * HIDDEN, HIDDEN)
        self.readout = nn.Linear(HIDDEN, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.readout(self.cell(out[:, -1])).squeeze(-1)


def data():
    gen = torch.Generator().manual_seed(1)
    return (torch.randn(BATCH, STEPS_T, FEATURES, generator=gen, dtype=torch.float64),
            torch.randn(BATCH, generator=gen, dtype=torch.float64))


def train(wrapper, rank, world):
    torch.manual_seed(0)
    model = Model().double()
    x, y = data()
    if wrapper != "single":
        rows = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
        x, y = x[rows], y[rows]
    if wrapper == "ddp":
        model = nn.parallel.DistributedDataParallel(model)
    elif wrapper == "fsdp":
        from torch.distributed.fsdp import fully_shard

        fully_shard(model.lstm)
        fully_shard(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        # Mean over the global batch: each rank's mean, averaged by DDP/FSDP's gradient reduction.
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    params = {}
    for name, param in model.named_parameters():
        full = param.full_tensor() if hasattr(param, "full_tensor") else param
        params[name.removeprefix("module.")] = full.detach().clone()
    return params, losses


def main(wrapper, rank, world, port, out):
    rank, world = int(rank), int(world)
    torch.set_num_threads(1)
    if wrapper != "single":
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world)
    try:
        params, losses = train(wrapper, rank, world)
    finally:
        if wrapper != "single":
            dist.destroy_process_group()
    torch.save({"params": params, "losses": losses}, out)


if __name__ == "__main__":
    main(*sys.argv[1:])
