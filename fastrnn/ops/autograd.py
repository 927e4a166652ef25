"""Autograd for the fastrnn ops: one setup_context / backward pair per cell, registered on the op
(torch.library.register_autograd, what an exported program or a direct op call differentiates
through) and used by an autograd.Function with the same signature (what fastrnn's own calls go
through: torch.func accepts an autograd.Function with setup_context, while an op's generated
autograd wrapper is refused by torch.func.grad/vjp/jacrev in torch 2.4 to 2.13).

The backward is itself an op (`fastrnn::<cell>_backward`), so a compiled or exported graph holds one
node per layer-direction in either pass, whatever T is.

Double backward: the backward op has no derivative. A backward run with create_graph calls it
through an autograd.Function whose backward raises the backend's error (naming
backend='reference'), so differentiating a gradient fails with that reason, while a create_graph
run that never does (torch.func.grad and vjp always ask for one) works.
"""

import torch

from fastrnn.ops import cells, library

_SAVED = ("gx", "h0", "c0", "w_hh", "w_hr", "b_hh", "lengths")


def functorch_levels():
    """The kinds of torch.func transforms active around this call (innermost last)."""
    from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters

    return [interpreter.key() for interpreter in retrieve_all_functorch_interpreters()]


def forward_ad_active():
    """True when forward-mode AD (torch.func.jvp/jacfwd, or a forward_ad dual level) is active:
    the ops have no forward-mode formula, so the caller runs the reference's plain ops instead."""
    if torch.compiler.is_compiling():
        return False
    from torch._C._functorch import TransformType

    if TransformType.Jvp in functorch_levels():
        return True
    return torch.autograd.forward_ad._current_level >= 0


class _Backward(torch.autograd.Function):
    """A backward op call whose own derivative raises `message`: a backward run with create_graph
    (torch.func.grad and vjp always ask for one) works, and only differentiating its result (double
    backward: grad of grad, a gradient penalty through the recurrence) fails, at every torch.func
    level (a no_grad call would instead hand an outer level constants: a silently wrong result)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(message, op, *args):
        return op(*args)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.message = inputs[0]

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(ctx.message)


def _run_backward(backend, cell, args):
    op = library.backward_op(cell)
    if torch.compiler.is_compiling() or not torch.is_grad_enabled():
        return op(*args)
    return _Backward.apply(library.kernels_for(backend).DOUBLE_BACKWARD_ERROR, op, *args)


def _public_count(cell):
    return 3 if cell == "lstm" else 2


def make_autograd(cell):
    """(setup_context, backward) of `cell`'s forward op, for register_autograd and the Function."""
    public = _public_count(cell)

    def setup_context(ctx, inputs, output):
        call = cells.call_from_args(cell, inputs)
        tensors = {**call.tensors(), "gx": call.gx if library.KEEPS_GX[call.backend] else None}
        ctx.save_for_backward(*(tensors[name] for name in _SAVED), output[0], *output[public:])
        ctx.backend, ctx.reverse, ctx.nonlinearity = call.backend, call.reverse, call.nonlinearity
        ctx.present = tuple(name for name, t in call.tensors().items() if t is not None)
        ctx.store = call.store
        ctx.mark_non_differentiable(*output[public:])
        # Upstream gradients stay None where none flowed (no zero-filled reserve gradients).
        ctx.set_materialize_grads(False)
        ctx.state = None if torch.compiler.is_compiling() else library.backward_state(call.backend)

    def backward(ctx, *grads):
        grads = grads[:public]
        if not ctx.store and cells.RESERVES[cell] and ctx.backend != "reference":
            raise RuntimeError(
                f"fastrnn::{cell} ran with store=False (no gradient was needed when it was called, "
                f"exported or compiled), so it kept nothing for its backward; trace it with "
                f"gradients enabled to differentiate it")
        saved = ctx.saved_tensors
        tensors = dict(zip(_SAVED, saved[: len(_SAVED)]))
        output, reserve = saved[len(_SAVED)], tuple(saved[len(_SAVED) + 1 :])
        call = cells.Call(cell=cell, backend=ctx.backend, reverse=ctx.reverse,
                          nonlinearity=ctx.nonlinearity, **tensors)
        shapes = (output, tensors["h0"], tensors["c0"])
        grads = tuple(torch.zeros_like(like) if g is None else g for g, like in zip(grads, shapes))
        with library.backward_context(ctx.backend, ctx.state):
            result = _run_backward(ctx.backend, cell,
                                   cells.backward_args(call, output, reserve, grads))
        by_name = dict(zip(cells.DIFFERENTIABLE[cell], result))
        return tuple(by_name[name] if name in by_name and name in ctx.present and need else None
                     for name, need in zip(cells.ARGUMENTS[cell], ctx.needs_input_grad))

    return setup_context, backward


def _function(cell):
    """An autograd.Function running `cell`'s forward op, with the op's own autograd formula."""
    setup_context, backward = make_autograd(cell)
    op = library.op(cell)

    def forward(*args):
        return op(*args)

    return type(f"{cell.upper()}Recurrence", (torch.autograd.Function,), {
        "__doc__": f"fastrnn::{cell} with its backward op; torch.func-compatible (setup_context), "
                   f"vmap through the ops' batching rules.",
        "generate_vmap_rule": True,
        "forward": staticmethod(forward),
        "setup_context": staticmethod(setup_context),
        "backward": staticmethod(backward),
    })


FUNCTIONS = {cell: _function(cell) for cell in cells.SCHEMAS}


def _register():
    for cell in cells.SCHEMAS:
        setup_context, backward = make_autograd(cell)
        torch.library.register_autograd(f"{library.NAMESPACE}::{cell}", backward,
                                        setup_context=setup_context, lib=library._library)


_register()
