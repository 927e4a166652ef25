"""GRU on the CPU path: the time loop without autograd and its hand-derived backward.

Dimensions: T time, B batch, H hidden size, gate order r, z, n. Steps run on rows [:n] of the run
order (layout.py).

b_hn sits inside the reset product (n = tanh(gx_n + r*(h W_hn^T + b_hn))), so the product of a step
keeps gh = h W_hh^T + b_hh apart from gx (b_hh is the addmm's broadcast input). Forward step, seven
ops (one more copy when a gradient is needed, one more with variable lengths: the gather of the
step's rows of gx):
    gh = b_hh + h_{t-1} W_hh^T;  (r, z) = sigmoid(gx_rz + gh_rz)   (an add, then sigmoid in place)
    n = tanh(gx_n + r*gh_n);  h_t = n + z*(h_{t-1} - n)  (ATen's form, also at +-inf)
(Adding gx_rz and b_hn into one addmm input would save the add but costs a (T, B, 3H) copy of gx.)
A step's (r, z, gh_n, n) is one row of a work buffer, copied into the record with a gradient.

Backward. With one state every gate gradient is dh times a local factor, computed for all steps
before the loop straight into the gradient buffer, laid out (r, z, n, hn) so that its first three
blocks are the gradient of gx:
    dgates = dh * ((1-z)(1-n^2) gh_n r(1-r), (h_{t-1}-n) z(1-z), (1-z)(1-n^2), (1-z)(1-n^2) r)
    dh_{t-1} = dout_{t-1} + dh*z + dgh W_hh,  dgh = (dr, dz, dhn)
dgh is not one contiguous range, so the step takes two products, (dr, dz) W_hh[:2H] and dhn
W_hh[2H:] (a zero-padded (4H, H) weight would make it one, but costs a quarter more multiply-adds
and a weight-sized buffer). dW_hh = sum dgh^T h_{t-1} and db_hh = sum dgh after the loop. Where dgx
is laid out in place (function.py), hn's factors are a buffer of their own and a step scales the
two.

Fused steps. Where fused.py has built fused_steps.c for the dtype, a forward step is the addmm
gh = b_hh + h_{t-1} W_hh^T and one call for the rest (reading gx_t's rows by index with variable
lengths: no gather op); a backward step is one call that computes the step's gate gradients from
its record row and h_{t-1} and the carry dout_{t-1} + dh*z, then the two products. The formulas
are the ones above; the ATen ops remain where no compiler is.
"""

import sys

import torch

from fastrnn.cpu import fused
from fastrnn.cpu.function import run
from fastrnn.cpu.grads import weight_grad
from fastrnn.cpu.loop import ForwardLoop

CELL = "gru"
# With variable lengths the forward index_selects each step's rows of the caller's gx into a
# (B, 3H) buffer (function.py): one more op per step, and no (N, 3H) run-order copy of gx.
GATHERS_GX = True


def forward(problem, store):
    """The forward loop. Returns ((output, h_n, None), saved) in run order; the output and the
    record are per-step buffers of the layout ((T, B, X), or packed (N, X))."""
    loop = _ForwardLoop(problem, store)
    out = loop.run()
    return (out, problem.layout.last_steps(out).clone(), None), ((loop.rec, out) if store else ())


# The weight size from which an inference reads W_hh^T as a view (_ForwardLoop).
LARGE_WEIGHT_ELEMENTS = 1 << 18


