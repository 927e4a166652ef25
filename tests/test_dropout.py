"""Inter-layer dropout (contract 1.4): outputs of every layer but the last, training mode only,
inverted scaling 1/(1-p), a fresh mask per element and step; final states are pre-dropout."""

import pytest
import torch
import torch.nn.functional as F

import fastrnn

P = 0.3


def _probe(backend, p=P):
    """A 2-layer ReLU RNN whose layer 1 copies its input: out = relu(dropout(layer0 output)).

    Layer 0 has positive weights and biases so its outputs are positive (for inputs >= 0);
    layer 1 has W_ih = I, W_hh = 0 and zero biases, so train/eval output ratios expose the
    dropout mask and its scale.
    """
    rnn = fastrnn.RNN(8, 16, 2, "relu", dropout=p, backend=backend)
    with torch.no_grad():
        rnn.weight_ih_l0.abs_()
        rnn.weight_hh_l0.abs_()
        rnn.bias_ih_l0.fill_(0.5)
        rnn.weight_ih_l1.copy_(torch.eye(16))
        rnn.weight_hh_l1.zero_()
        rnn.bias_ih_l1.zero_()
        rnn.bias_hh_l1.zero_()
    return rnn


def test_eval_is_deterministic_and_equals_no_dropout(backend):
    torch.manual_seed(0)
    lstm = fastrnn.LSTM(4, 6, 3, dropout=0.5, backend=backend).eval()
    plain = fastrnn.LSTM(4, 6, 3, backend=backend)
    plain.load_state_dict(lstm.state_dict())
    x = torch.randn(5, 2, 4)
    first, second, reference = lstm(x), lstm(x), plain(x)
    assert torch.equal(first[0], second[0])
    assert torch.equal(first[0], reference[0]) and torch.equal(first[1][1], reference[1][1])


def test_train_masks_with_the_right_rate_and_scale(backend):
    rnn = _probe(backend)
    x = torch.rand(12, 16, 8)
    expected, _ = rnn.eval()(x)
    assert bool((expected > 0).all())
    rnn.train()
    torch.manual_seed(1)
    got, h_n = rnn(x)
    ratio = got / expected
    kept = ratio != 0
    assert torch.allclose(ratio[kept], torch.full_like(ratio[kept], 1 / (1 - P)))
    assert abs(1 - float(kept.double().mean()) - P) < 0.04
    # a fresh mask per step and per element: not the same mask at every step
    assert not torch.equal(kept[0], kept[1])
    assert torch.equal(h_n[1], got[-1])


def test_reference_dropout_is_torch_dropout_between_layers():
    """The reference draws its mask with F.dropout on the layer-0 output: replay it by hand."""
    torch.manual_seed(0)
    lstm = fastrnn.LSTM(4, 6, 2, dropout=0.4, backend="reference")
    layer0 = fastrnn.LSTM(4, 6, backend="reference")
    layer1 = fastrnn.LSTM(6, 6, backend="reference")
    for k, layer in enumerate((layer0, layer1)):
        layer.load_state_dict({n.replace(f"_l{k}", "_l0"): p for n, p in lstm.state_dict().items()
                               if n.endswith(f"_l{k}")})
    x = torch.randn(5, 3, 4)
    torch.manual_seed(7)
    output, (h_n, c_n) = lstm(x)
    y0, (h0, c0) = layer0(x)
    torch.manual_seed(7)
    y1, (h1, c1) = layer1(F.dropout(y0, 0.4, training=True))
    assert torch.equal(output, y1)
    assert torch.equal(h_n, torch.cat([h0, h1])) and torch.equal(c_n, torch.cat([c0, c1]))


def test_seeded_runs_repeat_and_differ_from_eval(backend):
    gru = fastrnn.GRU(4, 6, 2, dropout=0.5, backend=backend)
    x = torch.randn(5, 3, 4)
    torch.manual_seed(3)
    first, _ = gru(x)
    torch.manual_seed(3)
    second, _ = gru(x)
    assert torch.equal(first, second)
    assert not torch.equal(first, gru.eval()(x)[0])


def test_changing_dropout_after_construction_takes_effect(backend):
    rnn = _probe(backend, p=0.0)
    x = torch.rand(6, 4, 8)
    expected, _ = rnn.eval()(x)
    rnn.train()
    assert torch.equal(rnn(x)[0], expected)
    rnn.dropout = 1.0
    assert torch.count_nonzero(rnn(x)[0]) == 0
    rnn.dropout = 0.5
    assert not torch.equal(rnn(x)[0], expected)


def test_final_states_are_pre_dropout(backend):
    lstm = fastrnn.LSTM(4, 6, 2, dropout=0.5, backend=backend)
    x = torch.randn(5, 3, 4)
    torch.manual_seed(5)
    output, (h_n, c_n) = lstm(x)
    _, (h_eval, c_eval) = lstm.eval()(x)
    assert torch.equal(h_n[0], h_eval[0]) and torch.equal(c_n[0], c_eval[0])
    assert torch.equal(output[-1], h_n[-1])


def test_single_layer_dropout_is_a_no_op(backend):
    with pytest.warns(UserWarning, match="dropout option adds dropout"):
        gru = fastrnn.GRU(4, 6, dropout=0.5, backend=backend)
    x = torch.randn(5, 3, 4)
    assert torch.equal(gru(x)[0], gru.eval()(x)[0])
