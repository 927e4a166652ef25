"""fastrnn.convert: swap every torch.nn recurrent layer of a model, sharing its Parameters."""

import warnings

import pytest
import torch
from torch import nn

import fastrnn
from fastrnn.testing import assert_all_close


class Encoder(nn.Module):
    """A custom module with nested recurrent layers of every kind (and a subclass to leave alone)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
        self.stack = nn.ModuleDict({
            "lstm": nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3),
            "gru": nn.GRU(6, 5, batch_first=True),
        })
        self.rnn = nn.RNN(5, 4, nonlinearity="relu", bias=False)
        self.cells = nn.ModuleList([nn.LSTMCell(4, 3), nn.GRUCell(4, 3), nn.RNNCell(4, 3, False)])

    def forward(self, x):
        y, (h, c) = self.stack["lstm"](self.body(x))
        y, h2 = self.stack["gru"](y.transpose(0, 1))
        y, h3 = self.rnn(y.transpose(0, 1))
        hc = self.cells[0](y[-1])
        return [y, h, c, h2, h3, *hc, self.cells[1](y[-1]), self.cells[2](y[-1], hc[0])]


def _run(model, x, upstream_seed=3):
    outputs = model(x)
    generator = torch.Generator().manual_seed(upstream_seed)
    loss = sum((o * torch.randn(o.shape, generator=generator, dtype=o.dtype)).sum()
               for o in outputs)
    loss.backward()
    results = {f"out{i}": o for i, o in enumerate(outputs)}
    results.update({f"grad.{n}": p.grad for n, p in model.named_parameters()})
    return results


def _fresh_model():
    torch.manual_seed(0)
    return Encoder().double()


def test_convert_nested_model_matches_and_shares_parameters():
    x = torch.randn(5, 2, 4, dtype=torch.float64)
    expected = _run(_fresh_model(), x)
    model = _fresh_model()
    parameters = dict(model.named_parameters())
    converted = fastrnn.convert(model, backend="reference")
    assert converted is model
    assert type(model.stack["lstm"]) is fastrnn.LSTM
    assert type(model.stack["gru"]) is fastrnn.GRU
    assert type(model.rnn) is fastrnn.RNN and model.rnn.nonlinearity == "relu"
    assert [type(c) for c in model.cells] == [fastrnn.LSTMCell, fastrnn.GRUCell, fastrnn.RNNCell]
    assert model.stack["lstm"].backend == "reference"
    assert repr(model.stack["lstm"]).startswith("LSTM(4, 6, proj_size=3, num_layers=2")
    after = dict(model.named_parameters())
    assert list(after) == list(parameters)
    assert all(after[name] is parameters[name] for name in parameters)
    assert_all_close(_run(model, x), expected)


def test_optimizer_built_before_convert_still_trains_the_model():
    model = _fresh_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    fastrnn.convert(model)
    x = torch.randn(5, 2, 4, dtype=torch.float64)
    before = model.stack["lstm"].weight_hh_l1_reverse.detach().clone()
    optimizer.zero_grad()
    sum(o.sum() for o in model(x)).backward()
    optimizer.step()
    assert not torch.equal(model.stack["lstm"].weight_hh_l1_reverse, before)


def test_convert_back_to_torch():
    x = torch.randn(5, 2, 4, dtype=torch.float64)
    expected = _run(_fresh_model(), x)
    model = _fresh_model()
    parameters = dict(model.named_parameters())
    fastrnn.convert(fastrnn.convert(model), to="torch")
    assert type(model.stack["lstm"]) is nn.LSTM and type(model.cells[2]) is nn.RNNCell
    assert all(p is parameters[n] for n, p in model.named_parameters())
    assert_all_close(_run(model, x), expected)


def test_convert_a_bare_module_returns_the_twin_and_keeps_mode():
    lstm = nn.LSTM(3, 5, 2, dropout=0.2).eval()
    converted = fastrnn.convert(lstm)
    assert type(converted) is fastrnn.LSTM and not converted.training
    assert converted.dropout == 0.2
    assert converted.weight_ih_l0 is lstm.weight_ih_l0
    back = fastrnn.convert(converted, to="torch")
    assert type(back) is nn.LSTM and back.weight_ih_l0 is lstm.weight_ih_l0
    x = torch.randn(4, 2, 3)
    assert torch.equal(back(x)[0], lstm(x)[0])


def test_subclasses_are_left_alone():
    class MyLSTM(nn.LSTM):
        pass

    model = nn.Sequential(MyLSTM(3, 4))
    assert type(fastrnn.convert(model)[0]) is MyLSTM


def test_convert_rejects_unknown_target():
    with pytest.raises(ValueError, match="^convert\\(to=...\\) takes 'fastrnn' or 'torch', got 'jax'$"):
        fastrnn.convert(nn.LSTM(3, 4), to="jax")


def test_convert_does_not_repeat_the_single_layer_dropout_warning():
    with pytest.warns(UserWarning, match="dropout option adds dropout"):
        lstm = nn.LSTM(3, 4, dropout=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = fastrnn.convert(fastrnn.convert(lstm), to="torch")
    assert back.dropout == 0.2
