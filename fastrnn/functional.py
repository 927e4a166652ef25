"""Functional recurrent layers: per layer one input-projection GEMM, then the recurrence.

Dimensions: T time, B batch, I input size, H hidden size, P projection size,
H_out = P if P > 0 else H, L layers, D directions (2 if bidirectional else 1), G gates.

`weights` is a sequence of L*D tuples `(w_ih, w_hh, b_ih, b_hh, w_hr)` in torch's order (layer-major,
forward direction before reverse), with None for an absent bias or projection:
    w_ih (G*H, I or D*H_out), w_hh (G*H, H_out), b_ih/b_hh (G*H,), w_hr (P, H).

Inputs are time-major and padded; variable lengths are given as `lengths` (B,) and run inside the
recurrence (a finished sequence's state freezes, its outputs are zero). A PackedSequence's rows
go to `recurrent_stack_packed` (what the modules call), which the cpu backend runs without padding.

`fastrnn.explain(fastrnn.functional.lstm, input, hx, weights, backend=...)` says which backend (and
Triton kernel form) a call with these arguments runs, without running it.
"""

import contextlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from fastrnn import cpu, native, packing, reference, validation
from fastrnn.backends import RecurrenceSpec, resolve_backend

MODES = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")
GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
# One layer-direction's parameters: (w_ih, w_hh, b_ih, b_hh, w_hr), None for an absent one.
LayerWeights = tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor | None]
WEIGHTS_LAYOUT = ("a sequence of L*D tuples (w_ih, w_hh, b_ih, b_hh, w_hr), layer-major with the "
                  "forward direction before the reverse, None for an absent bias or projection "
                  "(see fastrnn.functional)")


def _implementation(name):
    if name == "reference":
        if torch.compiler.is_compiling():
            # Traced, the reference runs as one fastrnn op per layer-direction instead of T
            # unrolled steps; eagerly it stays the plain-ops executable spec (fastrnn.ops).
            from fastrnn import ops

            return ops.implementation("reference")
        return reference
    if name == "cpu":
        return cpu
    from fastrnn import kernels

    return kernels


def _projection_bias(mode, b_ih, b_hh):
    """The bias folded into the input projection: both biases, except GRU's b_hh (inside r*(...))."""
    if b_ih is None or mode == "GRU":
        return b_ih
    return b_ih + b_hh


def _run_direction(impl, mode, layer_input, states, weight, lengths, reverse):
    """One layer in one direction: (T, B, X) input -> output (T, B, H_out), final states list."""
    if torch.onnx.is_in_onnx_export():
        # ONNX's own LSTM/GRU/RNN take the projection weights themselves (fastrnn.ops.onnx).
        from fastrnn.ops import onnx

        return onnx.run_direction(mode, layer_input, states, weight, lengths, reverse)
    w_ih, w_hh, b_ih, b_hh, w_hr = weight
    bias = _projection_bias(mode, b_ih, b_hh)
    if impl is cpu and mode == "LSTM" and w_hr is None:
        # Inference: the input projection inside the compiled loop (cpu/inference.py), where it
        # applies; None otherwise.
        result = cpu.lstm_inference_layer(layer_input, states[0], states[1], w_ih, bias, w_hh,
                                          lengths, reverse)
        if result is not None:
            return result[0], [result[1], result[2]]
    # The CPU path adds the bias after the product (cpu.input_projection: MKL's addmm with one
    # costs more than the product and the add).
    gx = (cpu.input_projection if impl is cpu else F.linear)(layer_input, w_ih, bias)
    if mode == "LSTM":
        output, h_n, c_n = impl.lstm_recurrence(gx, states[0], states[1], w_hh, w_hr, lengths, reverse)
        return output, [h_n, c_n]
    if mode == "GRU":
        output, h_n = impl.gru_recurrence(gx, states[0], w_hh, b_hh, lengths, reverse)
        return output, [h_n]
    nonlinearity = "tanh" if mode == "RNN_TANH" else "relu"
    output, h_n = impl.rnn_recurrence(gx, states[0], w_hh, nonlinearity, lengths, reverse)
    return output, [h_n]