class _ForwardLoop(ForwardLoop):
    GATES, RECORD = 3, 4  # r z gh_n n

    def __init__(self, p, store):
        super().__init__(p, store)
        hidden = self.hidden
        # (H, 3H). MKL's per-step product with a transposed operand takes 1.3-2x the time of one
        # with the contiguous copy (B=64 H=64 25 against 18 us, B=32 H=512 767 against 495), but
        # the copy is a weight's worth of memory: an inference of a weight of 1 MiB or more reads
        # the transposed view, so that its peak holds gx, the output and nothing the size of the
        # weight (T=50 B=32 H=512: 16.1 MiB with the copy, 13.1 without, torch.nn 15.7; 60.5 ms
        # against the copy's 52.3 and torch.nn's 63.0, alternating in one process).
        # (Only a contiguous weight: MKL would copy any other view's transpose at every step.)
        view = not store and p.w_hh.numel() >= LARGE_WEIGHT_ELEMENTS and p.w_hh.is_contiguous()
        self.w_t = p.w_hh.t() if view else p.w_hh.t().contiguous()
        self.b_hh = self.gx.new_zeros(3 * hidden) if p.b_hh is None else p.b_hh
        # A step's gx rows gathered (ATen ops), or the product gh (fused).
        self.step_rows = self.gx.new_empty(p.batch, 3 * hidden)

    def aten_segment(self, segment, h_ins, h_outs, recs):
        n, steps, layout = segment[2], segment[1] - segment[0], self.problem.layout
        hidden, w_t, b_hh = self.hidden, self.w_t, self.b_hh
        work, gx_step = self.work, self.step_rows
        row, product, rz = work[:n], work[:n, : 3 * hidden], work[:n, : 2 * hidden]
        r, z, gh_n, new = row.view(n, 4, hidden).unbind(1)
        if self.gather:
            indices = self.gx_steps(segment)
            gx_rzs = (gx_step[:n, : 2 * hidden],) * steps  # refilled every step
            gx_ns = (gx_step[:n, 2 * hidden :],) * steps
        else:
            gx_rzs = layout.steps_of(self.gx[..., : 2 * hidden], segment)
            gx_ns = layout.steps_of(self.gx[..., 2 * hidden :], segment)
        for k in range(steps):
            if self.gather:
                torch.index_select(self.gx, 0, indices[k], out=gx_step[:n])
            torch.addmm(b_hh, h_ins[k], w_t, out=product)
            rz.add_(gx_rzs[k]).sigmoid_()
            torch.addcmul(gx_ns[k], r, gh_n, out=new)
            new.tanh_()
            # h_t = n + z*(h_{t-1} - n), ATen's own form: torch.lerp switches to
            # h - (h - n)*(1 - z) for z >= 0.5, which is NaN where torch.nn's is -inf (h = -inf).
            torch.sub(h_ins[k], new, out=h_outs[k])
            torch.addcmul(new, h_outs[k], z, out=h_outs[k])
            if recs is not None:
                recs[k].copy_(row)

    def fused_segment(self, segment, h_ins, h_outs, recs):
        n, gxs = segment[2], self.gx_steps(segment)
        hidden, w_t, b_hh, step = self.hidden, self.w_t, self.b_hh, self.kernels.gru_forward
        steps, gh = len(gxs), self.step_rows[:n]
        (gx_p, gx_ld, index_p), (rec_p, rec_ld) = self.gx_rows(gxs), self.record_rows(recs, steps)
        (h_in_p, h_in_ld), (h_p, h_ld) = fused.rows(h_ins), fused.rows(h_outs)
        gh_p, gh_ld, work_p, work_ld = gh.data_ptr(), gh.stride(0), self.work.data_ptr(), self.work.stride(0)
        for k in range(steps):
            torch.addmm(b_hh, h_ins[k], w_t, out=gh)
            step(n, hidden, gh_p, gh_ld, gx_p[k], gx_ld[k], index_p[k], h_in_p[k], h_in_ld[k], work_p,
                 work_ld, rec_p[k], rec_ld[k], h_p[k], h_ld[k])


