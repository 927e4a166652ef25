"""torch.func on every backend that runs as a fastrnn op: grad, vjp, jacrev, jacfwd, vmap.

Each transform's result equals the same transform of the reference backend (plain ops, the
executable spec). vmap of an inference call folds the vmapped instances into the batch; vmap of a
gradient (jacrev, vmap(grad)) runs the ops once per instance. Forward-mode AD (jacfwd) runs the
reference's ops. A second derivative through cpu or triton raises with the backend to use.
"""

import pytest
import torch
from op_helpers import Functional, backend_params, module
from torch.func import functional_call, grad, jacfwd, jacrev, vjp, vmap

from fastrnn.testing import assert_all_close

LENGTHS = torch.tensor([4, 2])


def _x(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(1))


TRANSFORMS = {
    "grad": lambda m, x: grad(lambda p: functional_call(m, p, (x,))[0].square().sum())(
        dict(m.named_parameters())),
    "vjp": lambda m, x: vjp(lambda x: m(x)[1], x)[1](torch.ones(1, 2, 4)),
    "jacrev": lambda m, x: jacrev(lambda x: m(x)[1])(x),
    "jacfwd": lambda m, x: jacfwd(lambda x: m(x)[1])(x),
    # in_dims=1 on (T, V, B, I): a vmapped dimension that is not the batch's own.
    "vmap": lambda m, x: vmap(lambda x: m(x)[0], in_dims=1)(x.unsqueeze(1) * torch.arange(1.0, 4.0)
                                                            .view(1, 3, 1, 1)),
    "vmap_grad": lambda m, x: vmap(grad(lambda x: m(x)[0].sum()))(torch.stack([x, 2 * x])),
    "vmap_lengths": lambda m, x: vmap(lambda x: Functional(m)(x, LENGTHS)[0])(
        torch.stack([x, -x])),
}


def _flat(result):
    if isinstance(result, dict):
        return result
    if isinstance(result, tuple):
        return dict(enumerate(result))
    return {"result": result}


@pytest.mark.parametrize("transform", list(TRANSFORMS))
@pytest.mark.parametrize("backend", backend_params())
def test_transform_matches_the_reference(backend, transform):
    x = _x(4, 2, 3)
    expected = TRANSFORMS[transform](module("GRU", "reference"), x)
    actual = TRANSFORMS[transform](module("GRU", backend), x)
    assert_all_close(_flat(actual), _flat(expected))


@pytest.mark.parametrize("backend", backend_params())
def test_vmap_of_lstm_with_projection_and_batched_weights(backend):
    """Vmapped weights (an ensemble through functional_call) run once per instance."""
    models = [module("LSTM", backend, proj_size=2) for _ in range(2)]
    with torch.no_grad():
        models[1].weight_hh_l0.mul_(0.5)
    stacked = {k: torch.stack([dict(m.named_parameters())[k] for m in models]).detach()
               for k, _ in models[0].named_parameters()}
    x = _x(4, 2, 3)
    actual = vmap(lambda p: functional_call(models[0], p, (x,))[0])(stacked)
    expected = torch.stack([m(x)[0] for m in models]).detach()
    assert_all_close({"out": actual}, {"out": expected})


@pytest.mark.parametrize("backend", backend_params())
def test_second_derivative(backend):
    """grad of grad: the reference differentiates twice; cpu and triton name the reference."""
    m, x = module("GRU", backend), _x(4, 2, 3)

    def twice():
        return grad(lambda x: grad(lambda x: m(x)[0].square().sum())(x).sum())(x)

    if backend == "reference":
        assert twice().shape == x.shape
        return
    with pytest.raises(RuntimeError, match=f"double backward is not supported by the {backend} "
                                           f"backend; use backend='reference'"):
        twice()
