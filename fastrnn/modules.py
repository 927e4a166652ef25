"""Drop-in replacements for torch.nn.LSTM / GRU / RNN and the three cells.

Same constructor (positional order included), parameter names and registration order, init,
`state_dict`, outputs, PackedSequence handling and error messages as torch.nn (the contract is
docs/torch-rnn-contract.md), plus one keyword argument: `backend` (see fastrnn.backends).

Dimensions: T time, B batch, I input size, H hidden size, P proj_size, H_out = P or H,
L num_layers, D directions, G gates (LSTM 4, GRU 3, RNN 1).

These classes are deliberately not subclasses of torch.nn.LSTM & co.: Dynamo graph-breaks on
those, and their forward would be bypassed by code that dispatches on type. Weights are read by
attribute name at every forward, so `torch.func.functional_call`, parametrizations, weight norm
and WeightDrop-style tensor assignment all act on the next call.

`fastrnn.explain(module, input)` says which backend (and Triton kernel form) a call runs.
"""

import functools
import inspect
import math
import numbers
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast, overload

import torch
from torch import Tensor, nn
from torch.nn import init
from torch.nn.utils.rnn import PackedSequence

from fastrnn import functional, validation
from fastrnn.backends import check_backend_argument
from fastrnn.guards import EcosystemGuards

__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNBase", "RNNCell", "RNNCellBase"]

GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
# Where each parameter goes in the (w_ih, w_hh, b_ih, b_hh, w_hr) tuple functional expects.
_SLOTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")


def _check_constructor_args(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                            proj_size):
    """RNNBase's validation, in torch's order and with torch 2.13's messages."""
    if (not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1
            or isinstance(dropout, bool)):
        raise ValueError(
            "dropout should be a number in range [0, 1] representing the probability of an "
            "element being zeroed"
        )
    if dropout > 0 and num_layers == 1:
        warnings.warn(
            "dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
            f"expects num_layers greater than 1, but got dropout={dropout} and "
            f"num_layers={num_layers}",
            # _check_constructor_args < RNNBase.__init__ < LSTM.__init__ < its binding check < caller
            stacklevel=5,
        )
    if not isinstance(bias, bool):
        raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
    if not isinstance(batch_first, bool):
        raise TypeError(f"batch_first should be of type bool, got: {type(batch_first).__name__}")
    if not isinstance(input_size, int):
        raise TypeError(f"input_size should be of type int, got: {type(input_size).__name__}")
    if input_size <= 0:
        raise ValueError("input_size must be greater than zero")
    if not isinstance(hidden_size, int):
        raise TypeError(f"hidden_size should be of type int, got: {type(hidden_size).__name__}")
    if hidden_size <= 0:
        raise ValueError("hidden_size must be greater than zero")
    if num_layers <= 0:
        raise ValueError("num_layers must be greater than zero")
    if proj_size < 0:
        raise ValueError("proj_size should be a positive integer or zero to disable projections")
    if proj_size >= hidden_size:
        raise ValueError("proj_size has to be smaller than hidden_size")
    if mode not in GATES:
        raise ValueError("Unrecognized RNN mode: " + mode)


FORWARD_DOC = """Run the layer over a sequence.

Args:
    input: (T, B, I) (or (B, T, I) with batch_first), (T, I) unbatched, or a PackedSequence.
    hx: initial state(s) shaped (L*D, B, H_out) ((L*D, H_out) unbatched), zeros if None;
        LSTM takes a tuple (h_0, c_0) with c_0 shaped (L*D, B, H).
Returns:
    (output, h_n) for GRU/RNN, (output, (h_n, c_n)) for LSTM; output (T, B, D*H_out)
    (batch_first: (B, T, D*H_out); packed input: a PackedSequence); h_n like hx.
"""


