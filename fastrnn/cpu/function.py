"""The op kernels every CPU cell runs through (fastrnn.ops.library describes the interface): one
`fastrnn::<cell>` op call per layer and direction.

Dimensions: T time, B batch, H hidden (cell) size, P projection size, H_out = P if P > 0 else H,
G gates (LSTM 4, GRU 3, RNN 1).

The forward runs the cell's time loop with autograd off (no graph of ~10 nodes per step) and, when a
gradient is needed (`store`), keeps the gate activations as the op's reserve; the backward op is the
cell's hand-derived loop plus weight gradients as large products after it. Without a gradient to
compute the loop runs alone and the reserve is empty. float16 and bfloat16 run in float32 inside
(states, gates and products; what the Triton kernels do) and return their own dtype; float32 and
float64 run in their own dtype.

Double backward is refused with an error that names the reference (fastrnn.ops.autograd): a
differentiable backward would need gx kept alive through the backward (to recompute the layer),
memory this path exists to save.
"""

import importlib
from dataclasses import dataclass

import torch

from fastrnn.cpu.layout import Layout

DOUBLE_BACKWARD_ERROR = "double backward is not supported by the cpu backend; use backend='reference'"
LOW_PRECISION = (torch.float16, torch.bfloat16)


@dataclass
class Problem:
    """One recurrence call in run order (layout.py), in the compute dtype.

    gx (T, B, G*H); with variable lengths packed (N, G*H) in run order (layout.py), or, when
    `gather`, the caller's tensor, whose step rows a cell's forward gathers itself (GATHERS_GX);
    h0 (B, H_out), c0 (B, H) or None, w_hh (G*H, H_out), w_hr (P, H) or None, b_hh (3H,) or None
    (GRU: b_hn sits inside the reset product).
    """

    gx: torch.Tensor | None
    h0: torch.Tensor
    c0: torch.Tensor | None
    w_hh: torch.Tensor
    w_hr: torch.Tensor | None
    b_hh: torch.Tensor | None
    layout: Layout
    nonlinearity: str = "tanh"
    gather: bool = False

    @property
    def batch(self):
        return self.h0.shape[0]

    @property
    def h_out(self):
        return self.w_hh.shape[1]


def _layout(like, h0, lengths, reverse):
    """The Layout of a call whose per-step tensors are like `like`: (T, B, X), or packed (N, X)
    rows of sequences sorted by length (lengths required)."""
    if like.dim() == 3:
        return Layout(lengths, like.shape[0], like.shape[1], reverse)
    batch = h0.shape[0]
    return Layout(lengths, int(lengths[0]) if batch else 0, batch, reverse, packed_input=True)


def _make_problem(inputs, lengths, reverse, nonlinearity, gathers_gx=False):
    gx, h0, c0, w_hh, w_hr, b_hh = inputs
    dtype = torch.float32 if gx.dtype in LOW_PRECISION else gx.dtype
    layout = _layout(gx, h0, lengths, reverse)

    def cast(t):
        return None if t is None else t.to(dtype)

    # A cell that gathers its steps' rows from the caller's gx needs no run-order copy of it (in
    # its own dtype: a gather cannot cast). Otherwise gathered before the cast: a low-precision gx
    # is cast on its N valid rows only.
    gather = gathers_gx and gx.dtype == dtype and layout.needs_gather
    run_gx = gx if gather else cast(layout.to_run(gx))
    return Problem(run_gx, layout.rows_to_run(cast(h0)),
                   None if c0 is None else layout.rows_to_run(cast(c0)), cast(w_hh), cast(w_hr),
                   cast(b_hh), layout, nonlinearity, gather)


def _forward(cell, inputs, options, store):
    """The cell's forward on `inputs` (the caller's order and dtype).

    Returns (outputs, problem, saved): outputs (output, h_n[, c_n]) in the caller's order and dtype.
    """
    problem = _make_problem(inputs, **options, gathers_gx=getattr(cell, "GATHERS_GX", False))
    (output, h_n, c_n), saved = cell.forward(problem, store)
    layout = problem.layout
    outputs = [layout.from_run(output), layout.rows_from_run(h_n)]
    if c_n is not None:
        outputs.append(layout.rows_from_run(c_n))
    return tuple(t.to(inputs[0].dtype) for t in outputs), problem, saved


