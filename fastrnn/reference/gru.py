"""GRU reference recurrence: the executable spec the Triton kernels are held to.

Dimensions: T time, B batch, H hidden size.

Math (torch.nn.GRU, gate order r, z, n; b_hn sits inside the reset product, the cuDNN form):
    gh = h_{t-1} W_hh^T + b_hh
    r = sigmoid(gx_r + gh_r);  z = sigmoid(gx_z + gh_z);  n = tanh(gx_n + r * gh_n)
    h_t = (1 - z) * n + z * h_{t-1}
gx_t holds x_t W_ih^T + b_ih only: b_hh cannot be folded into it because b_hn is multiplied by r.
"""

import torch

from fastrnn.reference.common import run_recurrence


def gru_step(gx_t, h, w_hh, b_hh=None):
    """One GRU step.

    Args:
        gx_t: (B, 3H) input projection of this step (b_ih included).
        h: (B, H) previous hidden state.  w_hh: (3H, H).  b_hh: (3H,) or None.
    Returns:
        h_t (B, H).
    """
    gh = h @ w_hh.t() if b_hh is None else torch.addmm(b_hh, h, w_hh.t())
    x_r, x_z, x_n = gx_t.tensor_split(3, dim=1)
    h_r, h_z, h_n = gh.tensor_split(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


def gru_recurrence(gx, h0, w_hh, b_hh=None, lengths=None, reverse=False):
    """Run the GRU recurrence over precomputed input projections.

    Args:
        gx: (T, B, 3H) = x @ W_ih^T + b_ih for every step.
        h0: (B, H) initial state.  w_hh: (3H, H).  b_hh: (3H,) or None.
        lengths: optional (B,) int64 valid lengths (see lstm_recurrence).
        reverse: run from the last step to the first.
    Returns:
        output (T, B, H), h_n (B, H).

    Example:
        >>> out, h = gru_recurrence(gx, h0, w_hh, b_hh)
    """

    def step(gx_t, state):
        return (gru_step(gx_t, state[0], w_hh, b_hh),)

    output, (h_n,) = run_recurrence(step, gx, (h0,), lengths, reverse)
    return output, h_n