class RNNBase(EcosystemGuards, nn.Module):
    """Shared machinery of LSTM, GRU and RNN: parameters, argument checks, input styles.

    Args (as torch.nn.RNNBase): mode ('LSTM' | 'GRU' | 'RNN_TANH' | 'RNN_RELU'), input_size,
    hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0, bidirectional=False,
    proj_size=0, device=None, dtype=None; plus the keyword backend='auto' (a backend name, or
    'auto' / None: defer to fastrnn.use_backend and FASTRNN_BACKEND; see fastrnn.backends).
    """

    __constants__ = ["mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first",
                     "dropout", "bidirectional", "proj_size"]

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0,
                 device: torch.device | str | int | None = None, dtype: torch.dtype | None = None,
                 *, backend: str | None = "auto") -> None:
        factory_kwargs: dict[str, Any] = {"device": device, "dtype": dtype}
        super().__init__()
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        _check_constructor_args(mode, input_size, hidden_size, num_layers, bias, batch_first,
                                dropout, proj_size)
        check_backend_argument(backend)
        self.backend = backend

        gate_size = GATES[mode] * hidden_size
        num_directions = 2 if bidirectional else 1
        real_hidden_size = proj_size if proj_size > 0 else hidden_size
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_input_size = input_size if layer == 0 else real_hidden_size * num_directions
                shapes: dict[str, tuple[int, ...]] = {
                    "weight_ih": (gate_size, layer_input_size),
                    "weight_hh": (gate_size, real_hidden_size),
                }
                if bias:
                    shapes["bias_ih"] = (gate_size,)
                    shapes["bias_hh"] = (gate_size,)
                if proj_size > 0:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                suffix = "_reverse" if direction == 1 else ""
                names = []
                for kind, shape in shapes.items():
                    name = f"{kind}_l{layer}{suffix}"
                    setattr(self, name, nn.Parameter(torch.empty(shape, **factory_kwargs)))
                    names.append(name)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    # -- parameters ---------------------------------------------------------------------------

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    @property
    def _flat_weights(self):
        """Current weight tensors in registration order (None for a deleted attribute)."""
        return [getattr(self, name, None) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """List per layer and direction of that layer's weight tensors, as torch.nn."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """Kept for drop-in compatibility; a no-op.

        fastrnn reads every weight by attribute at each forward and needs no flat buffer, so
        weight sharing and tying are never broken by it.
        """
        return None

    def _layer_weights(self):
        """L*D tuples (w_ih, w_hh, b_ih, b_hh, w_hr), read by attribute now."""
        weights = []
        for names in self._all_weights:
            by_kind = {name.rsplit("_l", 1)[0]: name for name in names}
            weights.append(tuple(
                getattr(self, by_kind[kind]) if kind in by_kind else None for kind in _SLOTS
            ))
        return weights

    def _replicate_for_data_parallel(self):
        replica = super()._replicate_for_data_parallel()
        replica._flat_weights_names = replica._flat_weights_names[:]
        replica._all_weights = [names[:] for names in replica._all_weights]
        return replica

    def __setstate__(self, state):
        super().__setstate__(state)
        # Pickles from before proj_size (torch <= 1.7 layout) and before the backend option.
        self.__dict__.setdefault("proj_size", 0)
        self.__dict__.setdefault("backend", "auto")

    # -- argument checks (public-ish in torch: subclasses override them) ----------------------

    def check_input(self, input: Tensor, batch_sizes: Tensor | None) -> None:
        # By name, so a deleted first weight is an AttributeError naming it.
        weight_dtype = getattr(self, self._flat_weights_names[0]).dtype
        if input.dtype != weight_dtype and not torch._C._is_any_autocast_enabled():
            raise ValueError(
                f"RNN input dtype ({input.dtype}) does not match weight dtype ({weight_dtype}). "
                f"Convert input: input.to({weight_dtype}), or convert model: "
                f"model.to({input.dtype})"
            )
        expected_input_dim = 2 if batch_sizes is not None else 3
        if input.dim() != expected_input_dim:
            raise RuntimeError(f"input must have {expected_input_dim} dimensions, got {input.dim()}")
        if self.input_size != input.size(-1):
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                f"got {input.size(-1)}"
            )

    def get_expected_hidden_size(self, input: Tensor,
                                 batch_sizes: Tensor | None) -> tuple[int, int, int]:
        if batch_sizes is not None:
            mini_batch = int(batch_sizes[0])
        else:
            mini_batch = input.size(0) if self.batch_first else input.size(1)
        num_directions = 2 if self.bidirectional else 1
        width = self.proj_size if self.proj_size > 0 else self.hidden_size
        return (self.num_layers * num_directions, mini_batch, width)

    def check_hidden_size(self, hx: Tensor, expected_hidden_size: tuple[int, int, int],
                          msg: str = "Expected hidden size {}, got {}") -> None:
        if hx.size() != expected_hidden_size:
            raise RuntimeError(msg.format(expected_hidden_size, list(hx.size())))

    def check_forward_args(self, input: Tensor, hidden: Tensor, batch_sizes: Tensor | None) -> None:
        self.check_input(input, batch_sizes)
        self.check_hidden_size(hidden, self.get_expected_hidden_size(input, batch_sizes))

    def permute_hidden(self, hx: Tensor, permutation: Tensor | None) -> Tensor:
        if permutation is None:
            return hx
        return hx.index_select(1, permutation)

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if self.proj_size != 0:
            s += ", proj_size={proj_size}"
        if self.num_layers != 1:
            s += ", num_layers={num_layers}"
        if self.bias is not True:
            s += ", bias={bias}"
        if self.batch_first is not False:
            s += ", batch_first={batch_first}"
        if self.dropout != 0:
            s += ", dropout={dropout}"
        if self.bidirectional is not False:
            s += ", bidirectional={bidirectional}"
        if self.backend not in ("auto", None):
            s += ", backend={backend!r}"
        return s.format(**self.__dict__)

    # -- forward ------------------------------------------------------------------------------

    def _states_list(self, hx):
        """The initial states as a list: [h] for GRU/RNN, [h, c] for LSTM."""
        return [hx]

    def _states_result(self, states):
        return states[0]

    def _zero_states(self, batch, like):
        num_directions = 2 if self.bidirectional else 1
        return like.new_zeros(self.num_layers * num_directions, batch, self.hidden_size)

    def _check_unbatched_hx(self, hx, is_batched):
        """torch's dimension checks on a user hx for GRU/RNN; LSTM overrides."""
        if is_batched and hx.dim() != 3:
            raise RuntimeError(
                f"For batched 3-D input, hx should also be 3-D but got {hx.dim()}-D tensor"
            )
        if not is_batched and hx.dim() != 2:
            raise RuntimeError(
                f"For unbatched 2-D input, hx should also be 2-D but got {hx.dim()}-D tensor"
            )

    def _unsqueeze_hx(self, hx):
        return hx.unsqueeze(1)

    def _squeeze_result(self, hidden):
        return hidden.squeeze(1)

    def _input_dim_error(self, dim):
        name = "RNN" if self.mode.startswith("RNN") else self.mode
        tail = " tensor instead" if self.mode.startswith("RNN") else " instead"
        return ValueError(f"{name}: Expected input to be 2D or 3D, got {dim}D{tail}")

    def _run(self, input, hx, lengths):
        """input (T, B, I) time-major; hx as the module's state type; -> (output, hidden)."""
        output, states = functional.recurrent_stack(
            self.mode, input, self._states_list(hx), self._layer_weights(),
            bidirectional=bool(self.bidirectional), dropout=self.dropout, training=self.training,
            lengths=lengths, backend=self.backend,
        )
        return output, self._states_result(states)

    def _forward_packed(self, packed, hx):
        data, batch_sizes, sorted_indices, unsorted_indices = packed
        readable = validation.values_readable(batch_sizes)
        if readable:
            batch = validation.check_batch_sizes(batch_sizes)
        else:
            batch = self._traced_batch(batch_sizes, sorted_indices, hx)
        if hx is None:
            hx = self._zero_states(batch, data)
        else:
            # torch.nn checks nothing of a packed call's hx: the container first, then its sizes.
            self._check_state_container(hx)
        # hx comes in the user's order: the padded route runs the batch in that order (lengths
        # masked inside the recurrence) and the packed route (functional.recurrent_stack_packed)
        # sorts it itself; its shape is the same in either order.
        if readable:
            self.check_forward_args(data, hx, batch_sizes)
        else:
            # check_forward_args reads batch_sizes[0]; the same checks against the batch found above.
            self.check_input(data, batch_sizes)
            self._check_state_sizes(hx, batch)
        validation.check_packed_layout(data, batch_sizes, sorted_indices, unsorted_indices)
        if readable and batch == 0:
            # An empty batch (batch_sizes all zero): nothing to pad or pack. data.sum() (0 for no
            # rows) keeps the input in the graph: its gradient is an empty tensor, as in torch.nn.
            padded = data.new_zeros(len(batch_sizes), 0, data.size(-1)) + data.sum()
            output, hidden = self._run(padded, hx, data.new_zeros(0, dtype=torch.int64))
            output_data = output.flatten(0, 1)
        else:
            # The cpu backend runs the packed rows as they are; the others a padded batch.
            output_data, states = functional.recurrent_stack_packed(
                self.mode, data, batch_sizes, sorted_indices, unsorted_indices,
                self._states_list(hx), self._layer_weights(), bidirectional=bool(self.bidirectional),
                dropout=self.dropout, training=self.training, backend=self.backend)
            hidden = self._states_result(states)
        return PackedSequence(output_data, batch_sizes, sorted_indices, unsorted_indices), hidden

    def _traced_batch(self, batch_sizes, sorted_indices, hx):
        """The batch size of a packed input while torch.compile or torch.export traces, from shapes
        where there is one (hx, sorted_indices), else batch_sizes[0] as a data-dependent size."""
        if hx is not None:
            return self._states_list(hx)[0].size(1)
        if sorted_indices is not None:
            return sorted_indices.size(0)
        return int(batch_sizes[0])

    def _check_state_sizes(self, hx, batch):
        """check_forward_args' state checks for a packed input of `batch` sequences."""
        self.check_hidden_size(hx, self._expected_state_size(batch, self._output_width()))

    def _output_width(self):
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    def _expected_state_size(self, batch, width):
        return (self.num_layers * (2 if self.bidirectional else 1), batch, width)

    def _check_state_container(self, hx):
        """LSTM checks that hx is a pair; a GRU/RNN hx has passed the tensor checks already."""

    def _forward(self, input, hx=None):
        """The body of LSTM.forward, GRU.forward and RNN.forward (see FORWARD_DOC).

        RNNBase itself has no `forward`, as in torch.nn, so calling one raises nn.Module's
        NotImplementedError.
        """
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        if input.dim() not in (2, 3):
            raise self._input_dim_error(input.dim())
        is_batched = input.dim() == 3
        batch_dim = 0 if self.batch_first else 1
        if not is_batched:
            input = input.unsqueeze(batch_dim)
        if hx is not None:
            self._check_unbatched_hx(hx, is_batched)
            given = hx
            if not is_batched:
                hx = self._unsqueeze_hx(hx)
        else:
            given = None
            hx = self._zero_states(input.size(batch_dim), input)
        self.check_forward_args(input, hx, None)
        if given is not None:
            self._check_state_container(given)  # where torch.nn's ATen op would check it
        time_major = input.transpose(0, 1) if self.batch_first else input
        output, hidden = self._run(time_major, hx, None)
        if self.batch_first:
            output = output.transpose(0, 1)
        if not is_batched:
            output = output.squeeze(batch_dim)
            hidden = self._squeeze_result(hidden)
        return output, hidden


_Init = TypeVar("_Init", bound=Callable[..., None])


def _binds(signature: inspect.Signature, *args: Any, **kwargs: Any) -> bool:
    try:
        signature.bind(*args, **kwargs)
    except TypeError:
        return False
    return True


def _rnn_mode(nonlinearity: str) -> str:
    if nonlinearity == "tanh":
        return "RNN_TANH"
    if nonlinearity == "relu":
        return "RNN_RELU"
    raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")


def _raise_as_torch_nn(kind: str, module: RNNBase, args: tuple, kwargs: dict) -> None:
    """Raise what torch.nn.<kind>(*args, **kwargs) raises before RNNBase's checks, if anything.

    torch.nn's LSTM, GRU and RNN take (*args, **kwargs) and hand them to RNNBase.__init__: GRU and
    RNN first refuse a proj_size keyword, RNN first takes nonlinearity (4th positional) and checks
    it, and a call RNNBase cannot bind raises RNNBase's TypeError ("RNNBase.__init__() got an
    unexpected keyword argument 'nonlinearity'").
    """
    if kind != "LSTM" and "proj_size" in kwargs:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
    mode = kind
    if kind == "RNN":
        kwargs = dict(kwargs)
        if len(args) > 3:
            nonlinearity, args = args[3], args[:3] + args[4:]
        else:
            nonlinearity = kwargs.pop("nonlinearity", "tanh")
        mode = _rnn_mode(nonlinearity)
    if not _binds(inspect.signature(RNNBase.__init__), module, mode, *args, **kwargs):
        RNNBase.__init__(module, mode, *args, **kwargs)  # raises Python's TypeError for RNNBase


def _torch_nn_argument_errors(kind: str) -> Callable[[_Init], _Init]:
    """Decorate LSTM/GRU/RNN.__init__: a call that does not bind raises what torch.nn raises.

    The constructors keep their real signatures (inspect.signature, help() and type checkers see
    them, where torch.nn's show (*args, **kwargs)); only a call that does not bind to them takes
    the torch.nn path above, and one that torch.nn would accept (GRU's 8th positional, which
    torch.nn gives to RNNBase's proj_size) raises Python's own TypeError for our signature.
    """

    def decorate(init: _Init) -> _Init:
        signature = inspect.signature(init)

        @functools.wraps(init)
        def checked(self: RNNBase, *args: Any, **kwargs: Any) -> None:
            if not _binds(signature, self, *args, **kwargs):
                _raise_as_torch_nn(kind, self, args, kwargs)
            init(self, *args, **kwargs)

        return cast(_Init, checked)

    return decorate


class RNN(RNNBase):
    """Drop-in torch.nn.RNN (Elman, tanh or relu).

    RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True, batch_first=False,
        dropout=0.0, bidirectional=False, device=None, dtype=None, *, backend='auto')

    Example:
        >>> rnn = RNN(10, 20, 2)
        >>> output, h_n = rnn(torch.randn(5, 3, 10))
        >>> output.shape, h_n.shape
        (torch.Size([5, 3, 20]), torch.Size([2, 3, 20]))
    """

    @_torch_nn_argument_errors("RNN")
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False,
                 device: torch.device | str | int | None = None, dtype: torch.dtype | None = None,
                 *, backend: str | None = "auto") -> None:
        self.nonlinearity = nonlinearity
        super().__init__(_rnn_mode(nonlinearity), input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional, 0, device, dtype, backend=backend)

    @overload
    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]: ...
    @overload
    def forward(self, input: PackedSequence,
                hx: Tensor | None = None) -> tuple[PackedSequence, Tensor]: ...

    # Written out in each class, not inherited from a shared base: Python's argument errors name
    # the function's qualname, which must read `GRU.forward()` / `RNN.forward()` as in torch.nn.
    def forward(self, input: Tensor | PackedSequence,
                hx: Tensor | None = None) -> tuple[Tensor | PackedSequence, Tensor]:
        return self._forward(input, hx)

    forward.__doc__ = FORWARD_DOC


