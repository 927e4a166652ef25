"""Elman RNN reference recurrence (tanh or relu): the executable spec for the Triton kernels.

Dimensions: T time, B batch, H hidden size.

Math (torch.nn.RNN): h_t = act(gx_t + h_{t-1} W_hh^T), gx_t = x_t W_ih^T + b_ih + b_hh.
"""

import torch

from fastrnn.reference.common import run_recurrence

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


def rnn_step(gx_t, h, w_hh, nonlinearity="tanh"):
    """One RNN step: gx_t (B, H), h (B, H), w_hh (H, H) -> h_t (B, H)."""
    return ACTIVATIONS[nonlinearity](torch.addmm(gx_t, h, w_hh.t()))


def rnn_recurrence(gx, h0, w_hh, nonlinearity="tanh", lengths=None, reverse=False):
    """Run the RNN recurrence over precomputed input projections.

    Args:
        gx: (T, B, H) = x @ W_ih^T + b_ih + b_hh.  h0: (B, H).  w_hh: (H, H).
        nonlinearity: 'tanh' or 'relu'.
        lengths: optional (B,) int64 valid lengths (see lstm_recurrence).  reverse: run backwards.
    Returns:
        output (T, B, H), h_n (B, H).

    Example:
        >>> out, h = rnn_recurrence(gx, h0, w_hh, "relu")
    """
    if nonlinearity not in ACTIVATIONS:
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")

    def step(gx_t, state):
        return (rnn_step(gx_t, state[0], w_hh, nonlinearity),)

    output, (h_n,) = run_recurrence(step, gx, (h0,), lengths, reverse)
    return output, h_n