def _run_layers(impl, mode, input, states, weights, bidirectional, dropout, training, lengths):
    """Stacked (and bidirectional) recurrence; states are (L*D, B, X) tensors, returned likewise.
    input (T, B, I), or packed rows (N, I) for an implementation that takes them (the cpu one)."""
    directions = 2 if bidirectional else 1
    num_layers = len(weights) // directions
    finals = [[] for _ in states]
    layer_input = input
    for layer in range(num_layers):
        outputs = []
        for direction in range(directions):
            index = layer * directions + direction
            output, final = _run_direction(
                impl, mode, layer_input, [s[index] for s in states], weights[index], lengths,
                reverse=direction == 1,
            )
            outputs.append(output)
            for collected, tensor in zip(finals, final):
                collected.append(tensor)
        layer_input = outputs[0] if directions == 1 else torch.cat(outputs, dim=-1)
        if dropout > 0 and training and layer < num_layers - 1:
            layer_input = F.dropout(layer_input, dropout, training=True)
    return layer_input, [torch.stack(collected) for collected in finals]


# Device types that always have autocast: answered here, not by torch.amp.is_autocast_available,
# whose torch._C call torch.compile cannot trace on torch 2.11 (a fullgraph compile of a CUDA
# model broke on it on the H100).
_AUTOCAST_DEVICE_TYPES = frozenset({"cpu", "cuda"})


def _autocast_available(device_type):
    """Whether autocast exists for the device type (not for 'meta', where asking raises)."""
    if device_type in _AUTOCAST_DEVICE_TYPES:
        return True
    available = getattr(torch.amp, "is_autocast_available", None)  # newer than torch 2.4
    return available(device_type) if available is not None else device_type != "meta"


def _autocast(tensors):
    """Cast floating tensors to the active autocast dtype, as torch's RNN ops do under autocast.

    float64 tensors are not eligible and stay float64, as in autocast's own casts.
    """
    device_type = next(t.device.type for t in tensors if t is not None)
    if not _autocast_available(device_type) or not torch.is_autocast_enabled(device_type):
        return tensors, False
    dtype = torch.get_autocast_dtype(device_type)
    cast = [t.to(dtype) if t is not None and t.is_floating_point() and t.dtype != torch.float64
            else t for t in tensors]
    return cast, True


def _check_lengths(lengths, steps, batch):
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths, dtype=torch.int64)
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape ({batch},), got {tuple(lengths.shape)}")
    if not validation.values_readable(lengths):
        return lengths
    if batch and (int(lengths.min()) < 1 or int(lengths.max()) > steps):
        raise ValueError(
            f"lengths must lie in [1, {steps}] (the padded sequence length), "
            f"got min {int(lengths.min())} and max {int(lengths.max())}"
        )
    return lengths


def _zero_padding(input, lengths):
    """input (T, B, I) with the steps past each sequence's length set to 0.

    The recurrence never uses those steps, but it still computes them (the batch is not shrunk),
    and in the backward a zero gradient times a NaN or Inf there (padding from torch.empty, say)
    is NaN: it would poison every weight gradient. Layers > 0 get zeros there already.
    """
    steps = torch.arange(input.shape[0], device=input.device).unsqueeze(1)
    return input.masked_fill((steps >= lengths.unsqueeze(0)).unsqueeze(2), 0)


def check_weights(weights: Sequence[LayerWeights] | None, bidirectional: bool = False) -> None:
    """Refuse a missing or malformed `weights` with the layout it needs (before anything indexes it).

    TypeError: `weights` is None, not a sequence, or holds something other than tuples with
    tensors for w_ih and w_hh.  ValueError: it is empty, a tuple does not have 5 items, or a
    bidirectional stack has an odd count.
    """
    if weights is None:
        raise TypeError(f"weights are required: {WEIGHTS_LAYOUT}")
    if isinstance(weights, Tensor) or not isinstance(weights, Sequence):
        raise TypeError(f"weights must be {WEIGHTS_LAYOUT}; got a {type(weights).__name__}")
    if len(weights) == 0:
        raise ValueError(f"weights must be {WEIGHTS_LAYOUT}; got an empty sequence")
    layout = "a tuple (w_ih, w_hh, b_ih, b_hh, w_hr) with None for an absent bias or projection"
    for index, weight in enumerate(weights):
        if isinstance(weight, Tensor) or not isinstance(weight, Sequence):
            raise TypeError(f"weights[{index}] must be {layout}, got a {type(weight).__name__}")
        if len(weight) != 5:
            raise ValueError(f"weights[{index}] must be {layout}, got {len(weight)} items")
        if not (isinstance(weight[0], Tensor) and isinstance(weight[1], Tensor)):
            raise TypeError(f"weights[{index}]: w_ih and w_hh must be tensors")
    if bidirectional and len(weights) % 2:
        raise ValueError(f"a bidirectional stack needs 2 tuples per layer (forward, reverse), got "
                         f"{len(weights)}")


