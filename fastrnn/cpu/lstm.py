"""LSTM on the CPU path: the time loop without autograd and its hand-derived backward.

Dimensions: T time, B batch, H hidden (cell) size, P projection size, H_out = P if P > 0 else H,
gate order i, f, g, o. Steps run on rows [:n] of the run order (layout.py).

Forward step, seven ops into buffers made before the loop (eight with a projection, one more copy
when a gradient is needed):
    pre = gx_t + h_{t-1} W_hh^T                    one addmm (packed: an index_select of the
                                                   step's rows of gx into pre, then addmm_);
                                                   from H=256 with MKL's packed weight (products.py)
    (i, f, _, o) = sigmoid(pre); g = tanh(pre_g)   one sigmoid over all four blocks beats three over
                                                   strided slices; g's block is then overwritten
    c_t = f*c_{t-1} + i*g;  h_t = o*tanh(c_t)      (then h_t W_hr^T with a projection)
The activations and c_t of a step are one row of a work buffer; with a gradient it is copied into
the record (T, B, 5H), or packed (N, 5H) with variable lengths (layout.py), which with the output
is all the backward needs.

Backward. Every gate gradient is a local factor times dh or dc, and the factors depend on the forward
only, so they are computed for all steps at once before the loop, straight into the gate gradient
buffer, and the loop only scales them:
    dhp = dh (or dh W_hr with a projection);  dc += dhp * o(1 - tanh(c_t)^2)
    dgates = (dc * g i(1-i), dc * c_{t-1} f(1-f), dc * i(1-g^2), dhp * tanh(c_t) o(1-o))
    dc_{t-1} = dc * f;  dh_{t-1} = dout_{t-1} + dgates W_hh
With a projection dh of every step is kept (dW_hr = sum dh^T (o*tanh(c_t))); dW_hh = sum dgates^T
h_{t-1} is a product after the loop.

Fused steps. Where fused.py has built fused_steps.c for the dtype, a forward step is the product
h_{t-1} W_hh^T (into `pre`, or MKL's packed product) and one call that adds gx_t, computes the
activations and the cell update and writes the work row, the record row and h_t; a backward step
is one call that computes the step's gate gradients from its record row and c_{t-1} (no factors
for all steps first) and updates dc, then the addmm into dh_{t-1}. Without a projection, a segment
of few rows and a small weight (fused.whole_loop), and in inference every segment up to H=1024, is
one call for all its steps, the recurrent products included (fused_steps.c's GEMM). The formulas
are the ones above; the ATen ops remain where no compiler is.
"""

import functools
import sys

import torch

from fastrnn.cpu import fused
from fastrnn.cpu.function import run
from fastrnn.cpu.grads import weight_grad
from fastrnn.cpu.loop import ForwardLoop
from fastrnn.cpu.products import StepWeight

CELL = "lstm"
# With variable lengths the forward reads each step's rows of the caller's gx by an index_select
# into `pre` (function.py): the copy the addmm makes of its input anyway, so the run order needs no
# (N, 4H) copy of gx.
GATHERS_GX = True
# The largest recurrent weight (elements) an inference runs as whole loops: H=1024's (4096, 1024).
INFERENCE_LOOP_MAX_WEIGHT = 1 << 22


def forward(problem, store):
    """The forward loop. Returns ((output, h_n, c_n), saved) in run order; the output and the
    record are per-step buffers of the layout ((T, B, X), or packed (N, X))."""
    loop = _ForwardLoop(problem, store)
    out = loop.run()
    h_n = problem.layout.last_steps(out).clone()
    c_n = loop.work[:, 4 * loop.hidden :].clone()
    return (out, h_n, c_n), ((loop.rec, out) if store else ())


