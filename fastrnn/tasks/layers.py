"""Recurrent building blocks for the task models, all built from fastrnn's drop-in modules.

Dimensions: B batch, T time, I input size, H hidden size, L layers, D directions.
"""

import torch
from torch import nn

import fastrnn

RNN_KINDS = ("lstm", "gru", "rnn")
_SEQUENCE = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
_CELL = {"lstm": "LSTMCell", "gru": "GRUCell", "rnn": "RNNCell"}


def check_kind(kind):
    if kind not in RNN_KINDS:
        raise ValueError(f"rnn must be one of {', '.join(RNN_KINDS)}; got {kind!r}")
    return kind


def recurrent(kind, input_size, hidden, *, layers=1, dropout=0.0, bidirectional=False,
              backend="auto"):
    """A batch-first fastrnn.LSTM / GRU / RNN. Input (B, T, I) -> output (B, T, D*H).

    `dropout` acts between stacked layers only, as in torch.nn; the task models apply their own
    nn.Dropout to the recurrent output, so the option also acts on one-layer models.
    """
    cls = getattr(fastrnn, _SEQUENCE[check_kind(kind)])
    # torch warns when dropout is set with one layer (it would do nothing): pass 0 there.
    return cls(input_size, hidden, num_layers=layers, batch_first=True,
               dropout=dropout if layers > 1 else 0.0, bidirectional=bidirectional,
               backend=backend)


@torch.no_grad()
def set_memory_bias(module, value):
    """Bias the gate that keeps the old state open: LSTM's forget gate, GRU's update gate.

    Both sit at rows [H, 2H) of the gate biases (LSTM i,f,g,o; GRU r,z,n); the value goes into
    b_ih and that slice of b_hh is zeroed, so the gate starts at sigmoid(value) in every layer.
    A positive value (Gers et al. 2000; Jozefowicz et al. 2015; Keras's unit_forget_bias) starts the
    cell with a long memory, so gradients over long spans do not vanish at initialisation.
    Plain RNN modules have no such gate and are left unchanged.
    """
    if module.mode not in ("LSTM", "GRU"):
        return module
    hidden = module.hidden_size
    for name, parameter in module.named_parameters():
        if name.startswith("bias_"):
            parameter[hidden : 2 * hidden] = value if name.startswith("bias_ih") else 0.0
    return module


class CellStack(nn.Module):
    """`layers` fastrnn cells of one kind stepped over time in a Python loop.

    forward(x (B, T, I)) -> top-layer h at the last step (B, H). `trace` (set by `states_over_time`)
    records every layer's h (and c for LSTM) at every step.
    """

    def __init__(self, kind, input_size, hidden, *, layers=1, dropout=0.0, backend="auto"):
        super().__init__()
        self.kind = check_kind(kind)
        cls = getattr(fastrnn, _CELL[kind])
        self.cells = nn.ModuleList(
            cls(input_size if k == 0 else hidden, hidden, backend=backend) for k in range(layers)
        )
        self.hidden = hidden
        self.dropout = nn.Dropout(dropout)
        self.trace = None

    def forward(self, x):
        batch, steps = x.shape[0], x.shape[1]
        zeros = x.new_zeros(batch, self.hidden)
        states = [(zeros, zeros) if self.kind == "lstm" else zeros for _ in self.cells]
        for t in range(steps):
            layer_input = x[:, t]
            for k, cell in enumerate(self.cells):
                states[k] = cell(layer_input, states[k])
                h = states[k][0] if self.kind == "lstm" else states[k]
                # Dropout between stacked cells only, as torch.nn.LSTM does between layers.
                layer_input = self.dropout(h) if k < len(self.cells) - 1 else h
            if self.trace is not None:
                self._record(states)
        return layer_input

    def _record(self, states):
        for k, state in enumerate(states):
            parts = {"h": state[0], "c": state[1]} if self.kind == "lstm" else {"h": state}
            for name, tensor in parts.items():
                self.trace.setdefault(f"{name} layer {k}", []).append(tensor[0].detach().cpu())


@torch.no_grad()
def sequence_states(module, x):
    """Hidden (and cell) states of every layer/direction of a sequence module over time.

    Steps `module` one time step at a time, carrying its state, so LSTM cell states (which
    nn.LSTM does not return per step) are visible. Only forward directions can be stepped this way;
    a bidirectional module reports its forward direction.
    x: (1, T, I). Returns {name: (units, T) tensor}.
    """
    directions = 2 if module.bidirectional else 1
    if directions == 2:
        out, _ = module(x)
        return {"h top layer (fwd | bwd)": out[0].t().cpu()}
    state, trace = None, {}
    for t in range(x.shape[1]):
        _, state = module(x[:, t : t + 1], state)
        parts = {"h": state[0], "c": state[1]} if isinstance(state, tuple) else {"h": state}
        for name, tensor in parts.items():
            for layer in range(tensor.shape[0]):
                trace.setdefault(f"{name} layer {layer}", []).append(tensor[layer, 0].cpu())
    return {name: torch.stack(steps, dim=1) for name, steps in trace.items()}


@torch.no_grad()
def cell_states(stack, x):
    """Like `sequence_states` for a CellStack: x (1, T, I) -> {name: (units, T) tensor}."""
    stack.trace = {}
    try:
        stack(x)
        return {name: torch.stack(steps, dim=1) for name, steps in stack.trace.items()}
    finally:
        stack.trace = None