def recurrence_spec(mode: str, input: Tensor, weights: Sequence[LayerWeights]) -> RecurrenceSpec:
    """The facts the backend policy decides on for a call whose tensors are cast already.

    Shared by recurrent_stack and fastrnn.explain, so the two cannot decide on different facts.
    """
    w_hh, w_hr = weights[0][1], weights[0][4]
    return RecurrenceSpec(mode=mode, device=input.device, dtype=input.dtype,
                          hidden_size=w_hh.shape[0] // GATES[mode],
                          proj_size=0 if w_hr is None else w_hr.shape[0])


def _default_states(mode, input, weights, num_directions):
    """Zero initial states (L*D, B, X) with the input's dtype and device."""
    batch = input.shape[1]
    count = len(weights)
    w_hh = weights[0][1]
    hidden = w_hh.shape[0] // {"LSTM": 4, "GRU": 3}.get(mode, 1)
    h_width = w_hh.shape[1]
    zeros = input.new_zeros
    if mode == "LSTM":
        return [zeros(count, batch, h_width), zeros(count, batch, hidden)]
    return [zeros(count, batch, h_width)]


# torch.jit.trace would record the reference's time loop for one sequence length (the trace then
# fails or is wrong at another T), or the ops of the other backends, which TorchScript cannot run.
_TRACE_REFUSAL = (
    "torch.jit.trace cannot record fastrnn's {backend!r} backend correctly for every sequence "
    "length. Use torch.export.export(model, args, dynamic_shapes=...) or torch.compile(model); "
    "backend='torch' traces torch's own RNN ops, and fastrnn.convert(model, to='torch') gives "
    "torch.nn layers with the same weights.")


def recurrent_stack(mode: str, input: Tensor, states: Sequence[Tensor] | None,
                    weights: Sequence[LayerWeights] | None, *, bidirectional: bool = False,
                    dropout: float = 0.0, training: bool = False,
                    lengths: Tensor | Sequence[int] | None = None,
                    backend: str | None = None) -> tuple[Tensor, list[Tensor]]:
    """Run a stack of recurrent layers of any mode; the body of `lstm`, `gru` and `rnn`.

    Args:
        mode: 'LSTM', 'GRU', 'RNN_TANH' or 'RNN_RELU'.
        input: (T, B, I) time-major padded input.
        states: list of initial states, each (L*D, B, X) ([h0, c0] for LSTM, [h0] otherwise),
            or None for zeros.
        weights: L*D tuples (w_ih, w_hh, b_ih, b_hh, w_hr), see the module docstring; required.
        bidirectional, dropout, training: as torch.nn.LSTM (dropout after every layer but the last,
            in training only).
        lengths: optional (B,) int64 valid lengths, each in [1, T].
        backend: a backend name, or None for auto (see fastrnn.backends).
    Returns:
        (output (T, B, D*H_out), list of final states each (L*D, B, X)).
    Raises:
        TypeError / ValueError: `weights` missing or not in the layout above (check_weights).
    """
    if mode not in MODES:
        raise ValueError(f"Unrecognized RNN mode: {mode}")
    check_weights(weights, bidirectional)
    if input.shape[0] == 0:
        raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
    directions = 2 if bidirectional else 1
    if states is None:
        states = _default_states(mode, input, weights, directions)
    lengths = _check_lengths(lengths, input.shape[0], input.shape[1])
    call = _prepare(mode, input, states, weights, backend)
    return _run_padded(call, input=call.input, lengths=lengths, bidirectional=bidirectional,
                       dropout=dropout, training=training)


