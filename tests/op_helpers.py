"""Shared pieces of the op tests (test_ops, test_compile, test_export, test_func, test_meta,
test_onnx): the backends that run as fastrnn ops, small modules and inputs, and one
forward+backward collected into a dict for fastrnn.testing.assert_all_close.
"""

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import fastrnn

OP_BACKENDS = ("reference", "cpu", "triton")
ALL_BACKENDS = OP_BACKENDS + ("torch",)
KINDS = ("LSTM", "GRU", "RNN")
STYLES = ("dense", "packed", "lengths")
LENGTHS = (5, 2, 4)  # an unsorted batch of 3 with the longest in the middle


def backend_params(backends=OP_BACKENDS):
    """pytest params of backends; triton carries the `triton` marker (interpreter on CPU)."""
    return [pytest.param(b, marks=[pytest.mark.triton] if b == "triton" else [], id=b)
            for b in backends]


def module(kind, backend, **kwargs):
    """A float32 fastrnn module with seeded weights (the same for every backend)."""
    torch.manual_seed(0)
    return getattr(fastrnn, kind)(3, 4, backend=backend, **kwargs)


class Functional(torch.nn.Module):
    """A one-layer recurrence through fastrnn.functional with `lengths=` (the module's weights)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x, lengths):
        inner = self.inner
        output, states = fastrnn.functional.recurrent_stack(
            inner.mode, x, None, inner._layer_weights(), bidirectional=inner.bidirectional,
            lengths=lengths, backend=inner.backend)
        return output, tuple(states)


def model_input(style, x):
    """(args for the model) of `style` on the (T, B, 3) leaf x."""
    lengths = torch.tensor(LENGTHS[: x.shape[1]])
    if style == "packed":
        return (pack_padded_sequence(x, lengths, enforce_sorted=False),)
    if style == "lengths":
        return (x, lengths)
    return (x,)


def leaf(steps=5, batch=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(steps, batch, 3, generator=g).requires_grad_()


def flatten(result):
    """Tensors of a module's result: output (a PackedSequence's data) and the final states."""
    output, hidden = result
    if isinstance(output, PackedSequence):
        output = output.data
    return [output, *(hidden if isinstance(hidden, tuple) else (hidden,))]


def forward_backward(model, args, x, parameters):
    """{'out.k': output tensors, 'grad.input', 'grad.<param>'} of one forward and a backward with
    fixed random upstream gradients on every output."""
    for p in [x, *parameters.values()]:
        p.grad = None
    outputs = flatten(model(*args))
    g = torch.Generator().manual_seed(2)
    # Drawn on the CPU (the generator's device) and moved, so CUDA runs weight by the same numbers.
    loss = sum((o * torch.randn(o.shape, generator=g).to(o.device)).sum() for o in outputs)
    loss.backward()
    results = {f"out.{k}": o.detach() for k, o in enumerate(outputs)}
    results["grad.input"] = x.grad
    results.update({f"grad.{name}": p.grad for name, p in parameters.items()})
    return results
