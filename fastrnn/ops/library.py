"""The `fastrnn` op library: definitions, the implementation that dispatches to a backend's op
kernels, and the fake (shape-only) implementations that torch.compile, torch.export, FakeTensor
mode and the meta device run instead.

Dimensions: T time, B batch, H hidden (cell) size, H_out output width, G gates.

The cpu backend also takes packed input: gx (N, G*H), the rows of PackedSequence.data (sequences
sorted by length, lengths required and non-increasing, h0 in that order); its output is then
(N, H_out) and dgx (N, G*H).

A backend's op kernels are a module with
    op_forward(call) -> (output (T, B, H_out), h_n (B, H_out), c_n (B, H) or None, reserve tuple)
    op_backward(call, output, reserve, dout, dh_n, dc_n)
        -> (dgx, dh0, dc0, dw_hh, dw_hr, db_hh), None for an absent input
    reserve_shapes(call) -> ((shape, dtype), ...): the reserves op_forward returns when call.store
    DOUBLE_BACKWARD_ERROR: the message a differentiated backward raises
and optionally backward_state() (read when the forward runs) and backward_context(state) (entered
around the backward op): the Triton kernels carry a forced kernel form and form recorders over to
autograd's backward thread that way. The KEEPS_GX table below says whether a backend's
op_backward reads call.gx (else it is given None and gx is not kept alive); torch.compile reads
the table without importing anything.
"""

import contextlib
import importlib

import torch

from fastrnn.ops import cells

NAMESPACE = "fastrnn"
KERNELS = {
    "reference": "fastrnn.ops.reference_kernels",
    "cpu": "fastrnn.cpu.function",
    "triton": "fastrnn.kernels.launch",
}

# reference: recomputes the forward; triton: the launchers read gx's shape and use it as a stand-in
# pointer; cpu: gx's storage is freed after the forward (the largest tensor of a layer).
KEEPS_GX = {"reference": True, "cpu": False, "triton": True}

_library = torch.library.Library(NAMESPACE, "FRAGMENT")


def kernels_for(backend):
    """The op-kernels module of `backend` ('reference', 'cpu' or 'triton'), imported on first use
    (the triton backend's imports triton)."""
    if backend not in KERNELS:
        raise ValueError(f"fastrnn ops run the backends {sorted(KERNELS)}, not {backend!r}")
    return importlib.import_module(KERNELS[backend])


def backward_context(backend, state):
    """The context a backend's backward runs in (see the module docstring)."""
    if state is None:
        return contextlib.nullcontext()
    return kernels_for(backend).backward_context(state)


def backward_state(backend):
    """What backward_context needs from the forward's thread, or None."""
    module = kernels_for(backend)
    return module.backward_state() if hasattr(module, "backward_state") else None


def _reserve(call, reserve):
    """The cell's fixed count of reserve outputs: the backend's own, then empty tensors."""
    reserve = tuple(reserve) if call.store else ()
    empty = [call.gx.new_empty(0) for _ in range(cells.RESERVES[call.cell] - len(reserve))]
    return (*reserve, *empty)


def _forward(cell):
    def forward(*args):
        call = cells.call_from_args(cell, args)
        output, h_n, c_n, reserve = kernels_for(call.backend).op_forward(call)
        states = (h_n, c_n) if cell == "lstm" else (h_n,)
        return (output, *states, *_reserve(call, reserve))

    return forward


def _forward_fake(cell):
    def fake(*args):
        call = cells.call_from_args(cell, args)
        batch = call.h0.shape[0]
        h_out, hidden = call.w_hh.shape[1], call.hidden
        new = call.gx.new_empty
        states = (new(batch, h_out), new(batch, hidden)) if cell == "lstm" else (new(batch, h_out),)
        reserve = ()
        if call.store:
            reserve = tuple(new(shape, dtype=dtype)
                            for shape, dtype in kernels_for(call.backend).reserve_shapes(call))
        # (T, B, H_out), or (N, H_out) for packed input (N, G*H).
        return (new(*call.gx.shape[:-1], h_out), *states, *_reserve(call, reserve))

    return fake


def _absent(result, call, like):
    """The backward op's gradients in DIFFERENTIABLE order, an empty tensor for an absent input
    (gx is never absent: the backward is given None for it where the backend does not read it)."""
    by_name = dict(zip(("gx", "h0", "c0", "w_hh", "w_hr", "b_hh"), result))
    return tuple(like.new_empty(0) if name != "gx" and getattr(call, name) is None else by_name[name]
                 for name in cells.DIFFERENTIABLE[call.cell])


def _backward(cell):
    def backward(*args):
        call, output, reserve, grads = cells.call_from_backward_args(cell, args)
        dout, dh_n, *dc_n = grads
        result = kernels_for(call.backend).op_backward(call, output, reserve, dout, dh_n,
                                                       dc_n[0] if dc_n else None)
        return _absent(result, call, output)

    return backward


def _backward_fake(cell):
    def fake(*args):
        call, output, _, _ = cells.call_from_backward_args(cell, args)
        dgx = output.new_empty(*output.shape[:-1], call.w_hh.shape[0])
        rest = [None if t is None else torch.empty_like(t)
                for t in (call.h0, call.c0, call.w_hh, call.w_hr, call.b_hh)]
        return _absent((dgx, *rest), call, output)

    return fake


def _define():
    for cell in cells.SCHEMAS:
        for name, schema, impl, fake in (
            (cell, cells.SCHEMAS[cell], _forward(cell), _forward_fake(cell)),
            (f"{cell}_backward", cells.BACKWARD_SCHEMAS[cell], _backward(cell), _backward_fake(cell)),
        ):
            _library.define(name + schema)
            # CompositeExplicitAutograd: one kernel for every device (each backend checks its own
            # devices); autograd, vmap and the fake kernel are registered separately.
            _library.impl(name, impl, "CompositeExplicitAutograd")
            torch.library.register_fake(f"{NAMESPACE}::{name}", fake, lib=_library)


_define()


def op(cell):
    """The forward op of `cell` ('lstm', 'gru' or 'rnn')."""
    return getattr(torch.ops.fastrnn, cell).default


def backward_op(cell):
    return getattr(torch.ops.fastrnn, f"{cell}_backward").default
