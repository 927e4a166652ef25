"""Turn a fuzzer call (fuzz_calls) into twin modules and arguments for torch.nn and fastrnn.

Both sides get the same weights and the same values, each through its own leaf tensors, so their
gradients can be compared. A layout mutation (transposed, expanded, overlapping) is a view of the
leaf: the gradient is taken with respect to the leaf under it.
"""

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import fastrnn

DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
          "int64": torch.int64, "int32": torch.int32, "bool": torch.bool}


class Leaf:
    """A value both sides receive: float64 `values` shaped `shape`, a dtype, a layout, a grad flag.

    `make()` returns (argument, leaf): a fresh leaf tensor (or None when it cannot carry a
    gradient) and the argument built from it.
    """

    def __init__(self, values, dtype, requires_grad, layout=None):
        self.values, self.dtype, self.layout = values, dtype, layout
        self.requires_grad = requires_grad and dtype.is_floating_point

    def make(self):
        if self.layout == "expanded":
            base = self.values.narrow(-2, 0, 1).to(self.dtype).clone()
        elif self.layout == "overlapping":
            base = self.values.reshape(-1)[: self._overlap_storage()].to(self.dtype).clone()
        elif self.layout == "transposed":
            base = self.values.transpose(0, -1).contiguous().to(self.dtype)
        else:
            base = self.values.to(self.dtype).clone()
        base.requires_grad_(self.requires_grad)
        return self._view(base), (base if self.requires_grad else None)

    def _overlap_storage(self):
        # Consecutive steps share all but one row: stride 1 along the first dimension.
        shape = self.values.shape
        return int(np.prod(shape[1:])) + shape[0] - 1

    def _view(self, base):
        shape = tuple(self.values.shape)
        if self.layout == "expanded":
            return base.expand(shape)
        if self.layout == "overlapping":
            strides = [1] + [int(np.prod(shape[k + 1:])) for k in range(1, len(shape))]
            return base.as_strided(shape, strides)
        if self.layout == "transposed":
            return base.transpose(0, -1)
        return base


def _generator(call):
    return torch.Generator().manual_seed(call["seed"])


def modules(call):
    """(torch.nn module, fastrnn module) of the call's class with the same weights."""
    kind, ctor = call["kind"], dict(call["ctor"])
    dtype = DTYPES[call["dtype"]]
    torch.manual_seed(call["seed"])
    reference = getattr(nn, kind)(**ctor, dtype=dtype)
    ours = getattr(fastrnn, kind)(**ctor, dtype=dtype, backend=call["backend"])
    ours.load_state_dict(reference.state_dict())
    mutations = dict(call["mutations"])
    for module in (reference, ours):
        params = list(module.named_parameters())
        if "weight_special" in mutations:
            which, position, value = mutations["weight_special"]
            name, param = params[which % len(params)]
            with torch.no_grad():
                param.view(-1)[position % param.numel()] = value
        if "weight_dtype" in mutations:
            name, param = params[mutations["weight_dtype"] % len(params)]
            other = torch.float32 if dtype == torch.float64 else torch.float64
            setattr(module, name, nn.Parameter(param.detach().to(other)))
        if "weight_deleted" in mutations:
            name, _ = params[mutations["weight_deleted"] % len(params)]
            delattr(module, name)
    return reference, ours


def _special(values, mutation):
    """Put a NaN or infinity at one position of a float64 tensor (a copy)."""
    if mutation is None or values.numel() == 0:
        return values
    position, value = mutation[:2]
    values = values.clone()
    values.view(-1)[position % values.numel()] = value
    return values


