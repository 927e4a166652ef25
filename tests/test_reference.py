"""The reference recurrences (fastrnn.reference) themselves: torch.nn parity layer by layer,
per-sequence semantics of `lengths`, and gradcheck / gradgradcheck of cells and modules.

The module-level grid over every option lives in test_parity.py (backend 'reference' included).
"""

import pytest
import torch
import torch.nn.functional as F
from helpers import build
from torch.autograd import gradcheck, gradgradcheck
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence

from fastrnn import functional, reference
from fastrnn.testing import assert_close

T, B, IN, H = 5, 3, 4, 6
MODES = ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"]


def _torch_layer(mode, **kwargs):
    if mode.startswith("RNN"):
        return build("RNN", (IN, H), nonlinearity=mode[4:].lower(), **kwargs)
    return build(mode, (IN, H), **kwargs)


def _recurrence(mode, layer, x, h0, c0, lengths=None, reverse=False):
    """Run fastrnn.reference's recurrence with the weights of direction 0/1 of a torch.nn layer."""
    sfx = "_reverse" if reverse else ""
    w_ih, w_hh = getattr(layer, f"weight_ih_l0{sfx}"), getattr(layer, f"weight_hh_l0{sfx}")
    b_ih, b_hh = getattr(layer, f"bias_ih_l0{sfx}"), getattr(layer, f"bias_hh_l0{sfx}")
    index = 1 if reverse else 0
    if mode == "GRU":
        gx = F.linear(x, w_ih, b_ih)
        output, h_n = reference.gru_recurrence(gx, h0[index], w_hh, b_hh, lengths, reverse)
        return output, h_n, None
    gx = F.linear(x, w_ih, b_ih + b_hh)
    if mode == "LSTM":
        w_hr = getattr(layer, f"weight_hr_l0{sfx}", None)
        return reference.lstm_recurrence(gx, h0[index], c0[index], w_hh, w_hr, lengths, reverse)
    nonlinearity = mode[4:].lower()
    output, h_n = reference.rnn_recurrence(gx, h0[index], w_hh, nonlinearity, lengths, reverse)
    return output, h_n, None


@pytest.mark.parametrize(("mode", "proj_size"), [(m, 0) for m in MODES] + [("LSTM", 2)],
                         ids=MODES + ["LSTM-proj2"])
def test_recurrence_matches_torch_nn_both_directions(mode, proj_size):
    extra = {"proj_size": proj_size} if proj_size else {}
    layer = _torch_layer(mode, bidirectional=True, **extra)
    x = torch.randn(T, B, IN, dtype=torch.float64)
    h0 = torch.randn(2, B, proj_size or H, dtype=torch.float64)
    c0 = torch.randn(2, B, H, dtype=torch.float64)
    expected_out, expected_h = layer(x, (h0, c0) if mode == "LSTM" else h0)
    if mode == "LSTM":
        expected_h, expected_c = expected_h
    width = proj_size or H
    for reverse in (False, True):
        index = 1 if reverse else 0
        out, h_n, c_n = _recurrence(mode, layer, x, h0, c0, reverse=reverse)
        assert_close(out, expected_out[..., index * width:(index + 1) * width], "output")
        assert_close(h_n, expected_h[index], "h_n")
        if mode == "LSTM":
            assert_close(c_n, expected_c[index], "c_n")


@pytest.mark.parametrize("mode", MODES)
def test_lengths_equal_per_sequence_runs(mode):
    """With lengths, each sequence behaves as if run alone on its valid prefix; padding is 0."""
    layer = _torch_layer(mode, bidirectional=True)
    lengths = torch.tensor([3, 5, 1])
    x = torch.randn(T, B, IN, dtype=torch.float64)
    h0 = torch.randn(2, B, H, dtype=torch.float64)
    c0 = torch.randn(2, B, H, dtype=torch.float64)
    for reverse in (False, True):
        out, h_n, c_n = _recurrence(mode, layer, x, h0, c0, lengths, reverse)
        for b, n in enumerate(lengths.tolist()):
            hb, cb = h0[:, b : b + 1], c0[:, b : b + 1]
            alone_out, alone_h, alone_c = _recurrence(mode, layer, x[:n, b : b + 1], hb, cb,
                                                      reverse=reverse)
            assert_close(out[:n, b], alone_out[:, 0], f"output[{b}]")
            assert torch.equal(out[n:, b], torch.zeros_like(out[n:, b]))
            assert_close(h_n[b], alone_h[0], f"h_n[{b}]")
            if mode == "LSTM":
                assert_close(c_n[b], alone_c[0], f"c_n[{b}]")