class GRU(RNNBase):
    """Drop-in torch.nn.GRU (gates r, z, n; b_hn inside r * (W_hn h + b_hn)).

    GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
        bidirectional=False, device=None, dtype=None, *, backend='auto')

    Example:
        >>> gru = GRU(10, 20, 2, batch_first=True)
        >>> output, h_n = gru(torch.randn(3, 5, 10))
        >>> output.shape
        torch.Size([3, 5, 20])
    """

    @_torch_nn_argument_errors("GRU")
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: torch.device | str | int | None = None, dtype: torch.dtype | None = None,
                 *, backend: str | None = "auto") -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype, backend=backend)

    @overload
    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]: ...
    @overload
    def forward(self, input: PackedSequence,
                hx: Tensor | None = None) -> tuple[PackedSequence, Tensor]: ...

    # Written out in each class, not inherited from a shared base: Python's argument errors name
    # the function's qualname, which must read `GRU.forward()` / `RNN.forward()` as in torch.nn.
    def forward(self, input: Tensor | PackedSequence,
                hx: Tensor | None = None) -> tuple[Tensor | PackedSequence, Tensor]:
        return self._forward(input, hx)

    forward.__doc__ = FORWARD_DOC


class LSTM(RNNBase):
    """Drop-in torch.nn.LSTM (gates i, f, g, o; optional projection proj_size).

    LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
         bidirectional=False, proj_size=0, device=None, dtype=None, *, backend='auto')

    Example:
        >>> lstm = LSTM(10, 20, 2)
        >>> output, (h_n, c_n) = lstm(torch.randn(5, 3, 10))
        >>> output.shape, c_n.shape
        (torch.Size([5, 3, 20]), torch.Size([2, 3, 20]))
    """

    @_torch_nn_argument_errors("LSTM")
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device: torch.device | str | int | None = None,
                 dtype: torch.dtype | None = None, *, backend: str | None = "auto") -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype, backend=backend)

    @overload
    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None,
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]: ...
    @overload
    def forward(self, input: PackedSequence, hx: tuple[Tensor, Tensor] | None = None,
                ) -> tuple[PackedSequence, tuple[Tensor, Tensor]]: ...

    def forward(self, input: Tensor | PackedSequence, hx: tuple[Tensor, Tensor] | None = None,
                ) -> tuple[Tensor | PackedSequence, tuple[Tensor, Tensor]]:
        return self._forward(input, hx)

    forward.__doc__ = FORWARD_DOC

    def get_expected_cell_size(self, input: Tensor,
                               batch_sizes: Tensor | None) -> tuple[int, int, int]:
        if batch_sizes is not None:
            mini_batch = int(batch_sizes[0])
        else:
            mini_batch = input.size(0) if self.batch_first else input.size(1)
        num_directions = 2 if self.bidirectional else 1
        return (self.num_layers * num_directions, mini_batch, self.hidden_size)

    def check_forward_args(self, input: Tensor, hidden: tuple[Tensor, Tensor],  # type: ignore[override]
                           batch_sizes: Tensor | None) -> None:
        self.check_input(input, batch_sizes)
        self.check_hidden_size(hidden[0], self.get_expected_hidden_size(input, batch_sizes),
                               "Expected hidden[0] size {}, got {}")
        self.check_hidden_size(hidden[1], self.get_expected_cell_size(input, batch_sizes),
                               "Expected hidden[1] size {}, got {}")

    def permute_hidden(self, hx: tuple[Tensor, Tensor],  # type: ignore[override]
                       permutation: Tensor | None) -> tuple[Tensor, Tensor]:
        if permutation is None:
            return hx
        return hx[0].index_select(1, permutation), hx[1].index_select(1, permutation)

    def _check_state_sizes(self, hx, batch):
        self.check_hidden_size(hx[0], self._expected_state_size(batch, self._output_width()),
                               "Expected hidden[0] size {}, got {}")
        self.check_hidden_size(hx[1], self._expected_state_size(batch, self.hidden_size),
                               "Expected hidden[1] size {}, got {}")

    def _states_list(self, hx):
        return [hx[0], hx[1]]

    def _check_state_container(self, hx):
        validation.check_state_pair(hx, "lstm")

    def _states_result(self, states):
        return states[0], states[1]

    def _zero_states(self, batch, like):
        num_directions = 2 if self.bidirectional else 1
        width = self.proj_size if self.proj_size > 0 else self.hidden_size
        count = self.num_layers * num_directions
        return like.new_zeros(count, batch, width), like.new_zeros(count, batch, self.hidden_size)

    def _check_unbatched_hx(self, hx, is_batched):
        dims = (hx[0].dim(), hx[1].dim())
        expected, kind = (3, "batched 3-D") if is_batched else (2, "unbatched 2-D")
        if dims != (expected, expected):
            raise RuntimeError(
                f"For {kind} input, hx and cx should also be {expected}-D but got "
                f"({dims[0]}-D, {dims[1]}-D) tensors"
            )

    def _unsqueeze_hx(self, hx):
        return hx[0].unsqueeze(1), hx[1].unsqueeze(1)

    def _squeeze_result(self, hidden):
        return hidden[0].squeeze(1), hidden[1].squeeze(1)


