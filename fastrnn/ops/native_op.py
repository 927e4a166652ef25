"""The 'torch' backend as an op while torch.compile or torch.export traces: `fastrnn::torch_rnn`.

Dimensions: T time, B batch, H_out output width, L layers, D directions.

Eagerly backend='torch' calls torch's `_VF` RNN ops directly (it is the baseline the benchmarks
time). Traced, those ops would be decomposed step by step (a graph that grows with T and pins T)
and a variable-lengths call's pack_padded_sequence reads the lengths on the host (a graph break).
So, traced, the whole stack runs as one op: its kernel is the eager call, its fake kernel gives
the shapes, and its backward op recomputes the call and differentiates it (torch's own
derivatives). Dropout draws its masks from a seed that the graph draws once per call,
so the backward's recompute sees the same masks.
"""

import contextlib

import torch

from fastrnn.ops import library

SCHEMA = ("torch_rnn(str mode, Tensor input, Tensor[] states, Tensor[] weights, bool has_biases, "
          "int num_layers, bool bidirectional, float dropout, bool train, Tensor? lengths, "
          "Tensor? seed) -> (Tensor, Tensor[])")
BACKWARD_SCHEMA = (
    "torch_rnn_backward(str mode, Tensor input, Tensor[] states, Tensor[] weights, bool has_biases, "
    "int num_layers, bool bidirectional, float dropout, bool train, Tensor? lengths, Tensor? seed, "
    "Tensor grad_output, Tensor[] grad_states) -> (Tensor, Tensor[], Tensor[])")


@contextlib.contextmanager
def _seeded(seed, device):
    """Dropout's random masks from `seed` (no effect on the caller's generators), or as they come."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(int(seed))
        yield


def _run(mode, input, states, weights, has_biases, num_layers, bidirectional, dropout, train,
         lengths, seed):
    from fastrnn import native

    with _seeded(seed, input.device):
        return native.run_flat(mode, input, list(states), list(weights), has_biases, num_layers,
                               dropout, train, bidirectional, lengths)


def _forward(*args):
    with torch.no_grad():
        output, finals = _run(*args)
    return output, list(finals)


def _forward_fake(mode, input, states, weights, has_biases, num_layers, bidirectional, *rest):
    steps, batch = input.shape[:2]
    width = states[0].shape[-1] * (2 if bidirectional else 1)
    return input.new_empty(steps, batch, width), [s.new_empty(s.shape) for s in states]


@contextlib.contextmanager
def _autograd_in_kernel():
    """Autograd inside an op kernel, which runs below the autograd dispatch keys: re-include them.

    Not torch.func.vjp (what the reference's backward op uses): torch's packed RNN op reads its
    batch sizes' data pointer, and under a torch.func transform every tensor argument is wrapped.
    """
    exclude = torch._C._dispatch_tls_local_exclude_set().remove(
        torch._C.DispatchKey.AutogradFunctionality)
    with torch._C._ForceDispatchKeyGuard(torch._C._dispatch_tls_local_include_set(), exclude):
        with torch.enable_grad():
            yield


def _backward(mode, input, states, weights, *rest):
    options, (grad_output, grad_states) = rest[:-2], rest[-2:]
    with _autograd_in_kernel():
        leaves = [t.detach().requires_grad_() for t in (input, *states, *weights)]
        count = len(states)
        output, finals = _run(mode, leaves[0], leaves[1 : 1 + count], leaves[1 + count :],
                              *options)
        grads = torch.autograd.grad([output, *finals], leaves, [grad_output, *grad_states],
                                    allow_unused=True)
    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, leaves)]
    return grads[0], grads[1 : 1 + count], grads[1 + count :]


def _backward_fake(mode, input, states, weights, *rest):
    return (torch.empty_like(input), [torch.empty_like(s) for s in states],
            [torch.empty_like(w) for w in weights])


def _setup_context(ctx, inputs, output):
    mode, input, states, weights, *options = inputs
    ctx.mode, ctx.counts, ctx.options = mode, (len(states), len(weights)), options
    ctx.save_for_backward(input, *states, *weights)


def _autograd_backward(ctx, grad_output, grad_finals):
    input, *rest = ctx.saved_tensors
    count = ctx.counts[0]
    states, weights = rest[:count], rest[count:]
    if grad_output is None:
        width = states[0].shape[-1] * (2 if ctx.options[2] else 1)  # options[2]: bidirectional
        grad_output = input.new_zeros(*input.shape[:2], width)
    grad_finals = [torch.zeros_like(s) if g is None else g for g, s in zip(grad_finals, states)]
    grads = torch.ops.fastrnn.torch_rnn_backward(ctx.mode, input, states, weights, *ctx.options,
                                                 grad_output, grad_finals)
    return (None, grads[0], grads[1], grads[2], *(None,) * len(ctx.options))


def _define():
    lib = library._library
    for schema, impl, fake in ((SCHEMA, _forward, _forward_fake),
                               (BACKWARD_SCHEMA, _backward, _backward_fake)):
        name = schema.split("(", 1)[0]
        lib.define(schema)
        lib.impl(name, impl, "CompositeExplicitAutograd")
        torch.library.register_fake(f"{library.NAMESPACE}::{name}", fake, lib=lib)
    torch.library.register_autograd(f"{library.NAMESPACE}::torch_rnn", _autograd_backward,
                                    setup_context=_setup_context, lib=lib)


_define()


def recurrent_stack(mode, input, states, flat, has_biases, num_layers, dropout, training,
                    bidirectional, lengths):
    """native.run_flat's contract as one `fastrnn::torch_rnn` op call (see the module docstring):
    returns (output (T, B, D*H_out), list of final states (L*D, B, X))."""
    seed = None
    if dropout > 0 and training and num_layers > 1:
        seed = torch.randint(0, 2**62, (), dtype=torch.int64)
    output, finals = torch.ops.fastrnn.torch_rnn(mode, input, list(states), list(flat), has_biases,
                                                 num_layers, bidirectional, float(dropout),
                                                 training, lengths, seed)
    return output, list(finals)
