"""Dynamic int8 quantization of models with fastrnn layers: `fastrnn.quantize_dynamic`.

torch.ao.quantization.quantize_dynamic quantizes nn.LSTM, nn.GRU and the three nn cells (int8
weights, activations quantized on the fly) but finds them by exact type, so it passes over
fastrnn layers. This converts them to their torch.nn twins first (fastrnn.convert, the same
weights) and then runs torch's quantize_dynamic: the quantized model runs on torch's own
dynamic-quantized kernels (CPU), like a quantized torch.nn model. torch has no quantized multi-
layer Elman RNN, so fastrnn.RNN layers stay float (as nn.RNN would), with a warning.
"""

import copy
import warnings

import torch

from fastrnn import modules
from fastrnn.convert import convert


def quantize_dynamic(model, qconfig_spec=None, dtype=torch.qint8, inplace=False):
    """Quantize `model`'s fastrnn and torch.nn recurrent layers and Linear layers dynamically.

    Args:
        model: an nn.Module (fastrnn layers anywhere inside, or a fastrnn layer itself).
        qconfig_spec, dtype: as torch.ao.quantization.quantize_dynamic (default: LSTM, GRU, the
            cells and Linear, qint8; float16 is also accepted by torch).
        inplace: modify `model` instead of a deep copy.
    Returns:
        The quantized model: fastrnn layers replaced by torch's dynamic quantized modules.

    Example:
        >>> model = torch.nn.Sequential(fastrnn.LSTM(4, 8))
        >>> quantized = fastrnn.quantize_dynamic(model)
        >>> type(quantized[0]).__name__
        'LSTM'
        >>> type(quantized[0]).__module__
        'torch.ao.nn.quantized.dynamic.modules.rnn'
    """
    if not inplace:
        model = copy.deepcopy(model)
    elmans = [name for name, module in model.named_modules() if isinstance(module, modules.RNN)]
    if elmans:
        warnings.warn(f"torch has no dynamic quantized multi-layer RNN: {', '.join(elmans) or 'the model'} "
                      f"stays in floating point", UserWarning, stacklevel=2)
    model = convert(model, to="torch")
    return torch.ao.quantization.quantize_dynamic(model, qconfig_spec, dtype=dtype, inplace=True)