class _Prepared:
    """A call after autocast and the backend policy: input, states, weights (cast), whether
    autocast cast them, and the backend name that runs it."""

    def __init__(self, mode, input, states, weights, autocast, name):
        self.mode, self.input, self.states, self.weights = mode, input, states, weights
        self.autocast, self.name = autocast, name

    def autocast_off(self):
        """Autocast off around the run once it has cast the tensors (the ops must not recast)."""
        if not self.autocast:
            return contextlib.nullcontext()
        return torch.autocast(self.input.device.type, enabled=False)


def _prepare(mode, input, states, weights, backend):
    """Cast under autocast, check dtypes and devices, pick the backend (once per call)."""
    flat = [input, *states] + [w for weight in weights for w in weight]
    flat, autocast = _autocast(flat)
    input, states = flat[0], flat[1 : 1 + len(states)]
    weights = [tuple(flat[1 + len(states) + 5 * k : 1 + len(states) + 5 * (k + 1)])
               for k in range(len(weights))]
    if not autocast:
        validation.check_same_dtype_and_device(input, states, [w for wt in weights for w in wt])
    name, _ = resolve_backend(backend, recurrence_spec(mode, input, weights))
    if name != "torch" and torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():
        raise RuntimeError(_TRACE_REFUSAL.format(backend=name))
    return _Prepared(mode, input, states, weights, autocast, name)


def _run_padded(call, input, lengths, bidirectional, dropout, training):
    """Run a prepared call on a padded (T, B, I) input (call.input, or its unpacked rows)."""
    with call.autocast_off():
        # Exported to ONNX, every backend is ONNX's own operator (fastrnn.ops.onnx).
        if call.name == "torch" and not torch.onnx.is_in_onnx_export():
            return native.recurrent_stack(call.mode, input, call.states, call.weights,
                                          bidirectional, dropout, training, lengths)
        if lengths is not None:
            lengths = lengths.to(input.device)
            input = _zero_padding(input, lengths)
        return _run_layers(_implementation(call.name), call.mode, input, call.states, call.weights,
                           bidirectional, dropout, training, lengths)


def recurrent_stack_packed(mode: str, data: Tensor, batch_sizes: Tensor,
                           sorted_indices: Tensor | None, unsorted_indices: Tensor | None,
                           states: Sequence[Tensor], weights: Sequence[LayerWeights], *,
                           bidirectional: bool = False, dropout: float = 0.0,
                           training: bool = False,
                           backend: str | None = None) -> tuple[Tensor, list[Tensor]]:
    """Run a stack on a PackedSequence's rows; what the modules run for packed input.

    The cpu backend takes the packed rows as they are: every layer's input projection,
    recurrence and output stay (N, X), N = batch_sizes.sum(), with no padded (T, B, X) tensor (in
    either pass) and no work on padding. The other backends, and the cpu backend under a
    torch.func transform, torch.compile or ONNX export (whose rules and translations take padded
    input), run the padded batch (fastrnn.packing.unpack, then pack).

    Args:
        mode: 'LSTM', 'GRU', 'RNN_TANH' or 'RNN_RELU'.
        data (N, I), batch_sizes (T,), sorted_indices / unsorted_indices (B,) or None: the
            PackedSequence's fields (validated by the caller; B >= 1).
        states: list of initial states, each (L*D, B, X), in the caller's order (not sorted).
        weights, bidirectional, dropout, training, backend: see `recurrent_stack`.
    Returns:
        (output rows (N, D*H_out) in the PackedSequence's order, list of final states each
        (L*D, B, X) in the caller's order).
    """
    if mode not in MODES:
        raise ValueError(f"Unrecognized RNN mode: {mode}")
    check_weights(weights, bidirectional)
    call = _prepare(mode, data, states, weights, backend)
    data, batch = call.input, call.states[0].shape[1]
    if call.name == "cpu" and call.weights[0][1].shape[0] > 0 and not (
            torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export() or _transformed()):
        lengths = packing.sorted_lengths(batch_sizes, batch)  # non-increasing
        states = call.states
        if sorted_indices is not None:
            states = [s.index_select(1, sorted_indices) for s in states]
        with call.autocast_off():
            output, finals = _run_layers(cpu, mode, data, states, call.weights, bidirectional,
                                         dropout, training, lengths)
        if unsorted_indices is not None:
            finals = [s.index_select(1, unsorted_indices) for s in finals]
        return output, finals
    padded, lengths = packing.unpack(data, batch_sizes, batch, unsorted_indices)
    output, finals = _run_padded(call, padded, lengths, bidirectional, dropout, training)
    return packing.pack(output, batch_sizes, data.shape[0], sorted_indices), finals


