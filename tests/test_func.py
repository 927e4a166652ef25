"""torch.func on every backend that runs as a fastrnn op: grad, vjp, jacrev, jacfwd, vmap.

Each transform's result equals the same transform of the reference backend (plain ops, the
executable spec). vmap of an inference call folds the vmapped instances into the batch; vmap of a
gradient (jacrev, vmap(grad)) runs the ops once per instance. Forward-mode AD (jacfwd) runs the
reference's ops. A second derivative through cpu or triton raises with the backend to use.
"""

import pytest
import torch
from op_helpers import ALL_BACKENDS, Functional, backend_params, module
from torch.func import functional_call, grad, jacfwd, jacrev, vjp, vmap

import fastrnn
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
@pytest.mark.parametrize("backend", backend_params(ALL_BACKENDS))
def test_transform_matches_the_reference(backend, transform):
    x = _x(4, 2, 3)
    expected = TRANSFORMS[transform](module("GRU", "reference"), x)
    actual = TRANSFORMS[transform](module("GRU", backend), x)
    assert_all_close(_flat(actual), _flat(expected))


@pytest.mark.parametrize("backend", backend_params(ALL_BACKENDS))
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


# vmap composed with itself and with gradients, every backend. The torch backend: torch's RNN ops
# have no batching rule, so the stack runs as the fastrnn::torch_rnn op, whose rule folds the
# instances into the batch (or loops over vmapped weights), through an autograd.Function so
# gradients around the vmap work too. The kernels' backward under vmap's per-instance loop reads
# strided slices of the saved output (the triton RNN backward once read them as contiguous).
VMAP_COMPOSITIONS = {
    "vmap_state": lambda m, x, h: vmap(lambda h: _last(m(x, h)), in_dims=1)(h),
    "grad_of_vmap": lambda m, x, h: grad(
        lambda x: vmap(lambda x: m(x)[0], in_dims=1)(x).square().sum())(x.unsqueeze(1).expand(
            -1, 2, -1, -1) * torch.tensor([1.0, -0.5]).view(1, 2, 1, 1)),
    # Summed to H rows: torch's oneDNN LSTM backward costs ~0.2 s a call on CPU at any size, and
    # jacrev's vmapped backward runs once per row and instance.
    "jacrev_of_vmap": lambda m, x, h: jacrev(
        lambda x: vmap(lambda x: _last(m(x)))(x).sum((0, 1, 2)))(torch.stack([x, 2 * x])),
    "vmap_of_vmap": lambda m, x, h: vmap(vmap(lambda x: m(x)[0]))(
        torch.stack([torch.stack([x, -x]), torch.stack([2 * x, x / 2])])),
    "grad_weights_of_vmap": lambda m, x, h: grad(lambda p: vmap(
        lambda x: functional_call(m, p, (x,))[0])(torch.stack([x, -x])).square().sum())(
        dict(m.named_parameters())),
}


def _last(result):
    """The final hidden state of an LSTM/GRU/RNN call (h_n of LSTM's (h_n, c_n))."""
    state = result[1]
    return state[0] if isinstance(state, tuple) else state


@pytest.mark.parametrize("transform", list(VMAP_COMPOSITIONS))
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("backend", backend_params(("cpu", "triton", "torch")))
def test_vmap_compositions_match_the_reference(backend, kind, transform):
    """Two layers, bidirectional: the folded batch keeps each instance's sequences apart."""
    def make(name):
        torch.manual_seed(0)
        return getattr(fastrnn, kind)(3, 4, num_layers=2, bidirectional=True, backend=name)

    x = _x(5, 2, 3)
    h = _x(4, 3, 2, 4)  # (L*D, V, B, H): vmapped along dim 1
    if kind == "LSTM":
        h = (h, h.flip(0))
    expected = VMAP_COMPOSITIONS[transform](make("reference"), x, h)
    actual = VMAP_COMPOSITIONS[transform](make(backend), x, h)
    assert_all_close(_flat(actual), _flat(expected))
