"""LSTM reference recurrence: the executable spec the Triton kernels are held to.

Dimensions: T time, B batch, H hidden (cell) size, P projection size, H_out = P if P > 0 else H.

Math (torch.nn.LSTM, gate order i, f, g, o):
    gates = gx_t + h_{t-1} W_hh^T            (gx_t already holds x_t W_ih^T + b_ih + b_hh)
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(c_t)             (then h_t W_hr^T when a projection is present)
"""

import torch

from fastrnn.reference.common import run_recurrence


def lstm_step(gx_t, h, c, w_hh, w_hr=None):
    """One LSTM step.

    Args:
        gx_t: (B, 4H) input projection of this step, both biases included.
        h: (B, H_out) previous hidden state.  c: (B, H) previous cell state.
        w_hh: (4H, H_out).  w_hr: (P, H) or None.
    Returns:
        (h_t (B, H_out), c_t (B, H)).
    """
    gates = torch.addmm(gx_t, h, w_hh.t())
    # One sigmoid over all four gate blocks is cheaper on the CPU than three over strided slices;
    # the g block's sigmoid is simply unused.
    i, f, _, o = torch.sigmoid(gates).tensor_split(4, dim=1)
    g = torch.tanh(gates.tensor_split(4, dim=1)[2])
    c_t = f * c + i * g
    h_t = o * torch.tanh(c_t)
    if w_hr is not None:
        h_t = h_t @ w_hr.t()
    return h_t, c_t


def lstm_recurrence(gx, h0, c0, w_hh, w_hr=None, lengths=None, reverse=False):
    """Run the LSTM recurrence over precomputed input projections.

    Args:
        gx: (T, B, 4H) = x @ W_ih^T + b_ih + b_hh for every step.
        h0: (B, H_out), c0: (B, H) initial states.
        w_hh: (4H, H_out) recurrent weight; w_hr: (P, H) projection weight or None.
        lengths: optional (B,) int64 tensor on gx's device; sequence b is valid for t < lengths[b].
            Its state freezes after its last valid step and its outputs past it are zero.
        reverse: run from the last step to the first (each sequence starts at its own end).
    Returns:
        output (T, B, H_out), h_n (B, H_out), c_n (B, H).

    Example:
        >>> out, h, c = lstm_recurrence(gx, h0, c0, w_hh)
    """

    def step(gx_t, state):
        return lstm_step(gx_t, state[0], state[1], w_hh, w_hr)

    output, (h_n, c_n) = run_recurrence(step, gx, (h0, c0), lengths, reverse)
    return output, h_n, c_n
