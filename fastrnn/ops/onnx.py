"""ONNX export: each layer-direction becomes ONNX's own LSTM, GRU or RNN operator.

Dimensions: T time, B batch, I input size, H hidden size, G gates.

The recurrence ops take the input projection gx = x W_ih^T + b already computed; ONNX's operators
take x and W_ih themselves. So while torch.onnx.export traces (torch.onnx.is_in_onnx_export()),
fastrnn.functional runs each layer-direction as a `fastrnn::onnx_<cell>` op that keeps the
projection inside, and `translation_table()` maps those ops to ONNX nodes with the weights
re-laid-out as ONNX expects:
    LSTM  torch's gate blocks (i, f, g, o) -> ONNX's (i, o, f, c); B = [b_ih, b_hh] in that order
    GRU   (r, z, n) -> (z, r, h), linear_before_reset=1 (torch's b_hn inside r * (...))
    RNN   one gate; activations Tanh or Relu
one node per layer and direction (direction 'forward' or 'reverse'; a bidirectional layer's two
outputs are concatenated as in torch), `lengths` as sequence_lens, dynamic T and B. An LSTM with
proj_size has no ONNX equivalent and is refused when the export traces it.

    program = fastrnn.ops.onnx.export(model, (x,), dynamic_shapes=({0: "T", 1: "B"},))
    program.save("model.onnx")

Needs the `onnx` and `onnxscript` packages (torch.onnx's own requirements).
"""

import torch
import torch.nn.functional as F

from fastrnn.ops import library

OPS = {
    "lstm": "onnx_lstm(Tensor x, Tensor w_ih, Tensor w_hh, Tensor? b_ih, Tensor? b_hh, Tensor h0, "
            "Tensor c0, Tensor? lengths, bool reverse) -> (Tensor, Tensor, Tensor)",
    "gru": "onnx_gru(Tensor x, Tensor w_ih, Tensor w_hh, Tensor? b_ih, Tensor? b_hh, Tensor h0, "
           "Tensor? lengths, bool reverse) -> (Tensor, Tensor)",
    "rnn": "onnx_rnn(Tensor x, Tensor w_ih, Tensor w_hh, Tensor? b_ih, Tensor? b_hh, Tensor h0, "
           "Tensor? lengths, bool reverse, str nonlinearity) -> (Tensor, Tensor)",
}
# Torch's gate blocks in ONNX's order.
GATE_ORDER = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "rnn": (0,)}
PROJECTION_ERROR = ("ONNX's LSTM operator has no projection (proj_size > 0): an LSTM with proj_size "
                    "cannot be exported to ONNX; export a model without proj_size")


def _eager(cell):
    """The op's meaning in PyTorch (the reference recurrence after the projection)."""
    from fastrnn import reference

    def impl(x, w_ih, w_hh, b_ih, b_hh, h0, *rest):
        bias = b_ih if b_ih is None or b_hh is None or cell == "gru" else b_ih + b_hh
        gx = F.linear(x, w_ih, bias)
        if cell == "lstm":
            c0, lengths, reverse = rest
            result = reference.lstm_recurrence(gx, h0, c0, w_hh, None, lengths, reverse)
        elif cell == "gru":
            lengths, reverse = rest
            result = reference.gru_recurrence(gx, h0, w_hh, b_hh, lengths, reverse)
        else:
            lengths, reverse, nonlinearity = rest
            result = reference.rnn_recurrence(gx, h0, w_hh, nonlinearity, lengths, reverse)
        return tuple(t.clone() for t in result)

    return impl


def _fake(cell):
    def fake(x, w_ih, w_hh, b_ih, b_hh, h0, *rest):
        steps, batch = x.shape[:2]
        hidden = w_hh.shape[1]
        states = (x.new_empty(batch, hidden),) * (2 if cell == "lstm" else 1)
        return (x.new_empty(steps, batch, hidden), *(s.clone() for s in states))

    return fake


def _define():
    for cell, schema in OPS.items():
        name = schema.split("(", 1)[0]
        library._library.define(schema)
        library._library.impl(name, _eager(cell), "CompositeExplicitAutograd")
        torch.library.register_fake(f"{library.NAMESPACE}::{name}", _fake(cell),
                                    lib=library._library)


_define()