def _input_shape(call, mutations):
    ctor, steps, batch = call["ctor"], call["T"], call["B"]
    if "time_empty" in mutations:
        steps = 0
    if "batch_empty" in mutations:
        batch = 0
    features = ctor["input_size"] + mutations.get("input_features", 0)
    if call["kind"].endswith("Cell"):
        shape = [batch, features] if call["style"] == "batched" else [features]
    elif call["style"] == "unbatched":
        shape = [steps, features]
    elif call["style"] == "packed":
        shape = [steps, batch, features]
    else:
        shape = [batch, steps, features] if ctor.get("batch_first") else [steps, batch, features]
    ndim = mutations.get("input_ndim", 0)
    if ndim < 0:
        shape = shape[1:]
    elif ndim > 0:
        shape = [2] + shape
    return shape


def _state_shapes(call, mutations):
    """Shapes of the given state tensors: [h] or [h, c]."""
    ctor, batch = call["ctor"], call["B"] if "batch_empty" not in mutations else 0
    hidden = ctor["hidden_size"]
    if call["kind"].endswith("Cell"):
        widths = [hidden, hidden] if call["kind"] == "LSTMCell" else [hidden]
        shapes = [[batch, w] if call["style"] == "batched" else [w] for w in widths]
    else:
        count = ctor.get("num_layers", 1) * (2 if ctor.get("bidirectional") else 1)
        h_out = ctor.get("proj_size", 0) or hidden
        widths = [h_out, hidden] if call["kind"] == "LSTM" else [h_out]
        shapes = [[count, batch, w] if call["style"] != "unbatched" else [count, w] for w in widths]
    if "hx_shape" in mutations:
        dim, delta, which = mutations["hx_shape"]
        shape = shapes[which % len(shapes)]
        shape[dim % len(shape)] = max(0, shape[dim % len(shape)] + delta)
    if "hx_ndim" in mutations:
        delta, which = mutations["hx_ndim"]
        shape = shapes[which % len(shapes)]
        shapes[which % len(shapes)] = shape[1:] if delta < 0 else [2] + shape
    return shapes


def _state_leaves(call, mutations, gen, dtype):
    leaves = []
    for index, shape in enumerate(_state_shapes(call, mutations)):
        values = torch.randn(shape, generator=gen, dtype=torch.float64) * 0.5
        special = mutations.get("hx_special")
        if special is not None and special[2] % 2 == index % 2:
            values = _special(values, special)
        leaf_dtype = dtype
        if "hx_dtype" in mutations and mutations["hx_dtype"][1] % 2 == index % 2:
            leaf_dtype = DTYPES[mutations["hx_dtype"][0]]
        layout = None
        if "hx_layout" in mutations and mutations["hx_layout"][1] % 2 == index % 2 and shape:
            layout = mutations["hx_layout"][0]
            if layout == "expanded" and len(shape) < 2:
                layout = "transposed"
        leaves.append(Leaf(values, leaf_dtype, call["hx_grad"], layout))
    return leaves


def _wrap_states(call, states, mutations):
    """The hx argument from the state tensors, in the call's (possibly wrong) container."""
    lstm = call["kind"] in ("LSTM", "LSTMCell")
    hx = tuple(states) if lstm else states[0]
    kind = mutations.get("hx_type")
    if kind == "bare":
        return states[0]
    if kind == "stacked":
        return torch.stack(states) if len({s.shape for s in states}) == 1 else states[0]
    if kind == "triple":
        return (*states, states[0])
    if kind == "single":
        return (states[0],)
    if kind == "list":
        return list(states)
    if kind == "nested":
        return (tuple(states),)
    if kind == "int":
        return 0
    return hx