def _cell(name):
    return importlib.import_module(f"fastrnn.cpu.{name}")


def _empty(call):
    """An empty batch or a zero hidden size: nothing to compute."""
    return call.h0.shape[0] == 0 or call.gx.shape[-1] == 0


def _empty_packed_forward(call):
    """op_forward's result for packed input with nothing to compute: zero-width or no rows."""
    output = call.gx.new_zeros(call.gx.shape[0], call.w_hh.shape[1])
    c_n = None if call.c0 is None else call.c0.clone()
    return output, call.h0.clone(), c_n, ()


def _compute_dtype(dtype):
    return torch.float32 if dtype in LOW_PRECISION else dtype


# Never traced by Dynamo. Without fullgraph, Dynamo refuses the packed record's unbacked size
# (`_packed_rows`) and runs the op eagerly at a graph break; it would then trace into these Python
# kernels (the time loop unrolled, a recompile per lengths pattern) instead of running them.
@torch.compiler.disable
def op_forward(call):
    """(output, h_n, c_n or None, reserve): the reserve is the cell's per-step record (rec) in run
    order and the compute dtype, when call.store. An empty batch or a zero hidden size runs the
    reference's loop, which only builds empty or zero-width tensors."""
    if _empty(call):
        if call.gx.dim() == 2:
            return _empty_packed_forward(call)
        from fastrnn.ops import reference_kernels

        return reference_kernels.op_forward(call)
    inputs = (call.gx, call.h0, call.c0, call.w_hh, call.w_hr, call.b_hh)
    options = {"lengths": call.lengths, "reverse": bool(call.reverse),
               "nonlinearity": call.nonlinearity}
    outputs, problem, saved = _forward(_cell(call.cell), inputs, options, store=call.store)
    output, h_n, *c_n = outputs
    # The record only: the output in run order is the op's own output, re-laid-out by the backward.
    reserve = tuple(saved[:-1]) if call.store else ()
    if call.lengths is not None and not problem.layout.packed:
        # Every length is T: a (T, B, X) record, declared (N, X) like any call with lengths.
        reserve = tuple(r.flatten(0, 1) for r in reserve)
    return output, h_n, c_n[0] if c_n else None, reserve


def reserve_shapes(call):
    """LSTM: rec (T, B, 5H); GRU: rec (T, B, 4H); RNN: none; in the compute dtype. With lengths the
    record is packed: (N, 5H) or (N, 4H), N = sum(lengths) (`_packed_rows`; packed input: its own
    N rows)."""
    width = {"lstm": 5, "gru": 4}.get(call.cell)
    if width is None or _empty(call):
        return ()
    if call.gx.dim() == 2:
        rows = (call.gx.shape[0],)
    else:
        rows = call.gx.shape[:2] if call.lengths is None else (_packed_rows(call),)
    return (((*rows, width * call.hidden), _compute_dtype(call.gx.dtype)),)


def _packed_rows(call):
    """The fake kernel's N = sum(lengths): a value of the data, so an unbacked size where a shape
    environment can hold one (torch.compile with fullgraph, torch.export). Where there is none (the
    meta device, a FakeTensorMode without shape environment) nothing will run against the shape,
    and the padded count T*B, N's upper bound, stands in. Dynamo without fullgraph refuses a
    data-dependent size: that is a graph break at this op, which then runs eagerly."""
    from torch._guards import detect_fake_mode

    mode = detect_fake_mode(call.gx)
    if mode is None or mode.shape_env is None:
        return call.gx.shape[0] * call.gx.shape[1]
    return torch.library.get_ctx().new_dynamic_size()


