"""torch.export with dynamic T and B on every backend (backend='torch' as one fastrnn::torch_rnn op).

The exported program holds one op per layer-direction (the same node count at any T), runs at
other sizes than the example's and matches the eager call there, outputs and gradients.
"""

import pytest
import torch
from op_helpers import (
    ALL_BACKENDS,
    Functional,
    backend_params,
    flatten,
    forward_backward,
    leaf,
    model_input,
    module,
)
from torch.export import Dim

from fastrnn.testing import assert_all_close

STEPS, BATCH = Dim("T", min=1), Dim("B", min=1)


def _export(model, style, steps):
    x = torch.randn(steps, 3, 3)
    if style == "lengths":
        args, shapes = (x, torch.tensor([steps, 1, 2])), ({0: STEPS, 1: BATCH}, {0: BATCH})
    else:
        args, shapes = (x,), ({0: STEPS, 1: BATCH},)
    return torch.export.export(model, args, dynamic_shapes=shapes)


def _op_nodes(program):
    return [n for n in program.graph.nodes
            if n.op == "call_function" and str(n.target).startswith("fastrnn.")]


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("backend", backend_params(ALL_BACKENDS))
def test_dynamic_sizes_run_and_match(backend):
    """A 2-layer bidirectional LSTM with projection exported at T=4 runs at (T, B) = (1, 1) and
    (7, 2); a GRU through functional with `lengths=` likewise; gradients through the exported
    program equal the eager ones."""
    model = module("LSTM", backend, num_layers=2, bidirectional=True, proj_size=2)
    program = _export(model, "dense", 4)
    assert len(_op_nodes(program)) == (1 if backend == "torch" else 4)  # torch: the whole stack
    assert len(program.graph.nodes) == len(_export(model, "dense", 7).graph.nodes)
    exported, parameters = program.module(), dict(model.named_parameters())
    for steps, batch in ((1, 1), (7, 2)):
        x = leaf(steps, batch)
        expected = forward_backward(model, (x,), x, parameters)
        actual = forward_backward(exported, (x,), x, dict(exported.named_parameters()))
        assert_all_close(actual, expected)
    gru = Functional(module("GRU", backend))
    exported = _export(gru, "lengths", 5).module()
    x = leaf(7, 3)
    args = model_input("lengths", x)
    actual = dict(enumerate(flatten(exported(*args))))
    assert_all_close(actual, dict(enumerate(flatten(gru(*args)))))


def test_inference_export_keeps_no_reserves():
    """Exported under no_grad the ops keep nothing for a backward (store=False)."""
    model = module("LSTM", "cpu")
    with torch.no_grad():
        program = _export(model, "dense", 4)
    (node,) = _op_nodes(program)
    assert node.args[-1] is False
