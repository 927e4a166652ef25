"""The recurrences as registered torch ops: `torch.ops.fastrnn.lstm / gru / rnn` (and their
`*_backward` ops), one call per layer and direction, whatever the sequence length.

Dimensions: T time, B batch, H hidden (cell) size, P projection size, H_out = P if P > 0 else H,
G gates (LSTM 4, GRU 3, RNN 1).

What the ops give (layout: cells.py schemas, library.py definitions and fake implementations,
autograd.py, batching.py vmap rules, reference_kernels.py, native_op.py the torch backend traced,
onnx.py the ONNX translation):
    torch.compile  Dynamo sees one op per layer-direction: compile time does not grow with T and a
                   new T or B does not recompile (dynamic shapes come from the fake implementation).
    torch.export   the same nodes, exportable with dynamic T and B; an exported program runs the
                   backend it was exported with and is differentiable through the backward op.
    torch.func     grad, vjp, jacrev and vmap (the vmapped instances join the batch where that is
                   exact, else one call per instance); forward-mode AD (jvp, jacfwd) runs the
                   reference's plain ops, which have forward-mode derivatives.
    meta, fake     a forward on meta tensors or under FakeTensorMode returns tensors of the right
                   shapes without running anything.

Which backend runs as an op: 'triton' always and 'cpu' whenever a gradient may be taken or
anything traces or intercepts the call (their kernels are only reachable through the op); an eager
'cpu' call that needs no gradient, with nothing watching, runs the op's kernels without the op's
dispatch (`_unobserved_cpu_call`: 0.3 ms a call saved, the same kernels and results).
'reference' only while torch.compile or torch.export traces: eagerly it stays plain
autograd-through-ops (the executable spec, differentiable twice); traced, its op runs the same loop
and its backward op recomputes and differentiates it, so a compiled graph does not unroll T steps.
'torch' (torch's own _VF ops) runs eagerly as itself and, traced, as one `fastrnn::torch_rnn` op
for the whole stack (native_op.py).
The Triton kernels are a custom op with a fake implementation, not a `torch.library.triton_op`:
their host side picks a kernel form per device at run time, retries the next form when one cannot
compile or launch, launches cooperative grids, and the stepwise form launches once per step from a
Python loop, none of which a traced launcher graph can express (and a traced stepwise form would
unroll T launches).
"""

import torch

from fastrnn.ops import (  # noqa: F401  (registers the ops)
    autograd,
    batching,
    cells,
    library,
    native_op,
    onnx,
    reference_kernels,
)
from fastrnn.ops.autograd import forward_ad_active, functorch_levels

__all__ = ["recurrence", "implementation"]