@torch.compiler.disable
def op_backward(call, output, reserve, dout, dh_n, dc_n):
    """(dgx, dh0, dc0, dw_hh, dw_hr, db_hh) in the caller's order and dtypes."""
    inputs = {"h0": call.h0, "c0": call.c0, "w_hh": call.w_hh, "w_hr": call.w_hr,
              "b_hh": call.b_hh}
    if call.h0.shape[0] == 0 or call.w_hh.shape[0] == 0:
        dgx = output.new_zeros(*output.shape[:-1], call.w_hh.shape[0])
        return (dgx, *(None if t is None else torch.zeros_like(t) for t in inputs.values()))
    dtype = _compute_dtype(output.dtype)
    layout = _layout(output, call.h0, call.lengths, call.reverse)
    steps, batch = layout.steps, layout.batch

    def cast(t):
        return None if t is None else t.to(dtype)

    problem = Problem(None, layout.rows_to_run(cast(call.h0)),
                      None if call.c0 is None else layout.rows_to_run(cast(call.c0)),
                      cast(call.w_hh), cast(call.w_hr), cast(call.b_hh), layout, call.nonlinearity)
    record = reserve[:1] if call.cell in ("lstm", "gru") else ()  # then the op's empty padding
    if call.lengths is not None:
        # Declared (N, X); vmap's per-instance loop may pad it with rows past N (ops.batching).
        record = tuple(r[: layout.rows] if layout.packed
                       else r[: layout.rows].unflatten(0, (steps, batch)) for r in record)
    # Gathered, then cast: packed, only the N valid rows of the output and of dout are read (the
    # upstream gradient past a sequence's end is not used, and must not reach a weight gradient
    # through 0 * inf).
    saved = (*record, layout.to_run(output).to(dtype))
    dout = layout.to_run(dout).to(dtype)
    dh_n = layout.rows_to_run(dh_n.to(dtype))
    dc_n = None if dc_n is None else layout.rows_to_run(dc_n.to(dtype))
    # Packed and no cast after: the packed dgates (GRU: its (r, z, n) part) are the first N rows of
    # dgx's own buffer, laid out in place after the loop (no packed dgates and padded dgx side by
    # side, the backward's largest pair).
    in_place = layout.packed and dtype == output.dtype
    width = call.w_hh.shape[0]
    dgx_buffer = output.new_empty(output.shape[:-1].numel(), width) if in_place else None
    options = {} if dgx_buffer is None else {"dgates": dgx_buffer[: layout.rows]}
    # Products in the tensors' own dtype whatever autocast state `.backward()` runs in.
    with torch.autocast("cpu", enabled=False):
        dgx, dh0, dc0, dw_hh, dw_hr, db_hh = _cell(call.cell).backward(problem, saved, dout, dh_n,
                                                                        dc_n, **options)
    # The run-order output and dh history go before dgx is laid out again (packed: a padded
    # tensor, the largest buffer of the backward).
    del saved, dout
    dgx = layout.from_run(dgx) if dgx_buffer is None else layout.from_run_in_place(dgx_buffer)
    result = [dgx, layout.rows_from_run(dh0),
              None if dc0 is None else layout.rows_from_run(dc0), dw_hh, dw_hr, db_hh]
    like = [output, *inputs.values()]
    return tuple(None if g is None else g.to(t.dtype) for g, t in zip(result, like))


def run(cell, gx, h0, c0, w_hh, w_hr, b_hh, lengths=None, reverse=False, nonlinearity="tanh"):
    """Run `cell` (a module of this package) on the CPU path as one `fastrnn::<cell>` op call;
    a single step (a cell module's call, or T=1) as the reference's plain ops."""
    from fastrnn import ops

    if gx.dim() == 3 and gx.shape[0] == 1:
        # One step has no loop to save, and the op's fixed cost (its dispatch, autograd node,
        # layout and hand-written backward: about 0.6 ms inference and 1.5 ms training per call
        # on a 2-core VM) is 2-4x what the step's own ops take (LSTMCell B=64 H=32 training:
        # 1.8 ms against 0.8 per step; torch.nn 0.4).
        from fastrnn.ops import cells, reference_kernels

        call = cells.Call(cell=cell.CELL, backend="cpu", gx=gx, h0=h0, c0=c0, w_hh=w_hh,
                          w_hr=w_hr, b_hh=b_hh, lengths=lengths, reverse=bool(reverse),
                          nonlinearity=nonlinearity)
        return reference_kernels.run(call)
    return ops.recurrence("cpu", cell.CELL, gx, h0, c0, w_hh, w_hr, b_hh, lengths, reverse,
                          nonlinearity)
