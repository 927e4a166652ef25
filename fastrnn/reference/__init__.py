"""Pure-PyTorch reference recurrences: the executable spec. Never imports triton.

Each `*_recurrence` runs the time loop over precomputed input projections and has the same
signature and return contract as its twin in `fastrnn.kernels`.
"""

from fastrnn.reference.gru import gru_recurrence, gru_step
from fastrnn.reference.lstm import lstm_recurrence, lstm_step
from fastrnn.reference.rnn import rnn_recurrence, rnn_step

__all__ = [
    "gru_recurrence",
    "gru_step",
    "lstm_recurrence",
    "lstm_step",
    "rnn_recurrence",
    "rnn_step",
]
