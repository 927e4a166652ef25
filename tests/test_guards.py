"""PyTorch tools that cannot handle fastrnn layers say so (fastrnn.guards), and the way that works.

Dynamic quantization is never a silent no-op: fastrnn.quantize_dynamic quantizes fastrnn layers
(through torch's dynamic quantized modules) and torch's own quantize_dynamic, which swaps torch.nn
types only, warns on each fastrnn layer it passes over. torch.jit.script raises an error naming
torch.compile and torch.export.
"""

import warnings

import pytest
import torch
from torch import nn

import fastrnn

QUANTIZED = "torch.ao.nn.quantized.dynamic"


def _model():
    torch.manual_seed(0)
    return nn.ModuleDict({"lstm": fastrnn.LSTM(4, 8, num_layers=2, batch_first=True),
                          "gru": fastrnn.GRU(4, 8, bidirectional=True),
                          "cell": fastrnn.LSTMCell(4, 8), "head": nn.Linear(8, 2)})


def test_fastrnn_quantize_dynamic_quantizes_fastrnn_layers():
    model = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's own deprecation notes
        quantized = fastrnn.quantize_dynamic(model)
    for name in ("lstm", "gru", "cell", "head"):
        assert type(quantized[name]).__module__.startswith(QUANTIZED), name
    assert isinstance(model["lstm"], fastrnn.LSTM)  # not in place by default
    x = torch.randn(3, 5, 4)
    expected, _ = model["lstm"](x)
    actual, _ = quantized["lstm"](x)
    # int8 weights: close to the float model, not equal.
    assert actual.shape == expected.shape
    assert (actual - expected).abs().max() < 0.05


def test_fastrnn_quantize_dynamic_warns_that_rnn_stays_float():
    model = nn.Sequential(fastrnn.RNN(4, 8))
    with pytest.warns(UserWarning, match="no dynamic quantized multi-layer RNN"):
        quantized = fastrnn.quantize_dynamic(model)
    assert isinstance(quantized[0], nn.RNN)


def test_torch_quantize_dynamic_warns_on_fastrnn_layers():
    model = _model()
    with pytest.warns(UserWarning, match=r"leaves fastrnn\.LSTM in floating point.*"
                                         r"fastrnn\.quantize_dynamic"):
        quantized = torch.ao.quantization.quantize_dynamic(model)
    assert isinstance(quantized["lstm"], fastrnn.LSTM)
    assert not hasattr(quantized["lstm"], "_qconfig")  # torch removes the qconfig after converting


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"])
def test_jit_script_names_compile_and_export(kind):
    layer = getattr(fastrnn, kind)(3, 4)
    for model in (layer, nn.Sequential(nn.Linear(3, 3), layer)):
        with pytest.raises(RuntimeError, match=rf"fastrnn\.{kind} cannot be compiled with "
                                               r"torch\.jit\.script.*torch\.compile.*torch\.export"):
            torch.jit.script(model)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"])
def test_jit_trace_refuses_clearly_where_it_would_bake_in_a_length(kind, backend):
    layer = getattr(fastrnn, kind)(3, 4, backend=backend)
    x = torch.randn(5, 2, 3) if not kind.endswith("Cell") else torch.randn(2, 3)
    with pytest.raises(RuntimeError, match=r"torch\.jit\.trace cannot record fastrnn's .* "
                                           r"torch\.export\.export.*torch\.compile"):
        torch.jit.trace(layer, (x,))


def test_jit_trace_of_the_torch_backend_is_right_at_other_lengths():
    torch.manual_seed(0)
    lstm = fastrnn.LSTM(3, 4, num_layers=2, backend="torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's own notes
        traced = torch.jit.trace(lstm, (torch.randn(5, 2, 3),))
    x = torch.randn(9, 3, 3)
    torch.testing.assert_close(traced(x)[0], lstm(x)[0])