def _local_factors(layout, rec, out, h0, dgates=None):
    """The factors (see the module docstring) as (factors (..., 4H) in the (r, z, n, hn) layout,
    None), or with `dgates` (a (..., 3H) buffer) as (dgates holding (r, z, n), hn (..., H)); and
    z (..., H). Per-step buffers of the layout ((T, B, X) or packed (N, X)), time order."""
    hidden = rec.shape[-1] // 4
    r, z, gh_n, new = rec.unflatten(-1, (4, hidden)).unbind(-2)
    if dgates is None:
        factors, k_hn = rec.new_empty(rec.shape), None
        k_r, k_z, k_n, k_hn_view = factors.unflatten(-1, (4, hidden)).unbind(-2)
    else:
        factors, k_hn = dgates, rec.new_empty((*rec.shape[:-1], hidden))
        (k_r, k_z, k_n), k_hn_view = dgates.unflatten(-1, (3, hidden)).unbind(-2), k_hn
    one = torch.ones((), dtype=rec.dtype)
    torch.addcmul(one, new, new, value=-1, out=k_n)  # 1 - n^2
    torch.addcmul(k_n, k_n, z, value=-1, out=k_n)  # (1-z)(1-n^2)
    torch.mul(k_n, r, out=k_hn_view)
    torch.addcmul(r, r, r, value=-1, out=k_r)  # r(1-r)
    k_r.mul_(k_n).mul_(gh_n)
    for k_z_part, h_prev in layout.pairs(k_z, out, h0):
        k_z_part.copy_(h_prev)
    k_z.sub_(new).mul_(z)
    torch.addcmul(k_z, k_z, z, value=-1, out=k_z)  # (h_{t-1}-n) z(1-z)
    return factors, k_hn, z


def backward(problem, saved, dout, dh_n, dc_n, dgates=None):
    """The backward loop. Returns (dgx, dh0, None, dw_hh, None, db_hh) in run order; dgx is
    `dgates` (a contiguous buffer of its shape) when given, with hn's gradients apart (one more
    product per step: the loop scales the two buffers separately)."""
    p, layout = problem, problem.layout
    rec, out = saved
    hidden = rec.shape[-1] // 4
    kernels = fused.steps(rec.dtype)
    dh = dh_n + layout.last_steps(dout)  # dh of the step being processed
    if kernels is None:
        dgates, d_hn = _aten_backward_loop(p, rec, out, dout, dh, dgates)
    else:
        dgates, d_hn = _fused_backward_loop(kernels.gru_backward, p, rec, out, dout, dh, dgates)
    d_rz = dgates[..., : 2 * hidden]
    dw_hh = p.w_hh.new_empty(p.w_hh.shape)
    weight_grad(layout.pairs(d_rz, out, p.h0), out=dw_hh[: 2 * hidden])
    weight_grad(layout.pairs(d_hn, out, p.h0), out=dw_hh[2 * hidden :])
    db_hh = None
    if p.b_hh is not None:
        steps = tuple(range(d_rz.dim() - 1))  # (T, B) or packed (N)
        db_hh = torch.cat([d_rz.sum(dim=steps), d_hn.sum(dim=steps)])
    return dgates[..., : 3 * hidden], dh, None, dw_hh, None, db_hh


def _aten_backward_loop(p, rec, out, dout, dh, dgates):
    """The loop as ATen ops from factors computed for all steps first; dh (B, H) becomes dh0 in
    place. Returns (dgates, hn's gradients): dgates (..., 4H) as (r, z, n, hn), or the given
    (..., 3H) buffer with hn's gradients a buffer apart."""
    layout = p.layout
    hidden = rec.shape[-1] // 4
    dgates, apart, z = _local_factors(layout, rec, out, p.h0, dgates)
    w_rz, w_n = p.w_hh[: 2 * hidden], p.w_hh[2 * hidden :]
    d_rz = dgates[..., : 2 * hidden]
    d_hn = dgates[..., 3 * hidden :] if apart is None else apart
    zeros = dh.new_zeros(dh.shape)
    tmp = torch.empty_like(dh)
    gate_blocks = dgates.unflatten(-1, (4 if apart is None else 3, hidden))
    for segment in reversed(layout.segments):
        n = segment[2]
        dh_n_, tmp_n = dh[:n], tmp[:n]
        dh1 = dh_n_.unsqueeze(1)
        d4s, zs = layout.steps_of(gate_blocks, segment), layout.steps_of(z, segment)
        d_rzs, d_hns = layout.steps_of(d_rz, segment), layout.steps_of(d_hn, segment)
        dprevs = layout.previous_steps(dout, segment, zeros)
        for k in range(len(d4s) - 1, -1, -1):
            d4s[k].mul_(dh1)
            if apart is not None:
                d_hns[k].mul_(dh_n_)
            torch.addcmul(dprevs[k], dh_n_, zs[k], out=tmp_n)
            torch.addmm(tmp_n, d_rzs[k], w_rz, out=dh_n_)
            dh_n_.addmm_(d_hns[k], w_n)
    return dgates, d_hn