def _packed(call, padded, mutations):
    """A PackedSequence of `padded` (T, B, I) with the call's lengths, then its mutations."""
    lengths = torch.tensor(call["lengths"][: padded.shape[1]] or [1], dtype=torch.int64)
    if padded.dim() != 3 or padded.shape[1] != len(call["lengths"]) or padded.numel() == 0:
        # Shape mutations already broke the batch: build the packed sequence by hand.
        data = padded.reshape(-1, padded.shape[-1]) if padded.dim() >= 2 else padded
        return PackedSequence(data, torch.tensor([data.shape[0]]), None, None)
    packed = pack_padded_sequence(padded, lengths, enforce_sorted=call["enforce_sorted"])
    data, batch_sizes, sorted_indices, unsorted_indices = packed
    batch_sizes = batch_sizes.clone()
    if "batch_sizes_negative" in mutations:
        batch_sizes[mutations["batch_sizes_negative"] % len(batch_sizes)] = -1
    if "batch_sizes_increasing" in mutations:
        batch_sizes = batch_sizes.flip(0)
    if "batch_sizes_zero" in mutations:
        batch_sizes[mutations["batch_sizes_zero"] % len(batch_sizes)] = 0
    if "batch_sizes_sum" in mutations:
        batch_sizes[-1] = batch_sizes[-1] + mutations["batch_sizes_sum"]
    if "batch_sizes_dtype" in mutations:
        batch_sizes = batch_sizes.to(DTYPES[mutations["batch_sizes_dtype"]])
    if "batch_sizes_ndim" in mutations:
        batch_sizes = batch_sizes.unsqueeze(0)
    kind = mutations.get("sorted_indices")
    if kind == "short" and sorted_indices is not None:
        sorted_indices = sorted_indices[:-1]
    elif kind == "out_of_range":
        sorted_indices = torch.full((padded.shape[1],), padded.shape[1], dtype=torch.int64)
    elif kind == "duplicate":
        sorted_indices = torch.zeros(padded.shape[1], dtype=torch.int64)
    elif kind == "unsorted_none":
        unsorted_indices = None
    if "packed_data_ndim" in mutations:
        data = data.unsqueeze(0)
    return PackedSequence(data, batch_sizes, sorted_indices, unsorted_indices)


class Arguments:
    """The call's arguments for one side: `args` for forward, `leaves` to differentiate."""

    def __init__(self, call, oracle=False):
        """oracle: the same values (rounded to the call's dtype) as float64 tensors, for the
        float64 run of a float32 call."""
        self.call = call
        mutations = dict(call["mutations"])
        dtype = DTYPES[call["dtype"]]
        gen = _generator(call)
        values = torch.randn(_input_shape(call, mutations), generator=gen, dtype=torch.float64)
        values = _special(values, mutations.get("input_special"))
        input_dtype = DTYPES[mutations.get("input_dtype", call["dtype"])]
        if oracle:
            values, input_dtype = values.to(input_dtype).to(torch.float64), torch.float64
        layout = mutations.get("input_layout") if values.dim() >= 2 else None
        self.input = Leaf(values, input_dtype, call["input_grad"], layout)
        self.states = _state_leaves(call, mutations, gen, dtype) if call["hx"] == "given" else []
        if oracle:
            for leaf in self.states:
                leaf.values, leaf.dtype = leaf.values.to(leaf.dtype).to(torch.float64), torch.float64
        self.mutations = mutations
        self.upstream_seed = call["seed"] + 1

    def make(self):
        """(args tuple for forward, list of leaf tensors or None)."""
        mutations = self.mutations
        argument, input_leaf = self.input.make()
        if self.call["style"] == "packed":
            argument = _packed(self.call, argument, mutations)
        kind = mutations.get("input_type")
        if kind == "list":
            argument = argument.tolist() if isinstance(argument, torch.Tensor) else [argument]
        elif kind == "numpy":
            argument = argument.detach().numpy() if isinstance(argument, torch.Tensor) else argument
        elif kind == "none":
            argument = None
        made = [leaf.make() for leaf in self.states]
        args = [argument]
        if self.states:
            args.append(_wrap_states(self.call, [m[0] for m in made], mutations))
        elif "hx_type" in mutations and mutations["hx_type"] == "int":
            args.append(0)
        if "extra_argument" in mutations:
            args += [None] * (2 - len(args)) + [None]
        return tuple(args), [input_leaf] + [m[1] for m in made]