class RNNCellBase(EcosystemGuards, nn.Module):
    """Shared machinery of the cells: parameters (bias_ih/bias_hh None when bias=False), init.

    Like torch.nn.RNNCellBase it does no constructor validation (a zero hidden size is allowed).
    """

    __constants__ = ["input_size", "hidden_size", "bias"]
    _label = "RNNCell"

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device: torch.device | str | int | None = None, dtype: torch.dtype | None = None,
                 *, backend: str | None = "auto") -> None:
        factory_kwargs: dict[str, Any] = {"device": device, "dtype": dtype}
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        check_backend_argument(backend)
        self.backend = backend
        self.weight_ih = nn.Parameter(
            torch.empty((num_chunks * hidden_size, input_size), **factory_kwargs))
        self.weight_hh = nn.Parameter(
            torch.empty((num_chunks * hidden_size, hidden_size), **factory_kwargs))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(num_chunks * hidden_size, **factory_kwargs))
            self.bias_hh = nn.Parameter(torch.empty(num_chunks * hidden_size, **factory_kwargs))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if "bias" in self.__dict__ and self.bias is not True:
            s += ", bias={bias}"
        if "nonlinearity" in self.__dict__ and self.nonlinearity != "tanh":
            s += ", nonlinearity={nonlinearity}"
        if self.backend not in ("auto", None):
            s += ", backend={backend!r}"
        return s.format(**self.__dict__)

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.setdefault("backend", "auto")

    def _check_dims(self, input, hx_list, hidden_name):
        if input.dim() not in (1, 2):
            raise ValueError(
                f"{self._label}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        for index, value in enumerate(hx_list):
            if value.dim() not in (1, 2):
                name = hidden_name.format(index)
                raise ValueError(
                    f"{self._label}: Expected {name} to be 1D or 2D, got {value.dim()}D instead")

    def _prepare(self, input, hx_list):
        """torch's batching rules, then ATen's size checks; returns (input, hx_list, is_batched)."""
        is_batched = input.dim() == 2
        if not is_batched:
            input = input.unsqueeze(0)
            hx_list = [h.unsqueeze(0) for h in hx_list]
        if input.size(1) != self.input_size:
            raise RuntimeError(
                f"input has inconsistent input_size: got {input.size(1)} "
                f"expected {self.input_size}")
        for label, h in enumerate(hx_list):
            if input.size(0) != h.size(0):
                raise RuntimeError(f"Input batch size {input.size(0)} doesn't match hidden{label} "
                                   f"batch size {h.size(0)}")
            if h.size(1) != self.hidden_size:
                raise RuntimeError(f"hidden{label} has inconsistent hidden_size: got {h.size(1)}, "
                                   f"expected {self.hidden_size}")
            if h.dim() != 2:
                # A 1-D input with 2-D hx passes torch's checks only when the sizes happen to line
                # up; refuse it instead of broadcasting into a wrong result.
                raise RuntimeError(f"hidden{label} must be 1-D for 1-D input, got {h.dim() - 1}-D")
        return input, hx_list, is_batched

    def _zeros(self, input):
        batch = input.size(0) if input.dim() == 2 else 1
        shape = (batch, self.hidden_size) if input.dim() == 2 else (self.hidden_size,)
        return input.new_zeros(shape)


class RNNCell(RNNCellBase):
    """Drop-in torch.nn.RNNCell: h' = tanh|relu(x W_ih^T + b_ih + h W_hh^T + b_hh).

    RNNCell(input_size, hidden_size, bias=True, nonlinearity='tanh', device=None, dtype=None, *,
            backend='auto'); forward(input (B, I) or (I,), hx (B, H) or (H,) or None) -> h'.

    Example:
        >>> cell = RNNCell(10, 20)
        >>> cell(torch.randn(3, 10)).shape
        torch.Size([3, 20])
    """

    __constants__ = ["input_size", "hidden_size", "bias", "nonlinearity"]

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device: torch.device | str | int | None = None,
                 dtype: torch.dtype | None = None, *, backend: str | None = "auto") -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype,
                         backend=backend)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """One step: input (B, I) or (I,), hx (B, H) or (H,) (zeros if None) -> h' like hx."""
        self._check_dims(input, [] if hx is None else [hx], "hidden")
        if self.nonlinearity not in ("tanh", "relu"):
            # torch.nn.RNNCell checks it before ATen's size checks.
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        hx = self._zeros(input) if hx is None else hx
        input, (hx,), is_batched = self._prepare(input, [hx])
        out = functional.rnn_cell(input, hx, self.weight_ih, self.weight_hh, self.bias_ih,
                                  self.bias_hh, nonlinearity=self.nonlinearity,
                                  backend=self.backend)
        return out if is_batched else out.squeeze(0)


