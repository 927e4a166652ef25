"""Module plumbing of the drop-ins (contract 1.3, 1.5, 1.7, 1.8): parameters, init, repr,
weights read per forward (functional_call, weight norm, WeightDrop), dtype moves, autocast."""

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import build
from torch import nn
from torch.func import functional_call

import fastrnn
from fastrnn.testing import assert_close

CONFIGS = {
    "LSTM": ("LSTM", (3, 5), {}),
    "LSTM-L2-bidir-proj": ("LSTM", (3, 5), {"num_layers": 2, "bidirectional": True,
                                            "proj_size": 2}),
    "LSTM-nobias-proj": ("LSTM", (3, 5), {"bias": False, "proj_size": 2}),
    "GRU-L2-nobias-batch_first-dropout": ("GRU", (3, 5), {"num_layers": 2, "bias": False,
                                                          "batch_first": True, "dropout": 0.5}),
    "RNN-relu-L3-bidir": ("RNN", (3, 5), {"num_layers": 3, "nonlinearity": "relu",
                                          "bidirectional": True}),
    "RNN-positional-relu": ("RNN", (3, 5, 2, "relu"), {}),
    "LSTMCell": ("LSTMCell", (3, 5), {}),
    "LSTMCell-nobias": ("LSTMCell", (3, 5), {"bias": False}),
    "GRUCell": ("GRUCell", (3, 5), {}),
    "RNNCell-relu-nobias": ("RNNCell", (3, 5), {"nonlinearity": "relu", "bias": False}),
}
CONFIG_PARAMS = [pytest.param(*value, id=key) for key, value in CONFIGS.items()]


