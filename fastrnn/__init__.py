"""fastrnn: drop-in LSTM / GRU / RNN layers for PyTorch with a pure-PyTorch reference and fused
Triton kernels.

Example:
    >>> import fastrnn
    >>> lstm = fastrnn.LSTM(128, 256, num_layers=2, batch_first=True)  # same API as torch.nn.LSTM
    >>> out, (h, c) = lstm(torch.randn(4, 10, 128))
    >>> out.shape, h.shape
    (torch.Size([4, 10, 256]), torch.Size([2, 4, 256]))
    >>> fastrnn.explain(lstm, torch.randn(4, 10, 128)).backend  # which implementation runs it
    'cpu'
"""

from fastrnn import functional
from fastrnn.backends import BackendUnavailableError, resolve_backend, use_backend
from fastrnn.convert import convert
from fastrnn.explanation import Explanation, explain
from fastrnn.modules import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from fastrnn.quantize import quantize_dynamic

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "BackendUnavailableError",
    "Explanation",
    "GRUCell",
    "LSTMCell",
    "RNNBase",
    "RNNCell",
    "RNNCellBase",
    "convert",
    "explain",
    "functional",
    "quantize_dynamic",
    "resolve_backend",
    "use_backend",
    "__version__",
]
