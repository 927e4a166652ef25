"""fastrnn: drop-in LSTM / GRU / RNN layers for PyTorch with a pure-PyTorch reference and fused
Triton kernels.

    import fastrnn
    lstm = fastrnn.LSTM(128, 256, num_layers=2, batch_first=True)   # same API as torch.nn.LSTM
    out, (h, c) = lstm(x)
"""

from fastrnn import functional
from fastrnn.backends import BackendUnavailableError, resolve_backend, use_backend
from fastrnn.convert import convert
from fastrnn.modules import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from fastrnn.quantize import quantize_dynamic

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "BackendUnavailableError",
    "GRUCell",
    "LSTMCell",
    "RNNBase",
    "RNNCell",
    "RNNCellBase",
    "convert",
    "functional",
    "quantize_dynamic",
    "resolve_backend",
    "use_backend",
    "__version__",
]