def run_direction(mode, layer_input, states, weight, lengths, reverse):
    """One layer-direction as a `fastrnn::onnx_<cell>` op (functional's _run_direction while
    torch.onnx.export traces): layer_input (T, B, X) -> (output (T, B, H), final states list)."""
    w_ih, w_hh, b_ih, b_hh, w_hr = weight
    if w_hr is not None:
        raise NotImplementedError(PROJECTION_ERROR)
    ops = torch.ops.fastrnn
    if mode == "LSTM":
        output, h_n, c_n = ops.onnx_lstm(layer_input, w_ih, w_hh, b_ih, b_hh, states[0], states[1],
                                         lengths, reverse)
        return output, [h_n, c_n]
    if mode == "GRU":
        output, h_n = ops.onnx_gru(layer_input, w_ih, w_hh, b_ih, b_hh, states[0], lengths, reverse)
        return output, [h_n]
    nonlinearity = "tanh" if mode == "RNN_TANH" else "relu"
    output, h_n = ops.onnx_rnn(layer_input, w_ih, w_hh, b_ih, b_hh, states[0], lengths, reverse,
                               nonlinearity)
    return output, [h_n]


def translation_table():
    """{op overload: ONNX translation} for torch.onnx.export(custom_translation_table=...)."""
    from onnxscript import opset18 as op

    def gates(weight, cell):
        """weight (G*H, ...) with its gate blocks in ONNX's order, as (1, G*H, ...)."""
        order = GATE_ORDER[cell]
        if len(order) > 1:
            hidden = int(weight.shape[0]) // len(order)
            rows = [k * hidden + j for k in order for j in range(hidden)]
            weight = op.Gather(weight, op.Constant(value_ints=rows), axis=0)
        return op.Unsqueeze(weight, op.Constant(value_ints=[0]))

    def common(cell, x, w_ih, w_hh, b_ih, b_hh, lengths):
        """ONNX's X, W, R, B and sequence_lens inputs (None where absent)."""
        bias = None
        if b_ih is not None and b_hh is not None:
            bias = op.Concat(gates(b_ih, cell), gates(b_hh, cell), axis=1)
        sequence_lens = None if lengths is None else op.Cast(lengths, to=6)  # int32
        return x, gates(w_ih, cell), gates(w_hh, cell), bias, sequence_lens

    def outputs(y, *states):
        """ONNX's (T, 1, B, H) and (1, B, H) outputs as torch's (T, B, H) and (B, H)."""
        axis = op.Constant(value_ints=[1])
        first = op.Constant(value_ints=[0])
        return (op.Squeeze(y, axis), *(op.Squeeze(s, first) for s in states))

    def first_axis(t):
        return op.Unsqueeze(t, op.Constant(value_ints=[0]))

    def lstm(x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, reverse: bool):
        inputs = common("lstm", x, w_ih, w_hh, b_ih, b_hh, lengths)
        y, y_h, y_c = op.LSTM(*inputs, first_axis(h0), first_axis(c0),
                              direction="reverse" if reverse else "forward",
                              hidden_size=_hidden(w_hh))
        return outputs(y, y_h, y_c)

    def gru(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reverse: bool):
        inputs = common("gru", x, w_ih, w_hh, b_ih, b_hh, lengths)
        y, y_h = op.GRU(*inputs, first_axis(h0), direction="reverse" if reverse else "forward",
                        hidden_size=_hidden(w_hh), linear_before_reset=1)
        return outputs(y, y_h)

    def rnn(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reverse: bool, nonlinearity: str):
        inputs = common("rnn", x, w_ih, w_hh, b_ih, b_hh, lengths)
        y, y_h = op.RNN(*inputs, first_axis(h0), direction="reverse" if reverse else "forward",
                        hidden_size=_hidden(w_hh), activations=[nonlinearity.capitalize()],
                        )
        return outputs(y, y_h)

    def refuse(cell):
        # torch.onnx retries a failed trace in other ways, some without is_in_onnx_export():
        # what reaches the translation then is the recurrence op itself, refused with the reason.
        def translate(*args):
            if cell == "lstm" and args[4] is not None:
                raise NotImplementedError(PROJECTION_ERROR)
            raise NotImplementedError(
                f"fastrnn::{cell} reached the ONNX translation: export with "
                f"fastrnn.ops.onnx.export (or torch.onnx.export(..., dynamo=True, "
                f"custom_translation_table=fastrnn.ops.onnx.translation_table()))")

        return translate

    ops = torch.ops.fastrnn
    return {ops.onnx_lstm.default: lstm, ops.onnx_gru.default: gru, ops.onnx_rnn.default: rnn,
            **{library.op(cell): refuse(cell) for cell in ("lstm", "gru", "rnn")}}


def _hidden(w_hh):
    """H from w_hh (G*H, H) in the ONNX graph: its static last dimension."""
    return int(w_hh.shape[-1])


def export(model, args, f=None, **kwargs):
    """torch.onnx.export(model, args, f, dynamo=True, custom_translation_table=fastrnn's) with
    any other torch.onnx.export keyword argument (dynamic_shapes, input_names, opset_version...).

    Returns the torch.onnx.ONNXProgram (saved to `f` when given).
    """
    table = {**translation_table(), **kwargs.pop("custom_translation_table", {})}
    return torch.onnx.export(model, args, f, dynamo=True, custom_translation_table=table, **kwargs)