class _ForwardLoop(ForwardLoop):
    GATES, RECORD = 4, 5  # i f g o | c

    def __init__(self, p, store):
        super().__init__(p, store)
        hidden = self.hidden
        self.w_hh = StepWeight(p.w_hh)
        self.w_hr_t = None if p.w_hr is None else p.w_hr.t().contiguous()  # (H, P)
        self.work[:, 4 * hidden :] = p.c0
        self.pre = self.gx.new_empty(p.batch, 4 * hidden)
        self.tc = self.gx.new_empty(p.batch, hidden)

    def start_segment(self, rows, steps):
        self.w_hh.prepare(rows, steps)

    def aten_segment(self, segment, h_ins, h_outs, recs):
        n, gxs = segment[2], self.gx_steps(segment)
        hidden, w_hh, w_hr_t = self.hidden, self.w_hh, self.w_hr_t
        work, pre_n, tc_n = self.work, self.pre[:n], self.tc[:n]
        row, acts, c = work[:n], work[:n, : 4 * hidden], work[:n, 4 * hidden :]
        i, f, g, o = acts.view(n, 4, hidden).unbind(1)
        g_pre = pre_n[:, 2 * hidden : 3 * hidden]
        for k in range(len(gxs)):
            if self.gather:
                torch.index_select(self.gx, 0, gxs[k], out=pre_n)
                w_hh.addmm_(pre_n, h_ins[k])
            else:
                w_hh.addmm(gxs[k], h_ins[k], out=pre_n)
            torch.sigmoid(pre_n, out=acts)
            torch.tanh(g_pre, out=g)
            c.mul_(f)
            c.addcmul_(i, g)
            torch.tanh(c, out=tc_n)
            if w_hr_t is None:
                torch.mul(o, tc_n, out=h_outs[k])
            else:
                tc_n.mul_(o)
                torch.mm(tc_n, w_hr_t, out=h_outs[k])
            if recs is not None:
                recs[k].copy_(row)

    def whole_loop(self, rows):
        # Without a record (inference) up to H=1024's weight, the largest measured: at H=512 (T=50,
        # B=32 and 64) it runs as fast as MKL's packed per-step product (1.12x / 1.12x and 1.01x /
        # 1.02x vs torch.nn, this / per step) and faster at B=8 (H=256 0.83x / 0.70x, 512 1.04x /
        # 1.00x, 1024 1.24x / 0.84x), and its packed weight is the weight's size where MKL's is
        # three times it (the peak of an H=512 inference: 29.5 MiB with MKL's, above torch.nn's
        # 24.7). MKL's is faster at H=1024 B=32 (1.23x / 1.15x). Beyond H=1024 the panels (K x 256
        # bytes each) outgrow the L2 cache by far.
        weight = self.w_hh.weight
        inference = self.rec is None and weight.numel() <= INFERENCE_LOOP_MAX_WEIGHT
        return self.w_hr_t is None and (inference or fused.whole_loop(rows, weight))

    @functools.cached_property
    def w_hh_panels(self):
        """W_hh^T (H_out, 4H) packed for the whole loop's GEMM (made once per call)."""
        return fused.pack_panels(self.w_hh.weight.t())

    def loop_segment(self, segment):
        steps, n = segment[1] - segment[0], segment[2]
        _table, at = fused.addresses(*self.segment_addresses(segment))
        self.kernels.lstm_forward_loop(steps, n, self.hidden, self.problem.h_out,
                                       self.w_hh_panels.data_ptr(), *at[:5], self.work.data_ptr(),
                                       self.work.stride(0), *at[5:], self.pre.data_ptr())

    def fused_segment(self, segment, h_ins, h_outs, recs):
        n, gxs = segment[2], self.gx_steps(segment)
        hidden, w_hh, w_hr_t, step = self.hidden, self.w_hh, self.w_hr_t, self.kernels.lstm_forward
        steps, pre_n, tc_n = len(gxs), self.pre[:n], self.tc[:n]
        (gx_p, gx_ld, index_p), (rec_p, rec_ld) = self.gx_rows(gxs), self.record_rows(recs, steps)
        # With a projection the step writes o*tanh(c) into tc, and the output is its product.
        h_p, h_ld = fused.rows(h_outs if w_hr_t is None else (tc_n,) * steps)
        work_p, work_ld = self.work.data_ptr(), self.work.stride(0)
        for k in range(steps):
            product = w_hh.mm(h_ins[k], out=pre_n)
            step(n, hidden, product.data_ptr(), product.stride(0), gx_p[k], gx_ld[k], index_p[k],
                 work_p, work_ld, rec_p[k], rec_ld[k], h_p[k], h_ld[k])
            if w_hr_t is not None:
                torch.mm(tc_n, w_hr_t, out=h_outs[k])