def _pair(kind, args, kwargs, dtype=torch.float32):
    ours = build(kind, args, dtype=dtype, backend="auto", **kwargs)
    theirs = build(kind, args, dtype=dtype, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


@pytest.mark.parametrize(("kind", "args", "kwargs"), CONFIG_PARAMS)
def test_parameters_match_torch_nn(kind, args, kwargs):
    ours, theirs = _pair(kind, args, kwargs)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [
        (n, p.shape) for n, p in theirs.named_parameters()]
    assert all(type(p) is nn.Parameter for p in ours.parameters())
    if kind.endswith("Cell") and not kwargs.get("bias", True):
        assert ours.bias_ih is None and ours.bias_hh is None


@pytest.mark.parametrize(("kind", "args", "kwargs"), CONFIG_PARAMS)
def test_repr_and_attributes_match_torch_nn(kind, args, kwargs):
    ours, theirs = _pair(kind, args, kwargs)
    assert repr(ours) == repr(theirs)
    assert ours.__constants__ == theirs.__constants__
    for attr in ("mode", "nonlinearity", "proj_size", "input_size", "hidden_size", "num_layers",
                 "bias", "batch_first", "dropout", "bidirectional"):
        assert getattr(ours, attr, None) == getattr(theirs, attr, None), attr
    assert "backend='torch'" in repr(build(kind, args, backend="torch", **kwargs))


@pytest.mark.parametrize(("kind", "args", "kwargs"),
                         [p for p in CONFIG_PARAMS if "Cell" not in p.id])
def test_flat_weight_plumbing_matches_torch_nn(kind, args, kwargs):
    ours, theirs = _pair(kind, args, kwargs)
    assert ours._flat_weights_names == theirs._flat_weights_names
    assert ours._all_weights == theirs._all_weights
    assert all(a is b for a, b in zip(ours._flat_weights, ours.parameters()))
    assert [[w.shape for w in layer] for layer in ours.all_weights] == [
        [w.shape for w in layer] for layer in theirs.all_weights]
    assert ours.flatten_parameters() is None


def test_not_a_subclass_of_torch_nn():
    """Documented decision: a separate hierarchy (no Dynamo graph break, no type dispatch)."""
    for kind in ("LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"):
        module = getattr(fastrnn, kind)(3, 5)
        assert not isinstance(module, getattr(nn, kind))
        assert not isinstance(module, (nn.RNNBase, nn.RNNCellBase))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
def test_dynamic_quantization_leaves_fastrnn_layers_alone():
    """Quantization maps exact torch.nn types, so fastrnn layers stay float and keep working."""
    model = nn.Sequential(fastrnn.LSTM(3, 4), nn.Linear(4, 2))
    quantized = torch.ao.quantization.quantize_dynamic(model, {nn.LSTM, nn.Linear})
    assert type(quantized[0]) is fastrnn.LSTM
    assert type(quantized[1]) is not nn.Linear
    assert quantized[0](torch.randn(2, 1, 3))[0].shape == (2, 1, 4)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"])
def test_init_is_uniform_with_the_hidden_size_bound(kind):
    kwargs = {"proj_size": 16} if kind == "LSTM" else {}
    module = getattr(fastrnn, kind)(48, 64, **kwargs)
    bound = 1 / math.sqrt(64)
    values = torch.cat([p.detach().flatten() for p in module.parameters()])
    assert values.numel() > 5000
    assert -bound <= float(values.min()) and float(values.max()) <= bound
    assert float(values.max()) > 0.95 * bound and float(values.min()) < -0.95 * bound
    assert abs(float(values.std()) - bound / math.sqrt(3)) < 0.03 * bound
    assert abs(float(values.mean())) < 0.03 * bound


@pytest.mark.parametrize("kind", ["LSTM", "GRUCell"])
def test_factory_kwargs(kind):
    module = getattr(fastrnn, kind)(3, 5, device="meta", dtype=torch.float64)
    assert {(p.device.type, p.dtype) for p in module.parameters()} == {("meta", torch.float64)}
    cpu = getattr(fastrnn, kind)(3, 5, device=torch.device("cpu"), dtype=torch.bfloat16)
    assert {(p.device.type, p.dtype) for p in cpu.parameters()} == {("cpu", torch.bfloat16)}


def _run(module, x, hx=None):
    output, hidden = module(x, hx)
    return output, hidden[0] if isinstance(hidden, tuple) else hidden


@pytest.mark.parametrize("move", [lambda m: m.double(), lambda m: m.to(torch.float64)],
                         ids=["double", "to_float64"])
def test_dtype_move(move):
    ours, theirs = _pair("LSTM", (3, 5), {"num_layers": 2, "proj_size": 2})
    move(ours)
    move(theirs)
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    for a, e in zip(_run(ours, x), _run(theirs, x)):
        assert a.dtype == torch.float64
        assert_close(a, e)


def test_functional_call_uses_the_given_weights():
    ours, theirs = _pair("GRU", (3, 5), {"num_layers": 2}, dtype=torch.float64)
    replacement = {n: torch.randn_like(p) for n, p in ours.named_parameters()}
    before = {n: p.detach().clone() for n, p in ours.named_parameters()}
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    got = functional_call(ours, replacement, (x,))
    expected = functional_call(theirs, replacement, (x,))
    for a, e in zip(got, expected):
        assert_close(a, e)
    assert all(torch.equal(before[n], p) for n, p in ours.named_parameters())
    assert_close(ours(x)[0], theirs(x)[0])


@pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated:FutureWarning")
@pytest.mark.parametrize("api", ["parametrizations", "legacy"])
def test_weight_norm(api):
    ours, theirs = _pair("LSTM", (3, 5), {"num_layers": 2}, dtype=torch.float64)
    for module in (ours, theirs):
        if api == "parametrizations":
            nn.utils.parametrizations.weight_norm(module, "weight_hh_l0")
        else:
            nn.utils.weight_norm(module, "weight_hh_l0")
    names = [n for n, _ in ours.named_parameters()]
    assert names == [n for n, _ in theirs.named_parameters()]
    if api == "legacy":
        # torch's test_rnn_weight_norm counts the remaining Parameters among the flat weights.
        count = sum(isinstance(w, nn.Parameter) for w in ours._flat_weights)
        assert count == len(ours._flat_weights_names) - 1
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    grads = []
    for module in (ours, theirs):
        output, _ = _run(module, x)
        output.sum().backward()
        grads.append({n: p.grad for n, p in module.named_parameters()})
    assert_close(_run(ours, x)[0], _run(theirs, x)[0])
    for name in names:
        assert_close(grads[0][name], grads[1][name], name)


def test_weightdrop_style_plain_tensor_assignment():
    """AWD-LSTM's WeightDrop: delete the Parameter, assign a plain tensor before each forward."""
    ours, theirs = _pair("LSTM", (3, 5), {}, dtype=torch.float64)
    mask = (torch.rand(20, 5) > 0.3).to(torch.float64)
    raws = []
    for module in (ours, theirs):
        raw = nn.Parameter(module.weight_hh_l0.detach().clone())
        del module.weight_hh_l0
        if module is ours:
            assert ours._flat_weights[1] is None
        module.register_parameter("weight_hh_l0_raw", raw)
        module.weight_hh_l0 = raw * mask
        raws.append(raw)
    assert ours._flat_weights[1] is ours.weight_hh_l0
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    outputs = [_run(module, x)[0] for module in (ours, theirs)]
    assert_close(outputs[0], outputs[1])
    for output in outputs:
        output.sum().backward()
    assert_close(raws[0].grad, raws[1].grad)
    assert torch.equal(raws[0].grad == 0, (mask == 0) | (raws[0].grad == 0))


def test_noncontiguous_input_and_hx():
    ours, theirs = _pair("GRU", (3, 5), {"num_layers": 2}, dtype=torch.float64)
    x = torch.randn(2, 4, 3, dtype=torch.float64).transpose(0, 1)
    h = torch.randn(2, 5, 2, dtype=torch.float64).transpose(1, 2)
    assert not x.is_contiguous() and not h.is_contiguous()
    for a, e in zip(_run(ours, x, h), _run(theirs, x, h)):
        assert_close(a, e)


def test_overridable_checks_are_called_and_match_torch():
    """Subclasses override check_forward_args & co. (contract 1.7); forward goes through them."""
    calls = []

    class Checked(fastrnn.GRU):
        def check_forward_args(self, input, hidden, batch_sizes):
            calls.append((tuple(input.shape), tuple(hidden.shape), batch_sizes))
            super().check_forward_args(input, hidden, batch_sizes)

    Checked(3, 5, 2)(torch.randn(4, 2, 3))
    assert calls == [((4, 2, 3), (2, 2, 5), None)]
    ours, theirs = _pair("LSTM", (3, 5), {"num_layers": 2, "proj_size": 2})
    x = torch.randn(4, 2, 3)
    assert ours.get_expected_hidden_size(x, None) == theirs.get_expected_hidden_size(x, None)
    assert ours.get_expected_cell_size(x, None) == theirs.get_expected_cell_size(x, None)
    hx = (torch.randn(2, 3, 2), torch.randn(2, 3, 5))
    permutation = torch.tensor([2, 0, 1])
    for a, e in zip(ours.permute_hidden(hx, permutation), theirs.permute_hidden(hx, permutation)):
        assert torch.equal(a, e)


def test_replicate_for_data_parallel_copies_the_weight_lists():
    lstm = fastrnn.LSTM(3, 5, 2)
    replica = lstm._replicate_for_data_parallel()
    assert replica._flat_weights_names == lstm._flat_weights_names
    assert replica._flat_weights_names is not lstm._flat_weights_names
    assert replica._all_weights is not lstm._all_weights


def test_int_bidirectional_runs_as_true():
    """torch.nn accepts bidirectional=1 but its forward then fails in _VF; fastrnn runs it."""
    ours = build("LSTM", (3, 5), backend="auto", bidirectional=1)
    theirs = build("LSTM", (3, 5), bidirectional=True)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    for a, e in zip(_flatten(ours(x)), _flatten(theirs(x)), strict=True):
        assert_close(a, e)


def test_backward_in_eval_mode():
    lstm = fastrnn.LSTM(3, 5, 2).eval()
    output, (h, c) = lstm(torch.randn(4, 2, 3, requires_grad=True))
    (output.sum() + c.sum()).backward()
    assert all(p.grad is not None for p in lstm.parameters())


def test_bidirectional_final_states_layout():
    lstm = fastrnn.LSTM(3, 5, 2, bidirectional=True, backend="reference")
    output, (h_n, _) = lstm(torch.randn(4, 2, 3))
    assert torch.equal(output[-1, :, :5], h_n[-2])
    assert torch.equal(output[0, :, 5:], h_n[-1])


def test_packed_output_padding_is_zero():
    lstm = fastrnn.LSTM(3, 5, bidirectional=True)
    sequences = [torch.randn(n, 3) for n in (2, 4, 1)]
    packed = nn.utils.rnn.pack_sequence(sequences, enforce_sorted=False)
    padded, lengths = nn.utils.rnn.pad_packed_sequence(lstm(packed)[0])
    assert lengths.tolist() == [2, 4, 1]
    for b, n in enumerate(lengths.tolist()):
        assert torch.count_nonzero(padded[n:, b]) == 0


def _flatten(result):
    """A module result ((out, h), (out, (h, c)), h or (h, c)) as a flat list of tensors."""
    if torch.is_tensor(result):
        return [result]
    return [t for item in result for t in _flatten(item)]


@pytest.mark.parametrize(("kind", "torch_dtype"), [
    ("LSTM", torch.bfloat16), ("RNN", torch.bfloat16), ("RNNCell", torch.bfloat16),
    ("GRU", torch.float32), ("LSTMCell", torch.float32), ("GRUCell", torch.float32),
])
def test_autocast_cpu_bfloat16(kind, torch_dtype):
    """fastrnn runs the whole recurrence in the autocast dtype: bf16 results for every kind.

    torch.nn on CPU matches that for LSTM, RNN and RNNCell, but returns float32 for GRU, LSTMCell
    and GRUCell (only their GEMMs autocast; the gate math then promotes back to float32). That
    difference is documented; fastrnn's values are within the bfloat16 tolerance of float64.
    """
    ours, theirs = _pair(kind, (4, 6), {})
    x = torch.randn(2, 4) if kind.endswith("Cell") else torch.randn(3, 2, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, expected = _flatten(ours(x)), _flatten(theirs(x))
    assert {t.dtype for t in expected} == {torch_dtype}
    assert {t.dtype for t in got} == {torch.bfloat16}
    oracle = _flatten(theirs.double()(x.double()))
    for index, (a, e) in enumerate(zip(got, oracle)):
        assert_close(a, e, f"result[{index}]")


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "LSTMCell"])
def test_autocast_leaves_float64_alone(kind):
    """Autocast never casts float64 (not an eligible dtype): a double module stays double."""
    ours, theirs = _pair(kind, (4, 6), {}, dtype=torch.float64)
    x = torch.randn(2, 4, dtype=torch.float64) if kind.endswith("Cell") else torch.randn(
        3, 2, 4, dtype=torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, expected = _flatten(ours(x)), _flatten(theirs(x))
    for a, e in zip(got, expected, strict=True):
        assert a.dtype == e.dtype == torch.float64
        assert_close(a, e)


def test_nan_weight_propagates_to_the_output():
    gru = fastrnn.GRU(3, 5)
    with torch.no_grad():
        gru.weight_hh_l0[0, 0] = float("nan")
    output, h_n = gru(torch.randn(4, 2, 3), torch.randn(1, 2, 5))
    assert output[1:].isnan().all() and h_n.isnan().all()


def test_cell_default_hx_equals_zeros():
    cell = fastrnn.LSTMCell(3, 5)
    x = torch.randn(2, 3)
    zeros = torch.zeros(2, 5)
    for a, e in zip(cell(x), cell(x, (zeros, zeros))):
        assert torch.equal(a, e)
    assert F.mse_loss(cell(x[0])[0], cell(x)[0][0]) < 1e-12


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("backend", ["reference", "torch"])
def test_compiles_without_graph_breaks(backend):
    """The point of not subclassing torch.nn.LSTM: Dynamo traces the module in one graph."""
    torch._dynamo.reset()
    lstm = fastrnn.LSTM(3, 4, 2, bidirectional=True, proj_size=2, backend=backend)
    x = torch.randn(5, 2, 3)
    compiled = torch.compile(lstm, backend="eager", fullgraph=True)
    for got, expected in zip(_flatten(compiled(x)), _flatten(lstm(x)), strict=True):
        assert torch.equal(got, expected)


def test_compiles_with_auto_backend_and_its_log_line(monkeypatch):
    """backend='auto' logs its choice once; the logging call must not break the graph."""
    monkeypatch.setattr(fastrnn.backends, "_logged_auto_choices", set())
    torch._dynamo.reset()
    gru = fastrnn.GRU(3, 4)
    compiled = torch.compile(gru, backend="eager", fullgraph=True)
    x = torch.randn(5, 2, 3)
    # Compiled, auto picks what it picks eagerly (the cpu backend, traced as one op per layer).
    assert torch.equal(compiled(x)[0], gru(x)[0])
