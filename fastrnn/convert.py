"""Swap every recurrent layer of a model between torch.nn and fastrnn in one call.

The swapped module carries the very same Parameter objects (not copies), so an optimizer built
before the swap keeps working and tied weights stay tied; training mode is kept too.
"""

import warnings
from typing import Literal

from torch import nn

from fastrnn import modules

_TO_FASTRNN = {
    nn.LSTM: modules.LSTM,
    nn.GRU: modules.GRU,
    nn.RNN: modules.RNN,
    nn.LSTMCell: modules.LSTMCell,
    nn.GRUCell: modules.GRUCell,
    nn.RNNCell: modules.RNNCell,
}
_TO_TORCH = {fast: torch_cls for torch_cls, fast in _TO_FASTRNN.items()}


def _constructor_kwargs(module):
    """The constructor arguments that rebuild `module` (torch.nn or fastrnn, stack or cell)."""
    kwargs = {"input_size": module.input_size, "hidden_size": module.hidden_size,
              "bias": module.bias}
    if hasattr(module, "num_layers"):
        kwargs.update(num_layers=module.num_layers, batch_first=module.batch_first,
                      dropout=module.dropout, bidirectional=module.bidirectional)
        if module.mode == "LSTM":
            kwargs["proj_size"] = module.proj_size
    if hasattr(module, "nonlinearity"):
        kwargs["nonlinearity"] = module.nonlinearity
    return kwargs


def _swap(module, target_cls, extra_kwargs):
    first = next(module.parameters(), None)
    factory = {} if first is None else {"device": "meta", "dtype": first.dtype}
    # Built on the meta device: its own freshly initialised weights are dropped right away. The
    # single-layer dropout warning was already given when `module` was built; do not repeat it.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="dropout option adds dropout", category=UserWarning)
        new = target_cls(**_constructor_kwargs(module), **factory, **extra_kwargs)
    for name, _ in list(new.named_parameters(recurse=False)):
        setattr(new, name, getattr(module, name))
    if hasattr(new, "_init_flat_weights"):
        new._init_flat_weights()  # torch.nn's cache of weight references
    new.train(module.training)
    return new


def convert(model: nn.Module, to: Literal["fastrnn", "torch"] = "fastrnn",
            backend: str | None = "auto") -> nn.Module:
    """Replace every torch.nn LSTM/GRU/RNN/*Cell inside `model` with its fastrnn twin, or back.

    Only exact types are swapped: a user subclass of nn.LSTM may override forward, so it is
    left alone. Returns the converted model (the same object unless `model` itself is swapped).

    Args:
        model: any nn.Module.
        to: 'fastrnn' (default) or 'torch'.
        backend: the `backend` argument given to new fastrnn modules (None: auto).

    Example:
        >>> model = nn.Sequential(nn.LSTM(8, 16))
        >>> model = convert(model)            # now a fastrnn.LSTM with the same weights
        >>> type(model[0]).__module__
        'fastrnn.modules'
        >>> model = convert(model, to="torch")
        >>> type(model[0])
        <class 'torch.nn.modules.rnn.LSTM'>
    """
    if to not in ("fastrnn", "torch"):
        raise ValueError(f"convert(to=...) takes 'fastrnn' or 'torch', got {to!r}")
    mapping = _TO_FASTRNN if to == "fastrnn" else _TO_TORCH
    extra = {"backend": backend} if to == "fastrnn" else {}
    if type(model) in mapping:
        return _swap(model, mapping[type(model)], extra)
    for name, child in list(model.named_children()):
        converted = convert(child, to=to, backend=backend)
        if converted is not child:
            setattr(model, name, converted)
    return model
