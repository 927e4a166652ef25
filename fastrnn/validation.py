"""Checks that run before any implementation touches its arguments.

torch.nn leaves some malformed calls to whichever ATen op trips first (a matmul's dtype message),
to a crash (a PackedSequence with a negative batch size frees memory it does not own) or to a
silently wrong result (duplicate sorted_indices). fastrnn checks them up front and says what is
wrong, with torch's own wording where torch has one.
"""

import torch

# ATen's scalar type names, as in "found input tensor with Float and hidden tensor with Double".
_ATEN_NAMES = {torch.float64: "Double", torch.float32: "Float", torch.float16: "Half",
               torch.bfloat16: "BFloat16", torch.int64: "Long", torch.int32: "Int",
               torch.bool: "Bool"}


def _dtype_name(dtype):
    return _ATEN_NAMES.get(dtype, str(dtype).removeprefix("torch."))


def values_readable(*tensors):
    """Whether a check may read these tensors' values on the host.

    Not while torch.compile or torch.export traces (a data-dependent guard, or a graph break under
    fullgraph) and not on meta or fake tensors (they have no values): the eager call on real tensors
    runs the same check.
    """
    if torch.compiler.is_compiling():
        return False
    from torch._subclasses.fake_tensor import is_fake

    return not any(t.is_meta or is_fake(t) for t in tensors if t is not None)


def check_same_dtype_and_device(input, states, weights):
    """Every state and parameter has the input's dtype and device.

    Args:
        input: the (T, B, I) or (B, I) input.  states: state tensors.  weights: parameter tensors
            (None entries skipped).
    Raises:
        RuntimeError with torch.nn's wording for the device: on the CPU its kernels' first matmul
        ("mat1 and mat2 must have the same dtype, but got Double and Float"), elsewhere ATen's RNN
        check ("Input and hidden tensors are not the same dtype, found input tensor with Float
        and hidden tensor with Double").
    """
    for kind, tensors in (("hidden", states), ("parameter", weights)):
        for tensor in tensors:
            if tensor is None:
                continue
            if tensor.dtype != input.dtype:
                raise _dtype_mismatch(kind, input, tensor)
            if tensor.device != input.device:
                raise RuntimeError(
                    f"Input and {kind} tensors are not at the same device, found input tensor at "
                    f"{input.device} and {kind} tensor at {tensor.device}")


def _dtype_mismatch(kind, input, tensor):
    if input.device.type == "cpu":
        # The state is the matmul's left operand (h @ W_hh^T), the input the left of x @ W_ih^T.
        first, second = (tensor, input) if kind == "hidden" else (input, tensor)
        return RuntimeError(f"mat1 and mat2 must have the same dtype, but got "
                            f"{_dtype_name(first.dtype)} and {_dtype_name(second.dtype)}")
    return RuntimeError(
        f"Input and {kind} tensors are not the same dtype, found input tensor with "
        f"{_dtype_name(input.dtype)} and {kind} tensor with {_dtype_name(tensor.dtype)}")


def check_batch_sizes(batch_sizes):
    """A PackedSequence's batch_sizes is what pack_padded_sequence makes; returns the batch size.

    batch_sizes (T,) int64 on the CPU: positive and non-increasing, or all zero for an empty
    batch. Checked before anything indexes with it: a negative entry makes
    pad_packed_sequence free memory it does not own.
    """
    if not isinstance(batch_sizes, torch.Tensor):
        raise TypeError(f"PackedSequence.batch_sizes must be a Tensor, got "
                        f"{type(batch_sizes).__name__}")
    if batch_sizes.dim() != 1 or batch_sizes.dtype != torch.int64 or batch_sizes.device.type != "cpu":
        raise RuntimeError(
            f"PackedSequence.batch_sizes must be a 1-D int64 CPU tensor, got a {batch_sizes.dim()}-D "
            f"{batch_sizes.dtype} tensor on {batch_sizes.device}")
    if batch_sizes.numel() == 0:
        raise RuntimeError("PackedSequence.batch_sizes is empty: a packed sequence has at least "
                           "one time step")
    sizes = batch_sizes.tolist()
    if sizes[0] == 0 and any(sizes):
        raise RuntimeError(f"PackedSequence.batch_sizes starts with 0 but is not all zero: {sizes}")
    if sizes[0] != 0 and min(sizes) < 1:
        raise RuntimeError(f"PackedSequence.batch_sizes must be positive, got {sizes}")
    if any(later > earlier for earlier, later in zip(sizes, sizes[1:])):
        raise RuntimeError(f"PackedSequence.batch_sizes must be non-increasing, got {sizes}")
    return sizes[0]


def check_packed_layout(data, batch_sizes, sorted_indices, unsorted_indices):
    """The rows of `data` and the permutations agree with batch_sizes (checked by
    check_batch_sizes); run after the input's own dimension checks.

    Args:
        data (N, I); batch_sizes (T,); sorted_indices, unsorted_indices (B,) or None.
    """
    if not values_readable(batch_sizes, data):
        return  # data-dependent checks; the eager call on real tensors runs them
    total = int(batch_sizes.sum())
    if data.size(0) != total:
        raise RuntimeError(f"PackedSequence.data has {data.size(0)} rows but batch_sizes sums to "
                           f"{total}")
    batch = int(batch_sizes[0])
    order = torch.arange(batch, device=data.device)
    for name, indices in (("sorted_indices", sorted_indices),
                          ("unsorted_indices", unsorted_indices)):
        if indices is None:
            continue
        if indices.dim() != 1 or indices.numel() != batch or indices.dtype != torch.int64:
            raise RuntimeError(
                f"PackedSequence.{name} must be a 1-D int64 permutation of the batch's {batch} "
                f"indices, got shape {tuple(indices.shape)} and dtype {indices.dtype}")
        if not torch.equal(indices.to(data.device).sort().values, order):
            raise RuntimeError(f"PackedSequence.{name} is not a permutation of 0..{batch - 1}")
    if sorted_indices is not None and unsorted_indices is not None:
        inverse = sorted_indices.to(data.device)[unsorted_indices.to(data.device)]
        if not torch.equal(inverse, order):
            raise RuntimeError("PackedSequence.unsorted_indices is not the inverse of sorted_indices")


def check_state_pair(hx, op):
    """An LSTM state is a tuple (or list) of two tensors; `op` names the call in the message.

    torch.nn leaves this to ATen ('lstm' / 'lstm_cell'), except where it re-tuples hx itself
    (unbatched input, unsorted packed input) and silently drops a third tensor; fastrnn refuses
    it everywhere.
    """
    if not isinstance(hx, (tuple, list)):
        raise TypeError(f"{op}(): argument 'hx' (position 2) must be tuple of Tensors, not "
                        f"{type(hx).__name__}")
    if len(hx) != 2:
        raise RuntimeError(f"{op} expects two hidden states")
