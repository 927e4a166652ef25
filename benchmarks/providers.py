"""What is timed: one recurrent module per provider, all with the torch.nn call convention.

    torch      torch.nn.LSTM/GRU/RNN: cuDNN on CUDA, ATen on CPU (the baseline of every speedup)
    reference  fastrnn modules with backend='reference' (pure PyTorch)
    triton     fastrnn modules with backend='triton' (fused kernels; CUDA only when timed)
    cells      torch.nn.LSTMCell/GRUCell/RNNCell stepped in a Python loop: what the tutorials do

`build(case, device)` returns (module, params): params maps torch.nn parameter names
(weight_ih_l0, ...) to the module's Parameters, so the parity gate loads the same weights into
every provider. A provider that cannot run a case raises Unavailable with the reason.
"""

import torch
from torch import nn

import fastrnn
from fastrnn.backends import triton_interpreter_enabled
from fastrnn.parity_cli import DTYPES


class Unavailable(RuntimeError):
    """This provider cannot run this case here; the message is recorded as the reason."""


def _kwargs(case, device):
    extra = {"nonlinearity": "tanh"} if case.cell == "RNN" else {}
    return {"num_layers": case.layers, "bidirectional": case.bidirectional,
            "dtype": DTYPES[case.dtype], "device": device, **extra}


def _torch(case, device):
    module = getattr(nn, case.cell)(case.I, case.H, **_kwargs(case, device))
    return module, dict(module.named_parameters())


def _fastrnn(backend):
    def build(case, device):
        # The interpreter runs kernels one program at a time in Python: correct, never timed.
        # Without it, fastrnn's own backend policy refuses CPU tensors with its reason.
        if backend == "triton" and torch.device(device).type == "cpu" and (
            triton_interpreter_enabled()
        ):
            raise Unavailable("the Triton interpreter (TRITON_INTERPRET=1) is never timed")
        module = getattr(fastrnn, case.cell)(case.I, case.H, backend=backend,
                                             **_kwargs(case, device))
        return module, dict(module.named_parameters())

    return build


class CellLoop(nn.Module):
    """A stacked (bidirectional) recurrence of torch.nn cells unrolled in Python, step by step.

    The naive baseline: the loop of the classic tutorials, generalised to layers and directions.
    forward(input (T, B, I), hx) -> (output (T, B, D*H), h_n (L*D, B, H) or (h_n, c_n)).
    """

    def __init__(self, cell, input_size, hidden_size, num_layers=1, bidirectional=False,
                 dtype=None, device=None):
        super().__init__()
        self.is_lstm = cell == "LSTM"
        self.directions = 2 if bidirectional else 1
        cell_class = getattr(nn, f"{cell}Cell")
        self.cells = nn.ModuleList(
            cell_class(input_size if layer == 0 else self.directions * hidden_size, hidden_size,
                       dtype=dtype, device=device)
            for layer in range(num_layers) for _ in range(self.directions))

    def canonical_parameters(self):
        """torch.nn.LSTM-style names -> this module's cell parameters."""
        params = {}
        for index, cell in enumerate(self.cells):
            layer, direction = divmod(index, self.directions)
            suffix = f"l{layer}" + ("_reverse" if direction else "")
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                params[f"{name}_{suffix}"] = getattr(cell, name)
        return params

    def forward(self, input, hx):
        states = list(hx) if self.is_lstm else [hx]
        finals = [[] for _ in states]
        layer_input = input
        for layer in range(len(self.cells) // self.directions):
            outputs = []
            for direction in range(self.directions):
                index = layer * self.directions + direction
                cell = self.cells[index]
                state = tuple(s[index] for s in states)
                steps = range(input.shape[0] - 1, -1, -1) if direction else range(input.shape[0])
                out = [None] * input.shape[0]
                for t in steps:
                    state = cell(layer_input[t], state if self.is_lstm else state[0])
                    state = state if self.is_lstm else (state,)
                    out[t] = state[0]
                outputs.append(torch.stack(out))
                for collected, tensor in zip(finals, state):
                    collected.append(tensor)
            layer_input = torch.cat(outputs, dim=2) if self.directions == 2 else outputs[0]
        finals = [torch.stack(f) for f in finals]
        return layer_input, tuple(finals) if self.is_lstm else finals[0]


def _cells(case, device):
    if case.packed:
        raise Unavailable("a hand-unrolled cell loop takes no packed input")
    kwargs = _kwargs(case, device)
    kwargs.pop("nonlinearity", None)
    module = CellLoop(case.cell, case.I, case.H, **kwargs)
    return module, module.canonical_parameters()


PROVIDERS = {
    "torch": _torch,
    "reference": _fastrnn("reference"),
    "triton": _fastrnn("triton"),
    "cells": _cells,
}
DESCRIPTIONS = {
    "torch": "torch.nn modules (cuDNN on CUDA, ATen on CPU)",
    "reference": "fastrnn modules, backend='reference'",
    "triton": "fastrnn modules, backend='triton'",
    "cells": "torch.nn *Cell unrolled in a Python loop (tutorial style)",
}


def build(provider, case, device):
    """(module, params) of `provider` for `case` on `device`; raises Unavailable with the reason."""
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise Unavailable("no CUDA device in this process")
    return PROVIDERS[provider](case, device)
