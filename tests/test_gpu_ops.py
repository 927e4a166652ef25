"""The fastrnn ops on a real GPU (marker `gpu`; skipped without CUDA): the default backend there
(triton, auto) through torch.compile with inductor, torch.export and torch.func, against eager.

What the CPU suite cannot check: inductor's generated code around the opaque triton op on CUDA,
the backward op's kernels in a compiled graph, the CUDA tensors' fake kernels in export. Named
to sort before test_kernels_gpu.py: a time-boxed `fastrnn gpu-run` runs these four first.
"""

import pytest
import torch
from op_helpers import forward_backward, leaf, model_input, module
from torch.export import Dim

from fastrnn.testing import assert_all_close

pytest.importorskip("triton")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture(autouse=True)
def _no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _cuda(kind, backend="auto", **kwargs):
    return module(kind, backend, **kwargs).cuda()


@pytest.mark.parametrize("style", ["dense", "packed"])
def test_inductor_fullgraph_matches_eager(style):
    torch._dynamo.reset()
    model = _cuda("LSTM", num_layers=2, bidirectional=True)
    parameters = dict(model.named_parameters())
    compiled = torch.compile(model, fullgraph=True, dynamic=True)
    for steps in (6, 11):
        x = leaf(steps, 3).cuda().detach().requires_grad_()
        expected = forward_backward(model, model_input(style, x), x, parameters)
        actual = forward_backward(compiled, model_input(style, x), x, parameters)
        assert_all_close(actual, expected)


def test_export_runs_at_other_sizes():
    model = _cuda("GRU", bidirectional=True)
    program = torch.export.export(model, (torch.randn(5, 3, 3, device="cuda"),),
                                  dynamic_shapes=({0: Dim("T", min=1), 1: Dim("B", min=1)},))
    for steps, batch in ((1, 1), (17, 4)):
        x = torch.randn(steps, batch, 3, device="cuda")
        assert_all_close(dict(enumerate(program.module()(x))), dict(enumerate(model(x))))


def test_func_grad_and_vmap():
    x = torch.randn(4, 2, 3, device="cuda")
    results = {}
    for backend in ("auto", "reference"):
        model = _cuda("RNN", backend)
        results[backend] = {
            "grad": torch.func.grad(lambda x, m=model: m(x)[0].square().sum())(x),
            "vmap": torch.func.vmap(lambda x, m=model: m(x)[0])(torch.stack([x, -x])),
        }
    assert_all_close(results["auto"], results["reference"])
