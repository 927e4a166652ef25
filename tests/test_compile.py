"""torch.compile(fullgraph=True) on every backend with dense, packed and `lengths=` input.

backend='torch' (torch's own ops eagerly) runs traced as one fastrnn::torch_rnn op per stack.

The compiled call's outputs and every gradient equal the eager call's (aot_eager: AOTAutograd
traces the backward op too); the graph holds one fastrnn op per layer-direction whatever T is, and
with dynamic=True a new T or B does not recompile.
"""

import pytest
import torch
from op_helpers import (
    ALL_BACKENDS,
    Functional,
    backend_params,
    forward_backward,
    leaf,
    model_input,
    module,
)
from torch._dynamo.testing import CompileCounterWithBackend

from fastrnn.testing import assert_all_close

# One configuration per style keeps the suite fast; together they cover every cell.
# Stacked layers: test_one_op_per_layer_direction_and_no_recompile_for_new_sizes.
CASES = {"dense": ("LSTM", {"bidirectional": True, "proj_size": 2}),
         "packed": ("GRU", {"bidirectional": True}),
         "lengths": ("RNN", {"nonlinearity": "relu"})}


def _model(style, backend):
    kind, kwargs = CASES[style]
    inner = module(kind, backend, **kwargs)
    return (Functional(inner) if style == "lengths" else inner), dict(inner.named_parameters())


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("style", list(CASES))
@pytest.mark.parametrize("backend", backend_params(ALL_BACKENDS))
def test_fullgraph_matches_eager(backend, style):
    torch._dynamo.reset()
    model, parameters = _model(style, backend)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = leaf()
    expected = forward_backward(model, model_input(style, x), x, parameters)
    actual = forward_backward(compiled, model_input(style, x), x, parameters)
    assert_all_close(actual, expected)


def test_fullgraph_needs_no_autocast_availability_query(monkeypatch):
    """torch 2.11's Dynamo cannot trace torch.amp.is_autocast_available (its torch._C call is
    skipped: a graph break, so fullgraph=True raised on the H100); a CPU or CUDA call must not ask."""

    def untraceable(device_type):
        torch._dynamo.graph_break()
        return True

    monkeypatch.setattr(torch.amp, "is_autocast_available", untraceable)
    torch._dynamo.reset()
    model, parameters = _model("dense", "reference")
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = leaf()
    expected = forward_backward(model, model_input("dense", x), x, parameters)
    assert_all_close(forward_backward(compiled, model_input("dense", x), x, parameters), expected)


def _forward_op_calls(graph_module):
    """fastrnn forward op calls in a Dynamo graph and its subgraphs (an autograd.Function's forward
    is a subgraph of its own)."""
    return [n.target for gm in graph_module.modules() if isinstance(gm, torch.fx.GraphModule)
            for n in gm.graph.nodes
            if n.op == "call_function" and str(n.target).startswith("fastrnn.")
            and "backward" not in str(n.target)]


@pytest.mark.parametrize("backend", backend_params(ALL_BACKENDS))
def test_one_op_per_layer_direction_and_no_recompile_for_new_sizes(backend):
    """dynamic=True: one compile serves (T, B) = (4, 2) and (7, 5); Dynamo's graph has L*D op calls,
    not T unrolled steps (the reference included: traced, it runs as the op; backend='torch' is
    one fastrnn::torch_rnn op for the whole stack). The sizes differ from
    the input size 3: Dynamo gives equal sizes one symbol, and input_size's check would pin it."""
    torch._dynamo.reset()
    graphs = []

    def capture(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    counter = CompileCounterWithBackend(capture)
    model = module("GRU", backend, num_layers=2, bidirectional=True)
    compiled = torch.compile(model, fullgraph=True, dynamic=True, backend=counter)
    for steps, batch in ((4, 2), (7, 5)):
        x = torch.randn(steps, batch, 3)
        assert torch.equal(compiled(x)[0], model(x)[0])
    assert counter.frame_count == 1
    assert len(_forward_op_calls(graphs[0])) == (1 if backend == "torch" else 4)