def recurrence(backend, cell, gx, h0, c0, w_hh, w_hr=None, b_hh=None, lengths=None,
               reverse=False, nonlinearity="tanh"):
    """Run one layer-direction of `cell` on `backend` as a `fastrnn::<cell>` op call.

    Args:
        backend: 'reference', 'cpu' or 'triton'.  cell: 'lstm', 'gru' or 'rnn'.
        gx (T, B, G*H), or on the cpu backend packed (N, G*H): PackedSequence.data's rows, the
        sequences sorted by length (then lengths is required, and the output (N, H_out));
        h0 (B, H_out); c0 (B, H) for LSTM else None; w_hh (G*H, H_out); w_hr (P, H) or None;
        b_hh (3H,) for GRU or None; lengths (B,) int64 or None;
        reverse: run backwards; nonlinearity: RNN's 'tanh' or 'relu'.
    Returns:
        (output (T, B, H_out), h_n (B, H_out)[, c_n (B, H) for LSTM]), as fastrnn.reference.

    Example:
        >>> out, h_n = recurrence("cpu", "gru", gx, h0, None, w_hh, b_hh=b_hh)
    """
    if cell == "rnn" and nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
    if gx.dim() == 2 and (backend != "cpu" or lengths is None):
        raise ValueError(f"packed input (a 2-D gx) runs on the cpu backend with lengths, not on "
                         f"{backend!r}{'' if lengths is not None else ' without lengths'}")
    tensors = (gx, h0, c0, w_hh, w_hr, b_hh)
    store = _needs_grad(tensors)
    call = cells.Call(cell=cell, backend=backend, gx=gx, h0=h0, c0=c0, w_hh=w_hh, w_hr=w_hr,
                      b_hh=b_hh, lengths=lengths, reverse=bool(reverse), nonlinearity=nonlinearity,
                      store=store)
    if forward_ad_active():
        # The ops have no forward-mode formula; the reference's plain ops do.
        return reference_kernels.run(call)
    if not store and _unobserved_cpu_call(backend, tensors):
        # Inference on plain CPU tensors with no tracer, transform or mode around: the op's kernels
        # directly. The op's dispatch (its autograd Function, torch.library, the compile guard)
        # costs about 0.3 ms a call, a tenth of a 200-step sequence's time at B=8, H=64, and
        # nothing would use the node it builds.
        output, h_n, c_n, _ = library.kernels_for(backend).op_forward(call)
        return (output, h_n, c_n) if cell == "lstm" else (output, h_n)
    outputs = autograd.FUNCTIONS[cell].apply(*cells.args_from_call(call))
    return cells.public_outputs(cell, outputs)


_PLAIN = (torch.Tensor, torch.nn.Parameter)


def _needs_grad(tensors):
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def plain_eager_cpu(tensors):
    """True for a cpu-backend call on `tensors` in plain eager mode: nothing tracing or
    intercepting, no forward-mode AD (a gradient may still be recorded). Under torch.compile it is
    False before anything else is asked."""
    return _unobserved_cpu_call("cpu", tensors) and not forward_ad_active()


def unobserved_cpu_inference(tensors):
    """True for a cpu-backend call on `tensors` that may skip the op: plain eager mode and no
    gradient needed (the rule of recurrence's direct path; the LSTM's inference layer,
    fastrnn.cpu.inference, uses it too)."""
    return plain_eager_cpu(tensors) and not _needs_grad(tensors)


def _unobserved_cpu_call(backend, tensors):
    """True for an eager cpu-backend call on plain CPU tensors that nothing traces or intercepts:
    no torch.compile, torch.export, jit tracing, torch.func transform, tensor subclass (fake,
    functional, batched), or torch function / dispatch mode (a FlopCounterMode sees the op)."""
    from torch.utils._python_dispatch import _get_current_dispatch_mode

    if (backend != "cpu" or torch.compiler.is_compiling() or torch.jit.is_tracing()
            or torch._C._is_torch_function_mode_enabled() or _get_current_dispatch_mode() is not None
            or functorch_levels()):
        return False
    return all(t is None or (type(t) in _PLAIN and t.device.type == "cpu") for t in tensors)


class _Implementation:
    """The `<cell>_recurrence` functions of one backend as op calls (what functional runs)."""

    def __init__(self, backend):
        self.backend = backend

    def lstm_recurrence(self, gx, h0, c0, w_hh, w_hr=None, lengths=None, reverse=False):
        return recurrence(self.backend, "lstm", gx, h0, c0, w_hh, w_hr, None, lengths, reverse)

    def gru_recurrence(self, gx, h0, w_hh, b_hh=None, lengths=None, reverse=False):
        return recurrence(self.backend, "gru", gx, h0, None, w_hh, None, b_hh, lengths, reverse)

    def rnn_recurrence(self, gx, h0, w_hh, nonlinearity="tanh", lengths=None, reverse=False):
        return recurrence(self.backend, "rnn", gx, h0, None, w_hh, None, None, lengths, reverse,
                          nonlinearity)


def implementation(backend):
    """An object with lstm_recurrence / gru_recurrence / rnn_recurrence (the signatures of
    fastrnn.reference) that run `backend` as op calls."""
    return _Implementation(backend)