def _local_factors(layout, rec, c0, with_hp, dgates=None):
    """Per-step factors the backward scales, for all steps at once (see the module docstring).

    Returns dgates (..., 4H) holding (g i(1-i), c_{t-1} f(1-f), i(1-g^2), tanh(c_t) o(1-o)), kc
    (..., H) = o(1 - tanh(c_t)^2), f (..., H) and, with_hp, hp = o*tanh(c_t), all per-step buffers
    of the layout ((T, B, X) or packed (N, X)) in time order; dgates into `dgates` when given.
    """
    hidden = rec.shape[-1] // 5
    acts, c = rec[..., : 4 * hidden], rec[..., 4 * hidden :]
    i, f, g, o = acts.unflatten(-1, (4, hidden)).unbind(-2)
    dgates = torch.addcmul(acts, acts, acts, value=-1, out=dgates)  # a(1-a), contiguous
    d_i, d_f, d_g, d_o = dgates.unflatten(-1, (4, hidden)).unbind(-2)
    d_i.mul_(g)
    for d_f_part, c_prev in layout.pairs(d_f, c, c0):
        d_f_part.mul_(c_prev)
    torch.mul(g, g, out=d_g)
    torch.addcmul(i, i, d_g, value=-1, out=d_g)
    tc = torch.tanh(c)
    d_o.mul_(tc)
    kc = torch.mul(tc, tc)
    torch.addcmul(o, o, kc, value=-1, out=kc)
    hp = tc.mul_(o) if with_hp else None
    return dgates, kc, f, hp


def backward(problem, saved, dout, dh_n, dc_n, dgates=None):
    """The backward loop. Returns (dgx, dh0, dc0, dw_hh, dw_hr, None) in run order; dgx is
    `dgates` (a contiguous buffer of its shape) when given."""
    p, layout = problem, problem.layout
    rec, out = saved
    # dh of every step: dout, plus dh_n at each sequence's last step, plus what the step after it
    # adds; the first step adds into dh0. Gathered into run order, dout is the op's own copy
    # (function.py) and becomes dh_all in place; otherwise it may be the caller's tensor.
    dh_all = dout if layout.needs_gather else dout.clone(memory_format=torch.contiguous_format)
    layout.add_at_last_steps(dh_all, dh_n)
    dh0 = dh_all.new_zeros(dh_n.shape)
    dc = dc_n.clone(memory_format=torch.contiguous_format)
    kernels = fused.steps(rec.dtype)
    if kernels is None:
        dgates, hp = _aten_backward_loop(p, rec, dh_all, dh0, dc, dgates)
    else:
        dgates, hp = _fused_backward_loop(kernels, p, rec, dh_all, dh0, dc, dgates)
    dw_hh = weight_grad(layout.pairs(dgates, out, p.h0))
    dw_hr = None if p.w_hr is None else weight_grad([(dh_all, hp)])
    return dgates, dh0, dc, dw_hh, dw_hr, None


def _aten_backward_loop(p, rec, dh_all, dh0, dc, dgates):
    """The loop as ATen ops from factors computed for all steps first. Fills dh_all, dh0 and dc in
    place; returns (dgates, hp or None)."""
    layout, w_hh, w_hr = p.layout, p.w_hh, p.w_hr
    hidden = rec.shape[-1] // 5
    dgates, kc, f, hp = _local_factors(layout, rec, p.c0, w_hr is not None, dgates)
    gate_blocks = dgates.unflatten(-1, (4, hidden))
    d_ifg, d_o = gate_blocks[..., :3, :], gate_blocks[..., 3, :]
    dhp = None if w_hr is None else dc.new_empty(dc.shape)
    for segment in reversed(layout.segments):
        n = segment[2]
        dc_n_, dhp_n = dc[:n], None if dhp is None else dhp[:n]
        dc3 = dc_n_.unsqueeze(1)
        dhs, dh_ins = layout.steps_of(dh_all, segment), layout.previous_steps(dh_all, segment, dh0)
        kcs, fs = layout.steps_of(kc, segment), layout.steps_of(f, segment)
        dgs = layout.steps_of(dgates, segment)
        d3s, dos = layout.steps_of(d_ifg, segment), layout.steps_of(d_o, segment)
        for k in range(len(dgs) - 1, -1, -1):
            dh = dhs[k] if dhp_n is None else torch.mm(dhs[k], w_hr, out=dhp_n)
            dc_n_.addcmul_(dh, kcs[k])
            dos[k].mul_(dh)
            d3s[k].mul_(dc3)
            dc_n_.mul_(fs[k])
            dh_ins[k].addmm_(dgs[k], w_hh)
    return dgates, hp


