"""Which implementation runs a call, and why: `fastrnn.explain`.

`explain(target, input, hx=None, *args, **kwargs)` answers for the call
`target(input, hx, *args, **kwargs)` without running it. `target` is a fastrnn module (LSTM, GRU,
RNN, LSTMCell, GRUCell, RNNCell) or one of fastrnn.functional's lstm, gru, rnn, lstm_cell,
gru_cell and rnn_cell. The answer comes from the code the call itself runs: the autocast rule and
`functional.recurrence_spec` for the facts, `backends.resolve_backend` for the backend (argument,
`use_backend`, FASTRNN_BACKEND, auto), and for Triton the kernels' planner (`kernels.forms.plan`:
a forced form, forms that failed before on this device, the device's resources).

Dimensions: T time, B batch, I input size, H hidden size, P proj_size, L layers, D directions.
"""

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from fastrnn import backends, functional, modules, validation
from fastrnn.functional import LayerWeights

__all__ = ["Explanation", "explain"]

_KERNEL_CELLS = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn", "RNN_RELU": "rnn"}
_IMPLEMENTATIONS = {
    "reference": "pure PyTorch ops (fastrnn.reference)",
    "cpu": "fastrnn's CPU implementation (fastrnn.cpu)",
    "triton": "fused Triton kernels (fastrnn.kernels)",
    "torch": "torch's own RNN ops (cuDNN on CUDA, ATen on CPU)",
}
_SOURCES = {
    "argument": "the backend argument of the module or call",
    "use_backend": "an enclosing fastrnn.use_backend block",
    backends.ENV_VAR: f"the {backends.ENV_VAR} environment variable",
    "default": f"the default (no argument, use_backend or {backends.ENV_VAR})",
}


@dataclass(frozen=True)
class Explanation:
    """Which implementation runs one call, and why (the answer of `fastrnn.explain`).

    target: what was asked about ('fastrnn.LSTM', 'fastrnn.functional.gru', ...).
    backend: the implementation that runs: 'reference', 'cpu', 'triton' or 'torch'.
    reason: why: 'requested' for an explicit backend, else auto's reason ('auto: cpu tensor', or
        why the kernels cannot run the call).
    requested: the backend name in force before the choice ('auto' or an explicit name), and
    source: where it came from: 'argument', 'use_backend', 'FASTRNN_BACKEND' or 'default'.
    mode ('LSTM', 'GRU', 'RNN_TANH', 'RNN_RELU'), device, dtype (after autocast), batch (B),
        hidden_size (H), proj_size (P), layers (L) and directions (D): the facts decided on.
    variable_lengths: packed input or `lengths`: masked inside the recurrence on every backend.
    form, form_reason, tiles: the Triton kernel form, why the planner picked it, and its program
        tiles; None for the other backends and where nothing is launched (B = 0 or H = 0). All
        L*D recurrences share one plan: it depends only on the cell, H, P, B, the dtype and the
        device. The backward plans the same shape on its own and gets the same form unless this
        one fails to compile or launch on the device (then the next form runs, as in the forward).
    """

    target: str
    backend: str
    reason: str
    requested: str
    source: str
    mode: str
    device: torch.device
    dtype: torch.dtype
    batch: int
    hidden_size: int
    proj_size: int
    layers: int
    directions: int
    variable_lengths: bool
    form: str | None = None
    form_reason: str | None = None
    tiles: str | None = None

    def __str__(self) -> str:
        sizes = f"B={self.batch} H={self.hidden_size}" + (f" P={self.proj_size}" if self.proj_size
                                                          else "")
        lines = [
            f"{self.target} runs backend {self.backend!r}: {_IMPLEMENTATIONS[self.backend]}",
            f"  why: {self.reason}",
            f"  asked for: {self.requested!r}, from {_SOURCES[self.source]}",
            f"  call: {self.mode} on {self.device.type} {str(self.dtype).removeprefix('torch.')}, "
            f"{sizes}, {_count(self.layers, 'layer')} x {_count(self.directions, 'direction')}"
            + (", variable lengths" if self.variable_lengths else ""),
        ]
        if self.backend == "triton":
            if self.form is None:
                lines.append(f"  kernel form: none: {self.form_reason}")
            else:
                every = "the recurrence" if self.layers * self.directions == 1 else (
                    f"each of the {self.layers * self.directions} recurrences")
                lines.append(f"  kernel form of {every}: {self.form}: {self.form_reason}")
                lines.append(f"  tiles: {self.tiles}")
        return "\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


