"""ONNX export: each layer-direction is ONNX's own LSTM / GRU / RNN node (fastrnn.ops.onnx), with
dynamic T and B; onnxruntime reproduces the eager outputs at several sizes, `lengths=` included.
An LSTM with proj_size (no ONNX equivalent) is refused with the reason.

Skipped when onnx, onnxscript or onnxruntime is missing (the `test` and `dev` extras install them).
"""

import pytest
import torch
from op_helpers import ALL_BACKENDS, Functional, backend_params, flatten, module
from torch.export import Dim

from fastrnn.ops import onnx as fastrnn_onnx
from fastrnn.testing import assert_all_close

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

SIZES = ((5, 3), (9, 2), (1, 1))
STEPS, BATCH = Dim("T", min=1), Dim("B", min=1)


def _export(model, args, shapes, tmp_path):
    path = tmp_path / "model.onnx"
    fastrnn_onnx.export(model, args, path, dynamic_shapes=shapes)
    graph = onnx.load(path).graph
    return ort.InferenceSession(str(path)), [n.op_type for n in graph.node]


def _run(session, *args):
    names = [i.name for i in session.get_inputs()]
    return [torch.from_numpy(a) for a in session.run(None, dict(zip(names,
                                                                   (a.numpy() for a in args))))]


@pytest.mark.parametrize(("kind", "kwargs", "nodes"), [
    ("LSTM", {"num_layers": 2, "bidirectional": True}, 4),
    ("GRU", {"bias": False}, 1),
    ("RNN", {"nonlinearity": "relu", "bidirectional": True}, 2),
])
def test_modules_run_in_onnxruntime_at_other_sizes(kind, kwargs, nodes, tmp_path):
    model = module(kind, "cpu", **kwargs)
    session, ops = _export(model, (torch.randn(4, 3, 3),), ({0: STEPS, 1: BATCH},), tmp_path)
    assert ops.count(kind) == nodes and not any("fastrnn" in op for op in ops)
    for steps, batch in SIZES:
        x = torch.randn(steps, batch, 3)
        expected = dict(enumerate(t.detach() for t in flatten(model(x))))
        assert_all_close(dict(enumerate(_run(session, x))), expected)


@pytest.mark.parametrize("backend", backend_params(ALL_BACKENDS))
def test_every_backend_exports_onnx_operators(backend, tmp_path):
    """The ONNX graph does not depend on the backend (torch's own ops included)."""
    model = module("RNN", backend)
    session, ops = _export(model, (torch.randn(4, 3, 3),), ({0: STEPS, 1: BATCH},), tmp_path)
    assert ops.count("RNN") == 1
    x = torch.randn(6, 2, 3)
    expected = dict(enumerate(t.detach() for t in flatten(model(x))))
    assert_all_close(dict(enumerate(_run(session, x))), expected)


def test_lengths_become_sequence_lens(tmp_path):
    """A bidirectional LSTM through functional with `lengths=`: the reverse direction starts each
    sequence at its own end, in onnxruntime as in fastrnn."""
    model = Functional(module("LSTM", "cpu", bidirectional=True))
    args = (torch.randn(6, 3, 3), torch.tensor([6, 2, 4]))
    session, _ = _export(model, args, ({0: STEPS, 1: BATCH}, {0: BATCH}), tmp_path)
    for x, lengths in ((torch.randn(8, 2, 3), torch.tensor([3, 8])),
                       (torch.randn(5, 4, 3), torch.tensor([5, 1, 4, 2]))):
        expected = dict(enumerate(t.detach() for t in flatten(model(x, lengths))))
        assert_all_close(dict(enumerate(_run(session, x, lengths))), expected)


def test_projection_has_no_onnx_equivalent(tmp_path):
    model = module("LSTM", "cpu", proj_size=2)
    with pytest.raises(Exception, match="proj_size") as info:
        _export(model, (torch.randn(4, 3, 3),), None, tmp_path)
    assert fastrnn_onnx.PROJECTION_ERROR in str(info.value)