def _fused_backward_loop(kernels, p, rec, dh_all, dh0, dc, dgates):
    """The loop with fused_steps.c's step, which computes a step's gate gradients from its record
    as it goes (no factors for all steps first). Fills dh_all, dh0 and dc in place; returns
    (dgates, hp or None)."""
    layout, w_hh, w_hr = p.layout, p.w_hh, p.w_hr
    hidden = rec.shape[-1] // 5
    if dgates is None:
        dgates = layout.new_buffer((p.batch, 4 * hidden), rec)
    hp = None if w_hr is None else layout.new_buffer((p.batch, hidden), rec)
    dhp = None if w_hr is None else dc.new_empty(dc.shape)
    c0, c_history = p.c0.contiguous(), rec[..., 4 * hidden :]
    dc_p, step, loop = dc.data_ptr(), kernels.lstm_backward, None
    if w_hr is None:
        loop, w_hh_panels = kernels.lstm_backward_loop, None
    for segment in reversed(layout.segments):
        n = segment[2]
        if n == 0:  # steps past every sequence's end
            continue
        if loop is not None and fused.whole_loop(n, w_hh):
            if w_hh_panels is None:  # packed for the loop's GEMM at the first segment it runs
                w_hh_panels = fused.pack_panels(w_hh)
            _table, at = fused.addresses(
                *layout.step_addresses(rec, segment),
                *layout.previous_addresses(c_history, segment, c0),
                *layout.step_addresses(dh_all, segment), *layout.step_addresses(dgates, segment),
                *layout.previous_addresses(dh_all, segment, dh0))
            loop(segment[1] - segment[0], n, hidden, w_hh.shape[1], w_hh_panels.data_ptr(),
                 *at[:6], dc_p, *at[6:])
            continue
        dhs, dh_ins = layout.steps_of(dh_all, segment), layout.previous_steps(dh_all, segment, dh0)
        dgs = layout.steps_of(dgates, segment)
        steps = len(dgs)
        (rec_p, rec_ld), (dg_p, dg_ld) = fused.rows(layout.steps_of(rec, segment)), fused.rows(dgs)
        c_prev_p, c_prev_ld = fused.rows(layout.previous_steps(c_history, segment, c0))
        if w_hr is None:
            (dh_p, dh_ld), hp_p, hp_ld = fused.rows(dhs), [None] * steps, [0] * steps
        else:
            # The step's dh is the projection's input gradient, dh_out W_hr, and it writes
            # o*tanh(c_t) for dW_hr.
            dh_p, dh_ld = [dhp.data_ptr()] * steps, [dhp.stride(0)] * steps
            hp_p, hp_ld = fused.rows(layout.steps_of(hp, segment))
        for k in range(steps - 1, -1, -1):
            if w_hr is not None:
                torch.mm(dhs[k], w_hr, out=dhp[:n])
            step(n, hidden, rec_p[k], rec_ld[k], c_prev_p[k], c_prev_ld[k], dh_p[k], dh_ld[k], dc_p,
                 dg_p[k], dg_ld[k], hp_p[k], hp_ld[k])
            dh_ins[k].addmm_(dgs[k], w_hh)
    return dgates, hp


def lstm_recurrence(gx, h0, c0, w_hh, w_hr=None, lengths=None, reverse=False):
    """Run the LSTM recurrence over precomputed input projections on the CPU path.

    Same contract as fastrnn.reference.lstm_recurrence.

    Args:
        gx: (T, B, 4H) = x @ W_ih^T + b_ih + b_hh.  h0: (B, H_out).  c0: (B, H).
        w_hh: (4H, H_out).  w_hr: (P, H) or None.
        lengths: optional (B,) int64, each in [1, T].  reverse: run backwards.
    Returns:
        output (T, B, H_out), h_n (B, H_out), c_n (B, H).

    Example:
        >>> out, h, c = fastrnn.cpu.lstm_recurrence(gx, h0, c0, w_hh)
    """
    return run(sys.modules[__name__], gx, h0, c0, w_hh, w_hr, None, lengths, reverse)