def _transformed():
    """Whether a torch.func transform (vmap, grad, ...) is active: their rules take padded input."""
    from fastrnn.ops.autograd import functorch_levels

    return bool(functorch_levels())


def lstm(input: Tensor, hx: tuple[Tensor, Tensor] | Sequence[Tensor] | None = None,
         weights: Sequence[LayerWeights] | None = None, *, bidirectional: bool = False,
         dropout: float = 0.0, training: bool = False,
         lengths: Tensor | Sequence[int] | None = None,
         backend: str | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Multi-layer LSTM over a time-major padded batch.

    Args:
        input: (T, B, I).  hx: (h0 (L*D, B, H_out), c0 (L*D, B, H)) or None for zeros.
        weights: required; L*D tuples (w_ih, w_hh, b_ih, b_hh, w_hr) (see the module docstring):
            w_ih (4*H, I or D*H_out), w_hh (4*H, H_out), b_ih/b_hh (4*H,) or None,
            w_hr (P, H) or None.
        bidirectional, dropout, training, lengths, backend: see `recurrent_stack`.
    Returns:
        output (T, B, D*H_out), (h_n (L*D, B, H_out), c_n (L*D, B, H)).

    Example:
        >>> w_ih, w_hh = torch.randn(64, 8), torch.randn(64, 16)
        >>> out, (h, c) = lstm(torch.randn(5, 3, 8), None, [(w_ih, w_hh, None, None, None)])
        >>> out.shape, h.shape
        (torch.Size([5, 3, 16]), torch.Size([1, 3, 16]))
    """
    output, (h_n, c_n) = recurrent_stack("LSTM", input, None if hx is None else list(hx), weights,
                                         bidirectional=bidirectional, dropout=dropout,
                                         training=training, lengths=lengths, backend=backend)
    return output, (h_n, c_n)


def gru(input: Tensor, hx: Tensor | None = None, weights: Sequence[LayerWeights] | None = None, *,
        bidirectional: bool = False, dropout: float = 0.0, training: bool = False,
        lengths: Tensor | Sequence[int] | None = None,
        backend: str | None = None) -> tuple[Tensor, Tensor]:
    """Multi-layer GRU over a time-major padded batch: input (T, B, I), hx (L*D, B, H) or None.

    weights (required): L*D tuples (w_ih (3*H, I or D*H), w_hh (3*H, H), b_ih, b_hh, None).
    Returns output (T, B, D*H), h_n (L*D, B, H). Other arguments as `lstm`.

    Example:
        >>> w_ih, w_hh, b = torch.randn(48, 8), torch.randn(48, 16), torch.zeros(48)
        >>> out, h = gru(torch.randn(5, 3, 8), None, [(w_ih, w_hh, b, b, None)])
        >>> out.shape, h.shape
        (torch.Size([5, 3, 16]), torch.Size([1, 3, 16]))
    """
    output, (h_n,) = recurrent_stack("GRU", input, None if hx is None else [hx], weights,
                                     bidirectional=bidirectional, dropout=dropout,
                                     training=training, lengths=lengths, backend=backend)
    return output, h_n


def rnn(input: Tensor, hx: Tensor | None = None, weights: Sequence[LayerWeights] | None = None, *,
        nonlinearity: str = "tanh", bidirectional: bool = False, dropout: float = 0.0,
        training: bool = False, lengths: Tensor | Sequence[int] | None = None,
        backend: str | None = None) -> tuple[Tensor, Tensor]:
    """Multi-layer Elman RNN (tanh or relu): input (T, B, I), hx (L*D, B, H) or None.

    weights (required): L*D tuples (w_ih (H, I or D*H), w_hh (H, H), b_ih, b_hh, None).
    Returns output (T, B, D*H), h_n (L*D, B, H). Other arguments as `lstm`.

    Example:
        >>> weights = [(torch.randn(16, 8), torch.randn(16, 16), None, None, None)]
        >>> out, h = rnn(torch.randn(5, 3, 8), None, weights, nonlinearity="relu")
        >>> out.shape
        torch.Size([5, 3, 16])
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
    mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
    output, (h_n,) = recurrent_stack(mode, input, None if hx is None else [hx], weights,
                                     bidirectional=bidirectional, dropout=dropout,
                                     training=training, lengths=lengths, backend=backend)
    return output, h_n


def _cell(mode, input, states, w_ih, w_hh, b_ih, b_hh, backend):
    """One step of a cell as a length-1 recurrence, so every backend serves cells too.

    input (B, I), states list of (B, X) -> list of new states (B, X).

    Where one step runs as the reference's plain ops (the reference backend eagerly, and the cpu
    backend, whose op does not pay for a single step: fastrnn.cpu.function.run), the cell calls
    the reference's step function itself, without the stack's bookkeeping around a one-step loop
    (lifting to (1, B, X), the loop, stacking the outputs), which cost as much as the step.
    """
    weights = [(w_ih, w_hh, b_ih, b_hh, None)]
    check_weights(weights)
    call = _prepare(mode, input.unsqueeze(0), [s.unsqueeze(0) for s in states], weights, backend)
    if call.name in ("cpu", "reference") and not (torch.compiler.is_compiling()
                                                  or torch.onnx.is_in_onnx_export()):
        with call.autocast_off():
            return _reference_step(mode, call.input[0], [s[0] for s in call.states],
                                   call.weights[0])
    _, finals = _run_padded(call, call.input, None, False, 0.0, False)
    return [f.squeeze(0) for f in finals]


def _reference_step(mode, input, states, weight):
    """The reference's step on input (B, I) and states [(B, X)] -> new states [(B, X)]."""
    w_ih, w_hh, b_ih, b_hh, _ = weight
    gx = F.linear(input, w_ih, _projection_bias(mode, b_ih, b_hh))
    if mode == "LSTM":
        return list(reference.lstm.lstm_step(gx, states[0], states[1], w_hh))
    if mode == "GRU":
        return [reference.gru.gru_step(gx, states[0], w_hh, b_hh)]
    return [reference.rnn.rnn_step(gx, states[0], w_hh, "tanh" if mode == "RNN_TANH" else "relu")]


def lstm_cell(input: Tensor, hx: tuple[Tensor, Tensor] | Sequence[Tensor], w_ih: Tensor,
              w_hh: Tensor, b_ih: Tensor | None = None, b_hh: Tensor | None = None,
              backend: str | None = None) -> tuple[Tensor, Tensor]:
    """One LSTM step: input (B, I), hx (h (B, H), c (B, H)) -> (h' (B, H), c' (B, H)).

    w_ih (4*H, I), w_hh (4*H, H), b_ih/b_hh (4*H,) or None.

    Example:
        >>> h = c = torch.zeros(3, 16)
        >>> h, c = lstm_cell(torch.randn(3, 8), (h, c), torch.randn(64, 8), torch.randn(64, 16))
        >>> h.shape
        torch.Size([3, 16])
    """
    h, c = _cell("LSTM", input, list(hx), w_ih, w_hh, b_ih, b_hh, backend)
    return h, c


def gru_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
             b_hh: Tensor | None = None, backend: str | None = None) -> Tensor:
    """One GRU step: input (B, I), hx (B, H) -> h' (B, H); w_ih (3*H, I), w_hh (3*H, H)."""
    return _cell("GRU", input, [hx], w_ih, w_hh, b_ih, b_hh, backend)[0]


def rnn_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
             b_hh: Tensor | None = None, nonlinearity: str = "tanh",
             backend: str | None = None) -> Tensor:
    """One Elman RNN step: input (B, I), hx (B, H) -> h' (B, H); w_ih (H, I), w_hh (H, H)."""
    if nonlinearity not in ("tanh", "relu"):
        raise RuntimeError(f"Unknown nonlinearity: {nonlinearity}")
    mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
    return _cell(mode, input, [hx], w_ih, w_hh, b_ih, b_hh, backend)[0]
