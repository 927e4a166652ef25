"""An LSTM layer's inference on the CPU path with its input projection inside the compiled loop.

Dimensions: T time, B batch, I input size, H hidden size, N = sum(lengths) with variable lengths.

functional runs a layer as gx = x W_ih^T + b, one library product over all T*B rows, then the
recurrence op on gx. For an LSTM without projection in inference (nothing needs a gradient and
nothing traces or intercepts the call) within the bounds below, this layer skips gx: each step's
products take x_t and h_{t-1} against the two weights packed once for the call, and the step adds
the bias. That saves writing the (T, B, 4H) gx and reading it back from memory, and the library's
product at these shapes: at T=100 B=64 H=64 (one thread, a 2-core AVX-512 Xeon) the product of
all steps took 2.8-3.4 ms (65-75 GFLOP/s) of an 8.4 ms layer.
The float formulas are the recurrence's; the sums run in another order (x_t W_ih^T + h_{t-1}
W_hh^T, then the bias), so the results match the op path to rounding, not bit for bit.
"""

from fastrnn.cpu import fused
from fastrnn.cpu.function import _layout

# Where this layer runs instead of the op path (gx for all steps by MKL, then the recurrence op):
# weights (W_ih and W_hh) of at most H=128's size (fused.LOOP_MAX_WEIGHT elements) at any batch,
# and up to H=256's (1024, 256) from 32 rows, where the rows fill the GEMM's register blocks. No
# bound on the rows: the GEMM streams each panel once per block of 6 rows whatever their number.
# One thread, a 2-core AVX-512 Xeon, T=100, speedup vs torch.nn with the op path / this layer,
# alternating in one process: H=64 B=128 0.59x / 0.88x, B=256 0.58x / 0.88x; H=128 B=128 0.76x /
# 0.87x; H=256 B=8 0.86x / 0.74x, B=32 0.78x / 0.85x, B=64 0.81x / 0.88x, B=128 0.80x / 0.98x;
# H=512 (T=50) B=32 0.95x / 0.80x, B=64 1.05x / 0.93x (8 MiB of packed weights stream from the L3
# cache every step).
WIDE_MIN_ROWS = 32
WIDE_MAX_WEIGHT = 1 << 18


def lstm_inference_layer(x, h0, c0, w_ih, bias, w_hh, lengths=None, reverse=False):
    """(output, h_n, c_n) of one LSTM layer-direction without projection, or None where this path
    does not apply (the caller then runs gx and the recurrence op).

    Args:
        x (T, B, I), or packed (N, I): PackedSequence.data's rows, sequences sorted by length (then
        lengths is required); h0, c0 (B, H); w_ih (4H, I); bias (4H,) (b_ih + b_hh) or None;
        w_hh (4H, H); lengths (B,) int64 or None; reverse: run backwards.
    Returns:
        output (T, B, H) or packed (N, H), h_n (B, H), c_n (B, H), in x's dtype; or None.
    """
    if not _applies(x, h0, c0, w_ih, bias, w_hh):
        return None
    kernels = fused.steps(x.dtype)
    batch, hidden, n_in = h0.shape[0], w_hh.shape[1], w_ih.shape[1]
    layout = _layout(x, h0, lengths, reverse)
    x_run = layout.to_run(x)
    if x_run.stride(-1) != 1 and n_in > 1:  # the GEMM reads rows of unit stride
        x_run = x_run.contiguous()
    h0_run, c0_run = layout.rows_to_run(h0).contiguous(), layout.rows_to_run(c0)
    out = layout.new_buffer((batch, hidden), x)
    work = x.new_empty(batch, 5 * hidden)  # a step's (i f g o | c); c carried between steps
    work[:, 4 * hidden :] = c0_run
    pre = x.new_empty(batch, 4 * hidden)
    bias = x.new_zeros(4 * hidden) if bias is None else bias.contiguous()
    w_ih_panels, w_hh_panels = fused.pack_panels(w_ih.t()), fused.pack_panels(w_hh.t())
    for segment in layout.segments:
        steps, n = segment[1] - segment[0], segment[2]
        if n == 0:  # steps past every sequence's end
            continue
        _table, at = fused.addresses(*layout.step_addresses(x_run, segment),
                                     *layout.previous_addresses(out, segment, h0_run),
                                     *layout.step_addresses(out, segment))
        kernels.lstm_inference_loop(steps, n, hidden, n_in, hidden, w_ih_panels.data_ptr(),
                                    w_hh_panels.data_ptr(), bias.data_ptr(), *at[:4],
                                    work.data_ptr(), work.stride(0), *at[4:], pre.data_ptr())
    h_n = layout.last_steps(out).clone()
    c_n = work[:, 4 * hidden :].clone()
    return layout.from_run(out), layout.rows_from_run(h_n), layout.rows_from_run(c_n)


def _applies(x, h0, c0, w_ih, bias, w_hh):
    """Whether the call is inference on plain CPU tensors of a dtype with compiled steps, nothing
    tracing or intercepting it (as for the op's direct path, fastrnn.ops), of an LSTM layer's shapes,
    within the bounds above, with something to compute."""
    from fastrnn.ops import unobserved_cpu_inference

    tensors = (x, h0, c0, w_ih, bias, w_hh)
    if not unobserved_cpu_inference(tensors):
        return False
    if fused.steps(x.dtype) is None or any(t is not None and t.dtype != x.dtype for t in tensors):
        return False
    if not _shapes_agree(x, h0, c0, w_ih, bias, w_hh):
        return False  # the op path raises the error
    batch, hidden = h0.shape[0], w_hh.shape[1]
    if x.shape[0] == 0 or batch == 0 or hidden == 0 or w_ih.shape[1] == 0:
        return False
    weight = max(w_ih.numel(), w_hh.numel())
    return weight <= fused.LOOP_MAX_WEIGHT or (batch >= WIDE_MIN_ROWS and weight <= WIDE_MAX_WEIGHT)


def _shapes_agree(x, h0, c0, w_ih, bias, w_hh):
    """Whether the shapes are one LSTM layer's: the compiled loop reads by these sizes without
    checking them (functional's callers below the modules check nothing)."""
    if x.dim() not in (2, 3) or h0.dim() != 2 or w_ih.dim() != 2 or w_hh.dim() != 2:
        return False
    gates, hidden = w_hh.shape
    batch = h0.shape[0]
    return (gates == 4 * hidden and w_ih.shape[0] == gates and x.shape[-1] == w_ih.shape[1]
            and h0.shape == c0.shape == (batch, hidden)
            and (bias is None or bias.shape == (gates,))
            and (x.dim() == 2 or x.shape[1] == batch))
