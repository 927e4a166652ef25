"""The LSTM's inference layer on the CPU path (fastrnn/cpu/inference.py): the input projection
inside the compiled whole loop. Against the float64 reference over every lengths pattern, direction
and packed input; at the GEMM's register-block and panel remainders; through the modules against
torch.nn; and only where it applies (no gradient, nothing observing, its bounds, agreeing
shapes)."""

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils._python_dispatch import TorchDispatchMode

import fastrnn
from fastrnn import reference
from fastrnn.cpu import fused, lstm_inference_layer
from fastrnn.testing import assert_close
from tests.test_cpu_backend import LENGTH_IDS, LENGTHS
from tests.test_cpu_fused import _counting, needs_compiler

pytestmark = needs_compiler


def _layer_inputs(steps, batch, n_in, hidden, dtype, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)

    return {"x": randn(steps, batch, n_in), "h0": randn(batch, hidden), "c0": randn(batch, hidden),
            "w_ih": randn(4 * hidden, n_in) / n_in**0.5, "bias": randn(4 * hidden) if bias else None,
            "w_hh": randn(4 * hidden, hidden) / hidden**0.5}


def _expected(t, lengths, reverse):
    """The float64 reference: gx as functional makes it, then the reference recurrence."""
    t = {k: None if v is None else v.double() for k, v in t.items()}
    gx = F.linear(t["x"], t["w_ih"], t["bias"])
    return reference.lstm_recurrence(gx, t["h0"], t["c0"], t["w_hh"], None, lengths, reverse)


def _check(steps, batch, lengths, reverse, dtype, n_in=5, hidden=4, bias=True):
    t = _layer_inputs(steps, batch, n_in, hidden, dtype, bias)
    lengths = None if lengths is None else torch.tensor(lengths)
    with torch.no_grad():
        actual = lstm_inference_layer(t["x"], t["h0"], t["c0"], t["w_ih"], t["bias"], t["w_hh"],
                                      lengths, reverse)
    expected = _expected(t, lengths, reverse)
    assert actual is not None
    for name, a, e in zip(("output", "h_n", "c_n"), actual, expected):
        assert a.dtype == dtype
        assert_close(a, e, name)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize(("steps", "batch", "lengths"), LENGTHS, ids=LENGTH_IDS)
def test_matches_the_reference(monkeypatch, steps, batch, lengths, reverse, dtype):
    calls = _counting(monkeypatch)
    _check(steps, batch, lengths, reverse, dtype)
    assert calls == {"lstm_inference_loop": sum(1 for s in _segments(steps, batch, lengths) if s)}


def _segments(steps, batch, lengths):
    """The rows of each segment the layout makes (one per run of equal batch prefixes)."""
    if lengths is None or min(lengths) == steps:
        return [batch]
    return sorted({sum(1 for n in lengths if n > t) for t in range(steps)}, reverse=True)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("n_in", "hidden"), [(70, 70), (3, 16), (100, 33)])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_register_blocks_and_panel_remainders(dtype, n_in, hidden, bias):
    """13 rows shrinking to 1 run every register block (6, 4, 2, 1 rows). 4H = 280: whole panels
    and 24 columns left (float 4 x 64, double 8 x 32); 4H = 64: whole panels only; 4H = 132: 2 x 64
    or 4 x 32 and 4 columns left. I = 70 and 100 against K = H: two terms of unequal depth."""
    lengths = [9, 2, 9, 4, 1, 3, 9, 8, 5, 6, 7, 9, 2]
    for reverse in (False, True):
        _check(9, 13, lengths, reverse, dtype, n_in=n_in, hidden=hidden, bias=bias)
        _check(9, 13, None, reverse, dtype, n_in=n_in, hidden=hidden, bias=bias)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_packed_input(reverse):
    """PackedSequence.data rows (sorted lengths) in, packed output out."""
    t = _layer_inputs(7, 5, 3, 6, torch.float64)
    lengths = torch.tensor([7, 6, 4, 4, 1])
    packed = pack_padded_sequence(t["x"], lengths).data
    with torch.no_grad():
        output, h_n, c_n = lstm_inference_layer(packed, t["h0"], t["c0"], t["w_ih"], t["bias"],
                                                t["w_hh"], lengths, reverse)
    expected = _expected(t, lengths, reverse)
    assert_close(output, pack_padded_sequence(expected[0], lengths).data, "output")
    assert_close(h_n, expected[1], "h_n")
    assert_close(c_n, expected[2], "c_n")


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time-major", "batch-first"])
def test_modules_match_torch_nn_in_inference(monkeypatch, packed, batch_first):
    """A 2-layer bidirectional LSTM in float64 under no_grad: every layer-direction through the
    inference loop, outputs and final states at 1e-10 of torch.nn's."""
    torch.manual_seed(0)
    ours = fastrnn.LSTM(5, 8, num_layers=2, bidirectional=True, batch_first=batch_first).double()
    theirs = torch.nn.LSTM(5, 8, num_layers=2, bidirectional=True, batch_first=batch_first).double()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(4, 6, 5, dtype=torch.float64) if batch_first else torch.randn(6, 4, 5).double()
    if packed:
        x = pack_padded_sequence(x, torch.tensor([6, 2, 5, 3]), batch_first=batch_first,
                                 enforce_sorted=False)
    calls = _counting(monkeypatch)
    with torch.no_grad():
        (out, (h_n, c_n)), (expected, (h_e, c_e)) = ours(x), theirs(x)
    assert calls == {"lstm_inference_loop": 4 * (4 if packed else 1)}
    if packed:
        out, expected = out.data, expected.data
    for a, e in ((out, expected), (h_n, h_e), (c_n, c_e)):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-10)


