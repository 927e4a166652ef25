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

from fastrnn.ops import batching, library

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
        grad_output = input.new_zeros(*input.shape[:2], _width(states, ctx.options))
    grad_finals = [torch.zeros_like(s) if g is None else g for g, s in zip(grad_finals, states)]
    grads = torch.ops.fastrnn.torch_rnn_backward(ctx.mode, input, states, weights, *ctx.options,
                                                 grad_output, grad_finals)
    return (None, grads[0], grads[1], grads[2], *(None,) * len(ctx.options))


def _loop_rule(op):
    """vmap by running `op` once per instance: right for every argument that is vmapped."""

    def rule(info, in_dims, *args):
        return batching.loop(op, info, in_dims, args)

    return rule


class _TorchRNN(torch.autograd.Function):
    """fastrnn::torch_rnn with its backward op, as an autograd.Function: what a call under vmap
    runs, so that a gradient taken around the vmap (grad(vmap(f)), jacrev) differentiates it
    (torch.func.grad refuses an op's own autograd wrapper, see fastrnn.ops.autograd). Its generated
    vmap rule vmaps the forward and backward ops, whose own rules below batch them. The lists of
    states and weights travel as separate arguments, which autograd.Function tracks."""

    generate_vmap_rule = True

    @staticmethod
    def forward(mode, count, flags, lengths, seed, input, *tensors):
        output, finals = torch.ops.fastrnn.torch_rnn(mode, input, list(tensors[:count]),
                                                     list(tensors[count:]), *flags, lengths, seed)
        return (output, *finals)

    @staticmethod
    def setup_context(ctx, inputs, output):
        mode, count, flags, lengths, seed, input, *tensors = inputs
        ctx.mode, ctx.count, ctx.options = mode, count, (*flags, lengths, seed)
        ctx.save_for_backward(input, *tensors)

    @staticmethod
    def backward(ctx, grad_output, *grad_finals):
        input, *tensors = ctx.saved_tensors
        states, weights = tensors[: ctx.count], tensors[ctx.count :]
        grad_finals = [torch.zeros_like(s) if g is None else g for g, s in zip(grad_finals, states)]
        if grad_output is None:
            grad_output = input.new_zeros(*input.shape[:2], _width(states, ctx.options))
        grad_input, grad_states, grad_weights = torch.ops.fastrnn.torch_rnn_backward(
            ctx.mode, input, states, weights, *ctx.options, grad_output, grad_finals)
        return (None, None, None, None, None, grad_input, *grad_states, *grad_weights)


def _width(states, options):
    """The output's width: H_out, times 2 when bidirectional (options[2])."""
    return states[0].shape[-1] * (2 if options[2] else 1)


def _differentiable_call(mode, input, states, weights, has_biases, num_layers, bidirectional,
                         dropout, train, lengths, seed):
    """torch_rnn through _TorchRNN: (output, list of final states)."""
    flags = (has_biases, num_layers, bidirectional, dropout, train)
    output, *finals = _TorchRNN.apply(mode, len(states), flags, lengths, seed, input, *states,
                                      *weights)
    return output, list(finals)


def _forward_vmap_rule(info, in_dims, mode, input, states, weights, *options):
    """vmap of the forward. The V instances join the batch when only per-sequence tensors are
    vmapped (input (T, B, I), states (L*D, B, X), lengths (B,)): one call on V*B sequences, as
    torch's own RNN ops do not batch. Vmapped weights run once per instance."""
    weight_dims = in_dims[3] or ()
    if any(d is not None for d in weight_dims):
        return _loop_rule(torch.ops.fastrnn.torch_rnn)(info, in_dims, mode, input, states,
                                                        weights, *options)
    size = info.batch_size
    state_dims = in_dims[2] or [None] * len(states)
    folded_input = batching.fold(size, input, in_dims[1], 1)
    folded_states = [batching.fold(size, s, d, 1) for s, d in zip(states, state_dims)]
    lengths, lengths_dim = options[5], in_dims[9]
    if lengths is not None:
        lengths = batching.fold(size, lengths, lengths_dim, 0)
    options = (*options[:5], lengths, *options[6:])
    output, finals = torch.ops.fastrnn.torch_rnn(mode, folded_input, folded_states, list(weights),
                                                 *options)
    batch = folded_input.shape[1] // size
    return ((output.unflatten(1, (size, batch)), [f.unflatten(1, (size, batch)) for f in finals]),
            (1, [1] * len(finals)))


def vmap_active():
    """True inside torch.func.vmap (the innermost transform is a vmap): torch's RNN ops have no
    batching rule, so the stack runs as the op, whose rule below batches it. False while
    torch.compile traces (the graph holds the op, whatever transform runs it later)."""
    if torch.compiler.is_compiling():
        return False
    interpreter = torch._C._functorch.peek_interpreter_stack()
    return interpreter is not None and interpreter.key() == torch._C._functorch.TransformType.Vmap


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
    torch.library.register_vmap(f"{library.NAMESPACE}::torch_rnn", _forward_vmap_rule, lib=lib)
    torch.library.register_vmap(f"{library.NAMESPACE}::torch_rnn_backward",
                                _loop_rule(torch.ops.fastrnn.torch_rnn_backward), lib=lib)


_define()


def recurrent_stack(mode, input, states, flat, has_biases, num_layers, dropout, training,
                    bidirectional, lengths):
    """native.run_flat's contract as one `fastrnn::torch_rnn` op call (see the module docstring):
    returns (output (T, B, D*H_out), list of final states (L*D, B, X))."""
    seed = None
    if dropout > 0 and training and num_layers > 1:
        seed = torch.randint(0, 2**62, (), dtype=torch.int64)
    call = _differentiable_call if vmap_active() else torch.ops.fastrnn.torch_rnn
    output, finals = call(mode, input, list(states), list(flat), has_biases, num_layers,
                          bidirectional, float(dropout), training, lengths, seed)
    return output, list(finals)
