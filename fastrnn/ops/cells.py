"""The three recurrences as op schemas, and the one record every backend's op kernels take.

Dimensions: T time, B batch, H hidden (cell) size, P projection size, H_out = P if P > 0 else H,
G gates (LSTM 4, GRU 3, RNN 1).

Each cell has a forward op and a backward op in the `fastrnn` namespace:
    fastrnn::lstm  (gx, h0, c0, w_hh, w_hr?, lengths?, reverse, backend, store)
                   -> (output, h_n, c_n, reserve0, reserve1)
    fastrnn::gru   (gx, h0, w_hh, b_hh?, lengths?, reverse, backend, store) -> (output, h_n, reserve0)
    fastrnn::rnn   (gx, h0, w_hh, lengths?, reverse, nonlinearity, backend) -> (output, h_n)
and `fastrnn::<cell>_backward` taking what the forward saved plus the upstream gradients.

The reserve outputs are what a backend's backward needs from its forward (cuDNN's reserve space):
the Triton kernels' gate activations, the CPU path's per-step records, nothing for the reference
(its backward recomputes). Their shapes depend on the backend; with `store` false (no gradient
needed) they are empty, so an inference graph carries none. A fixed count per cell, not a list,
keeps the op's outputs plain tensors for export and ONNX.
"""

from dataclasses import dataclass, fields

import torch

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
RESERVES = {"lstm": 2, "gru": 1, "rnn": 0}

SCHEMAS = {
    "lstm": "(Tensor gx, Tensor h0, Tensor c0, Tensor w_hh, Tensor? w_hr, Tensor? lengths, "
            "bool reverse, str backend, bool store) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
    "gru": "(Tensor gx, Tensor h0, Tensor w_hh, Tensor? b_hh, Tensor? lengths, bool reverse, "
           "str backend, bool store) -> (Tensor, Tensor, Tensor)",
    "rnn": "(Tensor gx, Tensor h0, Tensor w_hh, Tensor? lengths, bool reverse, str nonlinearity, "
           "str backend) -> (Tensor, Tensor)",
}
# The forward's inputs it needs again (gx only for backends that say so), its output and reserves,
# then one upstream gradient per public output; returns one gradient per differentiable input
# (an empty tensor for an absent w_hr or b_hh).
BACKWARD_SCHEMAS = {
    "lstm": "(Tensor? gx, Tensor h0, Tensor c0, Tensor w_hh, Tensor? w_hr, Tensor? lengths, "
            "bool reverse, str backend, Tensor output, Tensor reserve0, Tensor reserve1, "
            "Tensor grad_output, Tensor grad_h_n, Tensor grad_c_n) "
            "-> (Tensor, Tensor, Tensor, Tensor, Tensor)",
    "gru": "(Tensor? gx, Tensor h0, Tensor w_hh, Tensor? b_hh, Tensor? lengths, bool reverse, "
           "str backend, Tensor output, Tensor reserve0, Tensor grad_output, Tensor grad_h_n) "
           "-> (Tensor, Tensor, Tensor, Tensor)",
    "rnn": "(Tensor? gx, Tensor h0, Tensor w_hh, Tensor? lengths, bool reverse, str nonlinearity, "
           "str backend, Tensor output, Tensor grad_output, Tensor grad_h_n) "
           "-> (Tensor, Tensor, Tensor)",
}
# The forward op's differentiable inputs, in the order its backward op returns their gradients.
DIFFERENTIABLE = {
    "lstm": ("gx", "h0", "c0", "w_hh", "w_hr"),
    "gru": ("gx", "h0", "w_hh", "b_hh"),
    "rnn": ("gx", "h0", "w_hh"),
}
# The forward op's arguments by name, in schema order.
ARGUMENTS = {
    "lstm": ("gx", "h0", "c0", "w_hh", "w_hr", "lengths", "reverse", "backend", "store"),
    "gru": ("gx", "h0", "w_hh", "b_hh", "lengths", "reverse", "backend", "store"),
    "rnn": ("gx", "h0", "w_hh", "lengths", "reverse", "nonlinearity", "backend"),
}


@dataclass(frozen=True)
class Call:
    """One recurrence call, whatever the cell: the record every backend's op kernels take.

    gx (T, B, G*H); h0 (B, H_out); c0 (B, H) for LSTM else None; w_hh (G*H, H_out); w_hr (P, H)
    or None; b_hh (3H,) for GRU with bias else None; lengths (B,) int64 or None.
    """

    cell: str
    backend: str
    gx: torch.Tensor | None
    h0: torch.Tensor
    c0: torch.Tensor | None
    w_hh: torch.Tensor
    w_hr: torch.Tensor | None = None
    b_hh: torch.Tensor | None = None
    lengths: torch.Tensor | None = None
    reverse: bool = False
    nonlinearity: str = "tanh"
    store: bool = False

    @property
    def hidden(self):
        return self.w_hh.shape[0] // GATES[self.cell]

    def tensors(self):
        """The call's tensor fields by name (None for absent ones)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name in ("gx", "h0", "c0", "w_hh", "w_hr", "b_hh", "lengths")}


def call_from_args(cell, args):
    """The Call of a forward op's positional arguments (schema order)."""
    named = dict(zip(ARGUMENTS[cell], args))
    return Call(cell=cell, c0=named.get("c0"), w_hr=named.get("w_hr"), b_hh=named.get("b_hh"),
                nonlinearity=named.get("nonlinearity", "tanh"), store=named.get("store", False),
                **{k: named[k] for k in ("backend", "gx", "h0", "w_hh", "lengths", "reverse")})


def args_from_call(call):
    """The forward op's positional arguments for `call`."""
    return tuple(getattr(call, name) for name in ARGUMENTS[call.cell])


def backward_args(call, output, reserve, grads):
    """The backward op's positional arguments: call's inputs (gx possibly None), the forward's
    output and reserves, and the upstream gradients of (output, h_n[, c_n])."""
    if call.cell == "lstm":
        head = (call.gx, call.h0, call.c0, call.w_hh, call.w_hr, call.lengths, call.reverse,
                call.backend)
    elif call.cell == "gru":
        head = (call.gx, call.h0, call.w_hh, call.b_hh, call.lengths, call.reverse, call.backend)
    else:
        head = (call.gx, call.h0, call.w_hh, call.lengths, call.reverse, call.nonlinearity,
                call.backend)
    return (*head, output, *reserve, *grads)


def call_from_backward_args(cell, args):
    """(Call, output, reserve tuple, grads tuple) of a backward op's positional arguments."""
    if cell == "lstm":
        gx, h0, c0, w_hh, w_hr, lengths, reverse, backend, *rest = args
        call = Call(cell, backend, gx, h0, c0, w_hh, w_hr=w_hr, lengths=lengths, reverse=reverse)
    elif cell == "gru":
        gx, h0, w_hh, b_hh, lengths, reverse, backend, *rest = args
        call = Call(cell, backend, gx, h0, None, w_hh, b_hh=b_hh, lengths=lengths, reverse=reverse)
    else:
        gx, h0, w_hh, lengths, reverse, nonlinearity, backend, *rest = args
        call = Call(cell, backend, gx, h0, None, w_hh, lengths=lengths, reverse=reverse,
                    nonlinearity=nonlinearity)
    count = RESERVES[cell]
    output, reserve, grads = rest[0], tuple(rest[1 : 1 + count]), tuple(rest[1 + count :])
    return call, output, reserve, grads


def public_outputs(cell, outputs):
    """(output, h_n[, c_n]) of a forward op's outputs (the reserves dropped)."""
    return tuple(outputs[: 3 if cell == "lstm" else 2])
