"""vmap rules of the fastrnn ops (torch.func.vmap, and jacrev, which vmaps the backward).

Dimensions: V the vmapped size, T time, B batch, X any width.

Natural rule: a recurrence already runs a batch of independent sequences, so when only the
per-sequence tensors (gx, h0, c0, lengths) are vmapped and no gradient is being recorded (no
reserves), the V instances join the batch: one call on V*B sequences. Otherwise (vmapped weights,
reserves whose layout is per call, the backward's weight gradients that must stay per instance)
the rule runs the op once per instance and stacks the results: slower, never wrong.
"""

import torch

from fastrnn.ops import cells, library

_PER_SEQUENCE = {"gx": 1, "h0": 0, "c0": 0, "lengths": 0}  # each tensor's batch dimension


def _select(args, in_dims, index):
    return tuple(arg if dim is None else arg.select(dim, index) for arg, dim in zip(args, in_dims))


def _stack(parts):
    """The instances' outputs stacked along a new dim 0. A reserve whose row count is a value of
    the instance's data (the cpu backend's packed record, sum(lengths) rows) is padded with zero
    rows to the longest: the backward reads an instance's own rows only."""
    rows = max(part.shape[0] for part in parts) if parts[0].dim() else None
    if rows is not None and any(part.shape[0] != rows for part in parts):
        parts = [torch.cat([part, part.new_zeros(rows - part.shape[0], *part.shape[1:])])
                 for part in parts]
    return torch.stack(parts)


def _loop(op, info, in_dims, args):
    """Run `op` per vmapped instance; every output stacked along dim 0."""
    results = [op(*_select(args, in_dims, i)) for i in range(info.batch_size)]
    outputs = tuple(_stack(parts) for parts in zip(*results))
    return outputs, (0,) * len(outputs)


def _fold(cell, info, in_dims, args):
    """One call with the V instances in the batch: (T, B, X) -> (T, V*B, X), (B, X) -> (V*B, X)."""
    size = info.batch_size
    folded = []
    for name, arg, dim in zip(cells.ARGUMENTS[cell], args, in_dims):
        if name in _PER_SEQUENCE and arg is not None:
            batch_dim = _PER_SEQUENCE[name]
            if dim is None:
                arg = arg.unsqueeze(batch_dim).expand(*arg.shape[:batch_dim], size,
                                                      *arg.shape[batch_dim:])
            else:
                arg = arg.movedim(dim, batch_dim)
            arg = arg.flatten(batch_dim, batch_dim + 1)
        folded.append(arg)
    outputs = library.op(cell)(*folded)
    batch = folded[0].shape[1] // size
    output = outputs[0].unflatten(1, (size, batch))
    states = tuple(s.unflatten(0, (size, batch)) for s in outputs[1 : 3 if cell == "lstm" else 2])
    reserves = outputs[len(states) + 1 :]
    return (output, *states, *reserves), (1, *(0,) * len(states), *(None,) * len(reserves))


def _forward_rule(cell):
    def rule(info, in_dims, *args):
        named = dict(zip(cells.ARGUMENTS[cell], in_dims))
        weights_batched = any(named.get(name) is not None for name in ("w_hh", "w_hr", "b_hh"))
        store = dict(zip(cells.ARGUMENTS[cell], args)).get("store", False)
        if not weights_batched and not store:
            return _fold(cell, info, in_dims, args)
        return _loop(library.op(cell), info, in_dims, args)

    return rule


def _backward_rule(cell):
    def rule(info, in_dims, *args):
        return _loop(library.backward_op(cell), info, in_dims, args)

    return rule


def _register():
    for cell in cells.SCHEMAS:
        torch.library.register_vmap(f"{library.NAMESPACE}::{cell}", _forward_rule(cell),
                                    lib=library._library)
        torch.library.register_vmap(f"{library.NAMESPACE}::{cell}_backward", _backward_rule(cell),
                                    lib=library._library)


_register()