@dataclass(frozen=True)
class _Call:
    """What a call hands to functional.recurrent_stack, as far as the choice depends on it."""

    target: str
    mode: str
    input: Tensor  # the input (a packed sequence's data): its dtype and device
    batch: int
    weights: Sequence[LayerWeights]
    directions: int
    backend: str | None
    variable_lengths: bool


def explain(target: nn.Module | Callable[..., Any], input: Tensor | PackedSequence,
            hx: Any = None, *args: Any, **kwargs: Any) -> Explanation:
    """Which implementation runs `target(input, hx, *args, **kwargs)`, and why, without running it.

    Args:
        target: a fastrnn module (LSTM, GRU, RNN and the cells), or fastrnn.functional's lstm,
            gru, rnn, lstm_cell, gru_cell or rnn_cell.
        input, hx, *args, **kwargs: the call's arguments. A module: input (T, B, I) ((B, T, I)
            with batch_first), (T, I) unbatched or a PackedSequence; a cell: (B, I) or (I,). A
            function: its own arguments (weights, backend=...). The choice does not depend on hx;
            it is taken so the question reads like the call.
    Returns:
        Explanation: backend, reason and where the request came from, the facts decided on, and
        for triton the kernel form and its tiles. str() of it is a readable summary.
    Raises:
        BackendUnavailableError: the call would raise it (an explicit backend or a forced kernel
            form that cannot run this call), with the same message.
        TypeError: `target` is not a fastrnn module or functional function (convert torch.nn
            layers first with fastrnn.convert).

    Example:
        >>> lstm = fastrnn.LSTM(8, 16, num_layers=2)
        >>> why = fastrnn.explain(lstm, torch.randn(5, 3, 8))
        >>> why.backend, why.reason, why.source
        ('cpu', 'auto: cpu tensor', 'default')
        >>> print(why)
        fastrnn.LSTM runs backend 'cpu': fastrnn's CPU implementation (fastrnn.cpu)
          why: auto: cpu tensor
          asked for: 'auto', from the default (no argument, use_backend or FASTRNN_BACKEND)
          call: LSTM on cpu float32, B=3 H=16, 2 layers x 1 direction
        >>> fastrnn.explain(fastrnn.functional.gru, torch.randn(5, 3, 8), None,
        ...                 [(torch.randn(48, 8), torch.randn(48, 16), None, None, None)],
        ...                 backend="torch").backend
        'torch'
    """
    call = _describe_call(target, input, hx, args, kwargs)
    # The call casts its tensors under autocast before deciding; a 0-d stand-in for the input
    # goes through the same cast without copying the input.
    (stand_in,), _ = functional._autocast([torch.empty((), dtype=call.input.dtype,
                                                       device=call.input.device)])
    spec = functional.recurrence_spec(call.mode, stand_in, call.weights)
    requested, source = backends.backend_request(call.backend)
    name, reason = backends.resolve_backend(call.backend, spec)
    form = form_reason = tiles = None
    if name == "triton":
        form, form_reason, tiles = _kernel_form(spec, call.batch)
    return Explanation(
        target=call.target, backend=name, reason=reason, requested=requested, source=source,
        mode=call.mode, device=spec.device, dtype=spec.dtype, batch=call.batch,
        hidden_size=spec.hidden_size, proj_size=spec.proj_size,
        layers=len(call.weights) // call.directions, directions=call.directions,
        variable_lengths=call.variable_lengths, form=form, form_reason=form_reason, tiles=tiles)


def _kernel_form(spec: backends.RecurrenceSpec, batch: int) -> tuple[str | None, str, str | None]:
    """(form, reason, tiles) of the Triton kernels for every recurrence of the call."""
    if batch == 0 or spec.hidden_size == 0:
        # kernels.launch.run: a zero grid is no valid launch, so these run the reference's loop.
        return None, ("nothing to launch (an empty batch or zero hidden size): the reference's "
                      "loop builds the empty results"), None
    from fastrnn.kernels import forms

    shape = forms.Shape(_KERNEL_CELLS[spec.mode], spec.hidden_size, spec.proj_size, batch,
                        spec.dtype)
    plan = forms.plan(shape, spec.device)
    return plan.form, plan.reason, plan.describe()