def _module_calls(monkeypatch, model, x, grad=False):
    calls = _counting(monkeypatch)
    with torch.set_grad_enabled(grad):
        model(x)
    return calls


def test_only_where_it_applies(monkeypatch):
    """Training, a projection, H=256 under 32 rows, H=512, half precision: the recurrence op's path
    (gx, then the op) instead; more rows than training's whole loop takes still run here."""
    model = fastrnn.LSTM(4, 8)
    x = torch.randn(5, 3, 4)
    assert set(_module_calls(monkeypatch, model, x)) == {"lstm_inference_loop"}
    assert set(_module_calls(monkeypatch, model, x, grad=True)) == {"lstm_forward_loop"}
    assert "lstm_inference_loop" not in _module_calls(monkeypatch, fastrnn.LSTM(4, 8, proj_size=2), x)
    # no bound on the rows, unlike training's whole loop
    wide = torch.randn(5, fused.LOOP_MAX_ROWS + 1, 4)
    assert set(_module_calls(monkeypatch, model, wide)) == {"lstm_inference_loop"}
    assert "lstm_forward_loop" not in _module_calls(monkeypatch, model, wide, grad=True)
    # H=256: from 32 rows (the wider bounds), not at 8
    large = fastrnn.LSTM(256, 256)
    assert set(_module_calls(monkeypatch, large, torch.randn(2, 32, 256))) == {"lstm_inference_loop"}
    assert "lstm_inference_loop" not in _module_calls(monkeypatch, large, torch.randn(2, 8, 256))
    assert "lstm_inference_loop" not in _module_calls(monkeypatch, fastrnn.LSTM(512, 512),
                                                      torch.randn(2, 32, 512))
    half = fastrnn.LSTM(4, 8).to(torch.bfloat16)
    assert "lstm_inference_loop" not in _module_calls(monkeypatch, half, x.to(torch.bfloat16))


@pytest.mark.parametrize("batch", [32, 40, 70])
def test_the_wider_bounds_match_torch(monkeypatch, batch):
    """H=256 from 32 rows (inference.WIDE_MIN_ROWS): float64 against torch.nn to 1e-10; 32 rows
    run as register blocks of 6, 6, 6, 6, 4, 4 (not 6 + 2 at the end), 40 as six of 6 and a 4; 70
    rows are more than training's whole loop takes (fused.LOOP_MAX_ROWS)."""
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(256, 256).double()
    ours = fastrnn.LSTM(256, 256).double()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(3, batch, 256, dtype=torch.float64)
    calls = _counting(monkeypatch)
    with torch.no_grad():
        (out, (h_n, c_n)), (expected, (h_e, c_e)) = ours(x), theirs(x)
    assert calls == {"lstm_inference_loop": 1}
    for a, e in ((out, expected), (h_n, h_e), (c_n, c_e)):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("wrong", ["input-width", "state-rows", "w_ih-rows", "bias-length",
                                   "bias-rows", "w_hh-width"])
def test_mismatched_shapes_are_left_to_the_op(wrong):
    """functional's callers below the modules check no shapes: where they do not agree the layer
    declines (None), so the op path raises its error instead of the loop reading out of bounds."""
    t = _layer_inputs(3, 4, 5, 6, torch.float32)
    t.update({
        "input-width": {"w_ih": torch.randn(24, 6)},
        "state-rows": {"h0": torch.randn(5, 6), "c0": torch.randn(5, 6)},
        "w_ih-rows": {"w_ih": torch.randn(28, 5)},
        "bias-length": {"bias": torch.randn(1)},
        "bias-rows": {"bias": torch.randn(4, 24)},
        "w_hh-width": {"w_hh": torch.randn(24, 7)},
    }[wrong])
    with torch.no_grad():
        assert lstm_inference_layer(t["x"], t["h0"], t["c0"], t["w_ih"], t["bias"], t["w_hh"]) is None


def test_not_under_a_dispatch_mode(monkeypatch):
    """A mode watching the ops (a FlopCounterMode, say) sees fastrnn's op, not the compiled loop
    behind its back."""
    seen = []

    class Watch(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(str(func))
            return func(*args, **(kwargs or {}))

    model, x = fastrnn.LSTM(4, 8), torch.randn(5, 3, 4)
    calls = _counting(monkeypatch)
    with torch.no_grad(), Watch():
        out, _ = model(x)
    assert "lstm_inference_loop" not in calls
    assert any(name.startswith("fastrnn.lstm") for name in seen)
    with torch.no_grad():
        torch.testing.assert_close(out, model(x)[0])
