"""The forward time loop the LSTM and GRU share on the CPU path: segment by segment (layout.py),
each run by the cell's fused step (fused.py) where it is built for the dtype, else by ATen ops.

Dimensions: T time, B batch, H hidden size, H_out the output width, G gates, R the width of a
step's record in units of H (LSTM 5: i f g o | c; GRU 4: r z gh_n n).
"""

from fastrnn.cpu import fused
from fastrnn.cpu.layout import constant


class ForwardLoop:
    """One forward call's buffers and its loop.

    A cell subclasses it with GATES and RECORD, makes its own buffers in __init__, and defines
    aten_segment and fused_segment(segment, h_ins, h_outs, recs): the steps of a segment
    (s0, s1, n) on rows [:n], given per-step views of the state each step reads and writes and of
    the record (None without a gradient); gx_steps(segment) gives gx's per-step views (or gather
    indices into it).

    Attributes:
        gx: the call's gx, (T, B, G*H) or packed (N, G*H); with `gather` the caller's rows
            (T*B, G*H) read by index. h0: (B, H_out). out: the output buffer, (T, B, H_out) or
            packed (N, H_out). work: (B, R*H), a step's record. rec: the record of every step, a
            buffer like out of width R*H, or None.
    """

    GATES = RECORD = 0

    def __init__(self, problem, store):
        p, layout = problem, problem.layout
        self.problem = p
        self.hidden = p.gx.shape[-1] // self.GATES
        self.kernels = fused.steps(p.gx.dtype)
        self.gather = p.gather
        gx = p.gx.reshape(-1, p.gx.shape[-1]) if p.gather else p.gx
        self.gx, self.h0 = gx, p.h0
        if self.kernels is not None:
            # A fused step reads rows through pointers: unit stride within a row.
            self.gx = gx.contiguous() if gx.stride(-1) != 1 else gx
            self.h0 = p.h0.contiguous()
        self.out = layout.new_buffer((p.batch, p.h_out), gx)
        self.work = gx.new_empty(p.batch, self.RECORD * self.hidden)
        self.rec = layout.new_buffer((p.batch, self.RECORD * self.hidden), gx) if store else None

    def run(self):
        """Every step, in processing order; returns the output buffer."""
        layout = self.problem.layout
        for segment in layout.segments:
            n = segment[2]
            if n == 0:  # steps past every sequence's end (T above the longest length)
                continue
            if self.kernels is not None and self.whole_loop(n):
                self.loop_segment(segment)
                continue
            self.start_segment(n, segment[1] - segment[0])
            h_ins = layout.previous_steps(self.out, segment, self.h0)
            h_outs = layout.steps_of(self.out, segment)
            recs = None if self.rec is None else layout.steps_of(self.rec, segment)
            run_segment = self.aten_segment if self.kernels is None else self.fused_segment
            run_segment(segment, h_ins, h_outs, recs)
        return self.out

    def gx_steps(self, segment):
        """gx's per-step (n, G*H) views for the segment, or with `gather` the per-step (n,)
        indices of its rows in the caller's gx."""
        layout = self.problem.layout
        return layout.gather_steps(segment) if self.gather else layout.steps_of(self.gx, segment)

    def start_segment(self, rows, steps):
        """Called before the steps of each segment that is not a whole loop (the LSTM prepares
        MKL's packed weight)."""

    def whole_loop(self, rows):
        """Whether a segment of `rows` rows runs as one call (loop_segment) of the cell's whole
        loop; by default never."""
        return False

    def gx_rows(self, gxs):
        """(pointers, row strides, gather index pointers) of gx for a fused step: the step views'
        rows, or the rows the gather indices pick (per-step (n,) index views)."""
        if self.gather:  # the whole (T*B, G*H) tensor, its rows picked by index
            steps = len(gxs)
            return ([self.gx.data_ptr()] * steps, [self.gx.stride(0)] * steps,
                    [index.data_ptr() for index in gxs])
        return (*fused.rows(gxs), [None] * len(gxs))

    def segment_addresses(self, segment):
        """For a whole-loop call: the columns of fused.addresses for the segment's steps, as
        (gx, gx row strides, gather indices, h_{t-1}, its row strides, record, its row strides, h_t,
        its row strides), straight from the layout (no per-step views); None for a null column."""
        layout, steps = self.problem.layout, segment[1] - segment[0]
        if self.gather:
            gx = (constant(self.gx.data_ptr(), steps), constant(self.gx.stride(0), steps),
                  layout.gather_addresses(segment))
        else:
            gx = (*layout.step_addresses(self.gx, segment), None)
        rec = (None, None) if self.rec is None else layout.step_addresses(self.rec, segment)
        return (*gx, *layout.previous_addresses(self.out, segment, self.h0), *rec,
                *layout.step_addresses(self.out, segment))

    @staticmethod
    def record_rows(recs, steps):
        """(pointers, row strides) of the record's step views, or null pointers without one."""
        return ([None] * steps, [0] * steps) if recs is None else fused.rows(recs)