def _describe_call(target, input, hx, args, kwargs) -> _Call:
    if isinstance(target, nn.Module) and type(target).forward is nn.Module.forward:
        # RNNBase and RNNCellBase, as in torch.nn: calling one raises NotImplementedError.
        raise TypeError(f"fastrnn.explain: {type(target).__name__} has no forward of its own; "
                        f"ask about an LSTM, GRU, RNN or cell")
    if isinstance(target, modules.RNNBase):
        return _stack_module_call(target, input)
    if isinstance(target, modules.RNNCellBase):
        return _cell_module_call(target, input)
    if any(target is function for function in _FUNCTIONS):
        bound = inspect.signature(target).bind(input, hx, *args, **kwargs)
        bound.apply_defaults()
        return _FUNCTIONS[target](target, bound.arguments)
    what = type(target).__name__ if isinstance(target, nn.Module) else repr(target)
    raise TypeError(f"fastrnn.explain takes a fastrnn module (LSTM, GRU, RNN, LSTMCell, GRUCell, "
                    f"RNNCell) or a fastrnn.functional function (lstm, gru, rnn, lstm_cell, "
                    f"gru_cell, rnn_cell), got {what}; convert torch.nn layers with "
                    f"fastrnn.convert(model) first")


def _stack_module_call(module: modules.RNNBase, input: Tensor | PackedSequence) -> _Call:
    """LSTM/GRU/RNN: a packed batch runs padded with lengths; B as the module's forward sees it."""
    if isinstance(input, PackedSequence):
        data, lengths = input.data, True
        batch = validation.check_batch_sizes(input.batch_sizes)
    else:
        data, lengths = input, False
        if input.dim() not in (2, 3):
            raise module._input_dim_error(input.dim())
        batch = 1 if input.dim() == 2 else input.size(0 if module.batch_first else 1)
    return _Call(f"fastrnn.{type(module).__name__}", module.mode, data, batch,
                 module._layer_weights(), 2 if module.bidirectional else 1, module.backend,
                 lengths)


def _cell_module_call(cell: modules.RNNCellBase, input: Tensor) -> _Call:
    """A cell runs one step as a one-layer recurrence of length 1 (functional._cell)."""
    if isinstance(cell, modules.LSTMCell):
        mode = "LSTM"
    elif isinstance(cell, modules.GRUCell):
        mode = "GRU"
    else:
        mode = _rnn_cell_mode(getattr(cell, "nonlinearity", "tanh"))
    batch = input.size(0) if input.dim() == 2 else 1
    weights = [(cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh, None)]
    return _Call(f"fastrnn.{type(cell).__name__}", mode, input, batch, weights, 1, cell.backend,
                 False)


def _rnn_cell_mode(nonlinearity: str) -> str:
    if nonlinearity not in ("tanh", "relu"):
        raise RuntimeError(f"Unknown nonlinearity: {nonlinearity}")
    return "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"


def _stack_function_call(function, arguments) -> _Call:
    """functional.lstm/gru/rnn: time-major (T, B, I) input; weights checked as the call does."""
    if function is functional.rnn:
        nonlinearity = arguments["nonlinearity"]
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
    else:
        mode = function.__name__.upper()
    input, weights = arguments["input"], arguments["weights"]
    functional.check_weights(weights, arguments["bidirectional"])
    if input.dim() != 3:
        raise ValueError(f"fastrnn.functional.{function.__name__} takes a time-major (T, B, I) "
                         f"input, got shape {tuple(input.shape)}")
    return _Call(f"fastrnn.functional.{function.__name__}", mode, input, input.shape[1], weights,
                 2 if arguments["bidirectional"] else 1, arguments["backend"],
                 arguments["lengths"] is not None)


def _cell_function_call(function, arguments) -> _Call:
    """functional.lstm_cell/gru_cell/rnn_cell: input (B, I), weights given one by one."""
    if function is functional.rnn_cell:
        mode = _rnn_cell_mode(arguments["nonlinearity"])
    else:
        mode = {functional.lstm_cell: "LSTM", functional.gru_cell: "GRU"}[function]
    input = arguments["input"]
    weights = [tuple(arguments[name] for name in ("w_ih", "w_hh", "b_ih", "b_hh")) + (None,)]
    functional.check_weights(weights)
    return _Call(f"fastrnn.functional.{function.__name__}", mode, input, input.shape[0], weights, 1,
                 arguments["backend"], False)


_FUNCTIONS = {
    functional.lstm: _stack_function_call,
    functional.gru: _stack_function_call,
    functional.rnn: _stack_function_call,
    functional.lstm_cell: _cell_function_call,
    functional.gru_cell: _cell_function_call,
    functional.rnn_cell: _cell_function_call,
}