class LSTMCell(RNNCellBase):
    """Drop-in torch.nn.LSTMCell.

    LSTMCell(input_size, hidden_size, bias=True, device=None, dtype=None, *, backend='auto');
    forward(input (B, I) or (I,), hx (h (B, H), c (B, H)) or None) -> (h', c').

    Example:
        >>> cell = LSTMCell(10, 20)
        >>> h, c = cell(torch.randn(3, 10))
        >>> h.shape
        torch.Size([3, 20])
    """

    _label = "LSTMCell"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: torch.device | str | int | None = None, dtype: torch.dtype | None = None,
                 *, backend: str | None = "auto") -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype,
                         backend=backend)

    def forward(self, input: Tensor,
                hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """One step: input (B, I) or (I,), hx (h, c) each (B, H) or (H,) (zeros if None) -> (h', c')."""
        self._check_dims(input, [] if hx is None else list(hx), "hx[{}]")
        if hx is not None:
            validation.check_state_pair(hx, "lstm_cell")
        if hx is None:
            zeros = self._zeros(input)
            hx = (zeros, zeros)
        input, (h, c), is_batched = self._prepare(input, [hx[0], hx[1]])
        h, c = functional.lstm_cell(input, (h, c), self.weight_ih, self.weight_hh, self.bias_ih,
                                    self.bias_hh, backend=self.backend)
        return (h, c) if is_batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """Drop-in torch.nn.GRUCell.

    GRUCell(input_size, hidden_size, bias=True, device=None, dtype=None, *, backend='auto');
    forward(input (B, I) or (I,), hx (B, H) or (H,) or None) -> h'.

    Example:
        >>> cell = GRUCell(10, 20)
        >>> cell(torch.randn(10)).shape
        torch.Size([20])
    """

    _label = "GRUCell"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: torch.device | str | int | None = None, dtype: torch.dtype | None = None,
                 *, backend: str | None = "auto") -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype,
                         backend=backend)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """One step: input (B, I) or (I,), hx (B, H) or (H,) (zeros if None) -> h' like hx."""
        self._check_dims(input, [] if hx is None else [hx], "hidden")
        hx = self._zeros(input) if hx is None else hx
        input, (hx,), is_batched = self._prepare(input, [hx])
        out = functional.gru_cell(input, hx, self.weight_ih, self.weight_hh, self.bias_ih,
                                  self.bias_hh, backend=self.backend)
        return out if is_batched else out.squeeze(0)