# -- gradcheck / gradgradcheck ------------------------------------------------------------------

CELLS = {
    "LSTMCell": lambda x, h, c, *w: functional.lstm_cell(x, (h, c), *w, backend="reference"),
    "GRUCell": lambda x, h, c, *w: functional.gru_cell(x, h, *w, backend="reference"),
    "RNNCell_tanh": lambda x, h, c, *w: functional.rnn_cell(x, h, *w, backend="reference"),
    "RNNCell_relu": lambda x, h, c, *w: functional.rnn_cell(x, h, *w, nonlinearity="relu",
                                                          backend="reference"),
}
GATES = {"LSTMCell": 4, "GRUCell": 3, "RNNCell_tanh": 1, "RNNCell_relu": 1}


def _small(*shape):
    return torch.randn(shape, dtype=torch.float64, requires_grad=True)


def _fast_gradgradcheck(function, inputs):
    """gradgradcheck in fast mode (random projections of the Jacobian): seconds, not minutes."""
    return gradgradcheck(function, inputs, fast_mode=True)


CHECKS = [pytest.param(gradcheck, id="grad"), pytest.param(_fast_gradgradcheck, id="gradgrad")]


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("cell", list(CELLS))
def test_cell_gradcheck(cell, check):
    g = GATES[cell] * 3
    inputs = (_small(2, 2), _small(2, 3), _small(2, 3), _small(g, 2), _small(g, 3), _small(g),
              _small(g))
    assert check(CELLS[cell], inputs)


def _module_function(module, packed_lengths):
    names = [name for name, _ in module.named_parameters()]

    def run(x, h0, c0, *params):
        model_input = x if packed_lengths is None else pack_padded_sequence(
            x, packed_lengths, enforce_sorted=False)
        hx = (h0, c0) if module.mode == "LSTM" else h0
        output, hidden = functional_call(module, dict(zip(names, params)), (model_input, hx))
        output = output if packed_lengths is None else output.data
        return (output, *hidden) if module.mode == "LSTM" else (output, hidden)

    return run


MODULES = {
    "LSTM-L2-bidir-proj": ("LSTM", {"num_layers": 2, "bidirectional": True, "proj_size": 1}),
    "GRU-L2": ("GRU", {"num_layers": 2}),
    "RNN_relu-bidir": ("RNN", {"nonlinearity": "relu", "bidirectional": True}),
    "LSTM-bidir-nobias": ("LSTM", {"bidirectional": True, "bias": False}),
}


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed_lengths"])
@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("name", list(MODULES))
def test_module_gradcheck(name, check, packed):
    kind, kwargs = MODULES[name]
    module = build(kind, (2, 2), backend="reference", **kwargs)
    states = module.num_layers * (2 if module.bidirectional else 1)
    width = module.proj_size or module.hidden_size
    lengths = torch.tensor([3, 1]) if packed else None
    inputs = (_small(3, 2, 2), _small(states, 2, width), _small(states, 2, 2),
              *[p.detach().clone().requires_grad_() for p in module.parameters()])
    assert check(_module_function(module, lengths), inputs)


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("mode", MODES)
def test_functional_lengths_gradcheck(mode, check):
    """recurrent_stack with `lengths` (masked inside the recurrence) is differentiable twice."""
    g = {"LSTM": 4, "GRU": 3}.get(mode, 1) * 2
    weights = [(_small(g, 2), _small(g, 2), _small(g), _small(g), None) for _ in range(2)]
    flat = [w for weight in weights for w in weight if w is not None]
    lengths = torch.tensor([2, 3, 1])

    def run(x, h0, c0, *params):
        it = iter(params)
        rebuilt = [(next(it), next(it), next(it), next(it), None) for _ in range(2)]
        states = [h0, c0] if mode == "LSTM" else [h0]
        output, finals = functional.recurrent_stack(mode, x, states, rebuilt, bidirectional=True,
                                                    lengths=lengths, backend="reference")
        return (output, *finals)

    assert check(run, (_small(3, 3, 2), _small(2, 3, 2), _small(2, 3, 2), *flat))