def _fused_backward_loop(step, p, rec, out, dout, dh, dgates):
    """The loop with fused_steps.c's step, which computes a step's gate gradients from its record
    as it goes; dh (B, H) becomes dh0 in place. Returns what _aten_backward_loop does."""
    layout = p.layout
    hidden = rec.shape[-1] // 4
    w_rz, w_n = p.w_hh[: 2 * hidden], p.w_hh[2 * hidden :]
    if dgates is None:
        dgates = layout.new_buffer((p.batch, 4 * hidden), rec)
        d_hn = dgates[..., 3 * hidden :]
    else:
        d_hn = layout.new_buffer((p.batch, hidden), rec)
    d_rz = dgates[..., : 2 * hidden]
    # The step reads dout and h_{t-1} through pointers: rows of unit stride (dout may be expanded).
    dout, h0 = dout.contiguous(), p.h0.contiguous()
    zeros, carry = dh.new_zeros(dh.shape), torch.empty_like(dh)
    dh_p, carry_p = dh.data_ptr(), carry.data_ptr()
    for segment in reversed(layout.segments):
        n = segment[2]
        if n == 0:  # steps past every sequence's end
            continue
        dh_n_, carry_n = dh[:n], carry[:n]
        d_rzs, d_hns = layout.steps_of(d_rz, segment), layout.steps_of(d_hn, segment)
        steps = len(d_rzs)
        (rec_p, rec_ld), (dg_p, dg_ld) = fused.rows(layout.steps_of(rec, segment)), fused.rows(d_rzs)
        (h_prev_p, h_prev_ld), (dhn_p, dhn_ld) = (fused.rows(layout.previous_steps(out, segment, h0)),
                                                  fused.rows(d_hns))
        dprev_p, dprev_ld = fused.rows(layout.previous_steps(dout, segment, zeros))
        for k in range(steps - 1, -1, -1):
            step(n, hidden, rec_p[k], rec_ld[k], h_prev_p[k], h_prev_ld[k], dh_p, hidden, dprev_p[k],
                 dprev_ld[k], dg_p[k], dg_ld[k], dhn_p[k], dhn_ld[k], carry_p, hidden)
            torch.addmm(carry_n, d_rzs[k], w_rz, out=dh_n_)
            dh_n_.addmm_(d_hns[k], w_n)
    return dgates, d_hn


def gru_recurrence(gx, h0, w_hh, b_hh=None, lengths=None, reverse=False):
    """Run the GRU recurrence over precomputed input projections on the CPU path.

    Same contract as fastrnn.reference.gru_recurrence.

    Args:
        gx: (T, B, 3H) = x @ W_ih^T + b_ih.  h0: (B, H).  w_hh: (3H, H).  b_hh: (3H,) or None.
        lengths: optional (B,) int64, each in [1, T].  reverse: run backwards.
    Returns:
        output (T, B, H), h_n (B, H).

    Example:
        >>> out, h = fastrnn.cpu.gru_recurrence(gx, h0, w_hh, b_hh)
    """
    output, h_n = run(sys.modules[__name__], gx, h0, None, w_hh, None, b_hh, lengths, reverse)
    return output, h_n
