"""The 'torch' backend: torch's own RNN ops run with our parameters (cuDNN on CUDA, ATen on CPU).

It is the baseline every benchmark measures against and an explicit escape hatch; `auto` never
picks it. Variable lengths go through torch's PackedSequence path, as `torch.nn` does.
"""

import contextlib

import torch
from torch import _VF
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from fastrnn import validation

_STACK_OPS = {"LSTM": _VF.lstm, "GRU": _VF.gru, "RNN_TANH": _VF.rnn_tanh, "RNN_RELU": _VF.rnn_relu}


def _call(mode, data, batch_sizes, states, flat, has_biases, num_layers, dropout, training,
          bidirectional):
    op = _STACK_OPS[mode]
    hx = tuple(states) if mode == "LSTM" else states[0]
    # oneDNN cannot build a zero-width RNN primitive (LSTMCell(I, 0) runs here as a one-step
    # stack); ATen's own CPU path handles it, as torch.nn's cell ops do.
    zero_width = any(s.shape[-1] == 0 for s in states)
    with _without_onednn() if zero_width else contextlib.nullcontext():
        return _run_op(op, data, batch_sizes, hx, flat, has_biases, num_layers, dropout,
                       training, bidirectional)


@contextlib.contextmanager
def _without_onednn():
    # The raw switch: torch.backends.mkldnn.flags() also resets the TF32 and determinism flags.
    previous = torch._C._get_mkldnn_enabled()
    torch._C._set_mkldnn_enabled(False)
    try:
        yield
    finally:
        torch._C._set_mkldnn_enabled(previous)


def _run_op(op, data, batch_sizes, hx, flat, has_biases, num_layers, dropout, training,
            bidirectional):
    if batch_sizes is None:
        result = op(data, hx, flat, has_biases, num_layers, dropout, training, bidirectional, False)
    else:
        result = op(data, batch_sizes, hx, flat, has_biases, num_layers, dropout, training,
                    bidirectional)
    return result[0], list(result[1:])


def recurrent_stack(mode, input, states, weights, bidirectional, dropout, training, lengths):
    """Same contract as fastrnn.functional.recurrent_stack (already validated and cast).

    input (T, B, I); states list of (L*D, B, X); weights L*D tuples; lengths (B,) or None.
    Returns (output (T, B, D*H_out), list of final states).
    """
    flat = [w for weight in weights for w in weight if w is not None]
    has_biases = weights[0][2] is not None
    num_layers = len(weights) // (2 if bidirectional else 1)
    from fastrnn.ops import native_op

    if torch.compiler.is_compiling() or native_op.vmap_active():
        # Traced, torch's ops would unroll T steps and pack_padded_sequence would read the
        # lengths on the host; under vmap they have no batching rule. The stack runs as one op
        # instead (fastrnn.ops.native_op), which has its own vmap rule.
        return native_op.recurrent_stack(mode, input, states, flat, has_biases, num_layers,
                                         dropout, training, bidirectional, lengths)
    return run_flat(mode, input, states, flat, has_biases, num_layers, dropout, training,
                    bidirectional, lengths)


def run_flat(mode, input, states, flat, has_biases, num_layers, dropout, training, bidirectional,
             lengths):
    """recurrent_stack on torch's flat weight list (every present weight, layer-major, in the
    (w_ih, w_hh, b_ih, b_hh, w_hr) order of each layer-direction)."""
    args = (has_biases, num_layers, dropout, training, bidirectional)
    shapes_only = not torch.compiler.is_compiling() and not validation.values_readable(input)
    if lengths is None or input.shape[1] == 0 or shapes_only:
        # An empty batch has nothing to pack (pack_padded_sequence refuses it); the dense op
        # returns the empty output and states. Meta and fake tensors have no lengths to pack by:
        # the dense op gives the same shapes.
        return _call(mode, input, None, states, flat, *args)
    packed = pack_padded_sequence(input, lengths.cpu(), enforce_sorted=False)
    sorted_states = [s.index_select(1, packed.sorted_indices) for s in states]
    data, finals = _call(mode, packed.data, packed.batch_sizes, sorted_states, flat, *args)
    output = PackedSequence(data, packed.batch_sizes, packed.sorted_indices,
                            packed.unsorted_indices)
    padded, _ = pad_packed_sequence(output, total_length=input.shape[0])
    return padded, [f.index_select(1, packed.unsorted_indices) for f in finals]
