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


def _select_one(arg, dim, index):
    """Instance `index` of one vmapped argument: a tensor, or a list of tensors with a list of dims."""
    if isinstance(arg, (list, tuple)):
        return [_select_one(a, d, index) for a, d in zip(arg, dim or [None] * len(arg))]
    return arg if dim is None else arg.select(dim, index)


def _stack(parts):
    """The instances' outputs stacked along a new dim 0. A reserve whose row count is a value of
    the instance's data (the cpu backend's packed record, sum(lengths) rows) is padded with zero
    rows to the longest: the backward reads an instance's own rows only."""
    rows = max(part.shape[0] for part in parts) if parts[0].dim() else None
    if rows is not None and any(part.shape[0] != rows for part in parts):
        parts = [torch.cat([part, part.new_zeros(rows - part.shape[0], *part.shape[1:])])
                 for part in parts]
    return torch.stack(parts)


def loop(op, info, in_dims, args):
    """Run `op` per vmapped instance; every output (a tensor, or each tensor of a list output)
    stacked along dim 0. Returns (outputs, out_dims) as a vmap rule does."""
    results = [op(*(_select_one(a, d, i) for a, d in zip(args, in_dims)))
               for i in range(info.batch_size)]
    outputs, dims = [], []
    for parts in zip(*results):
        if isinstance(parts[0], (list, tuple)):
            outputs.append([_stack(list(p)) for p in zip(*parts)])
            dims.append([0] * len(parts[0]))
        else:
            outputs.append(_stack(parts))
            dims.append(0)
    return tuple(outputs), tuple(dims)


def fold(size, arg, dim, batch_dim):
    """(..., B, ...) with the vmapped dimension `dim` (None: the same for every instance) ->
    (..., V*B, ...) with the instances joined at `batch_dim`."""
    if dim is None:
        arg = arg.unsqueeze(batch_dim).expand(*arg.shape[:batch_dim], size, *arg.shape[batch_dim:])
    else:
        arg = arg.movedim(dim, batch_dim)
    return arg.flatten(batch_dim, batch_dim + 1)


def _fold(cell, info, in_dims, args):
    """One call with the V instances in the batch: (T, B, X) -> (T, V*B, X), (B, X) -> (V*B, X)."""
    size = info.batch_size
    folded = []
    for name, arg, dim in zip(cells.ARGUMENTS[cell], args, in_dims):
        if name in _PER_SEQUENCE and arg is not None:
            arg = fold(size, arg, dim, _PER_SEQUENCE[name])
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
        # Packed rows (N, G*H) (the cpu backend's packed input) do not join another instance's
        # batch: one call per instance.
        packed_rows = args[0].dim() - (in_dims[0] is not None) == 2
        if not weights_batched and not store and not packed_rows:
            return _fold(cell, info, in_dims, args)
        return loop(library.op(cell), info, in_dims, args)

    return rule


def _backward_rule(cell):
    def rule(info, in_dims, *args):
        return loop(library.backward_op(cell), info, in_dims, args)

    return rule


def _register():
    for cell in cells.SCHEMAS:
        torch.library.register_vmap(f"{library.NAMESPACE}::{cell}", _forward_rule(cell),
                                    lib=library._library)
        torch.library.register_vmap(f"{library.NAMESPACE}::{cell}_backward", _backward_rule(cell),
                                    lib=library._library)


_register()
