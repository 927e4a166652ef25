"""The 'cpu' backend (fastrnn.cpu) beyond the module grid of test_parity.py: each recurrence against
the float64 reference for every direction and lengths pattern, what is saved and when, double
backward, the run order of variable lengths, and low precision computed in float32 inside.
"""

import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import fastrnn
from fastrnn import cpu, reference
from fastrnn.cpu import fused, gru, products
from fastrnn.cpu.layout import Layout
from fastrnn.ops import autograd
from fastrnn.testing import assert_close, recurrence_inputs

CELLS = [("lstm", 0, "tanh"), ("lstm", 3, "tanh"), ("gru", 0, "tanh"), ("rnn", 0, "tanh"),
         ("rnn", 0, "relu")]
CELL_IDS = ["lstm", "lstm-proj", "gru", "rnn-tanh", "rnn-relu"]
# (T, B, lengths): none, unsorted with repeats, already sorted, all full, one step, one sequence,
# more steps than the packed dgx moves at once (layout.from_run_in_place).
LENGTHS = [(6, 5, None), (6, 5, [3, 6, 1, 6, 2]), (6, 4, [6, 5, 5, 1]), (4, 3, [4, 4, 4]),
           (1, 3, [1, 1, 1]), (5, 1, [3]), (40, 5, [17, 40, 1, 33, 40])]
LENGTH_IDS = ["none", "unsorted", "sorted", "full", "T1", "B1", "long"]


def _call(module, cell, nonlinearity, t, lengths, reverse):
    if cell == "lstm":
        return module.lstm_recurrence(t["gx"], t["h0"], t["c0"], t["w_hh"], t["w_hr"], lengths,
                                      reverse)
    if cell == "gru":
        return module.gru_recurrence(t["gx"], t["h0"], t["w_hh"], t["b_hh"], lengths, reverse)
    return module.rnn_recurrence(t["gx"], t["h0"], t["w_hh"], nonlinearity, lengths, reverse)


def _results(module, cell, nonlinearity, inputs, lengths, reverse):
    """Outputs and the gradients of every input under fixed random upstream gradients."""
    leaves = {k: None if v is None else v.detach().clone().requires_grad_()
              for k, v in inputs.items()}
    outputs = _call(module, cell, nonlinearity, leaves, lengths, reverse)
    gen = torch.Generator().manual_seed(5)
    # Drawn in float64 whatever the outputs' dtype: a float32 run gets the same upstream values.
    upstream = [torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o.dtype) for o in outputs]
    torch.autograd.backward(outputs, upstream)
    results = {f"out{i}": o.detach() for i, o in enumerate(outputs)}
    results.update({f"grad.{k}": v.grad for k, v in leaves.items() if v is not None})
    return results


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize(("steps", "batch", "lengths"), LENGTHS, ids=LENGTH_IDS)
@pytest.mark.parametrize(("cell", "proj", "nonlinearity"), CELLS, ids=CELL_IDS)
def test_recurrence_matches_the_reference(cell, proj, nonlinearity, steps, batch, lengths,
                                          reverse):
    inputs = recurrence_inputs(cell, steps, batch, 4, proj=proj)
    lengths = None if lengths is None else torch.tensor(lengths)
    expected = _results(reference, cell, nonlinearity, inputs, lengths, reverse)
    actual = _results(cpu, cell, nonlinearity, inputs, lengths, reverse)
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        assert_close(actual[name], value, name)


def test_double_backward_names_the_reference_backend():
    """The hand-derived backward is not differentiable: differentiating a gradient says which
    backend is (a create_graph backward alone works: torch.func.grad always asks for one)."""
    gru = fastrnn.GRU(3, 4, backend="cpu")
    x = torch.randn(2, 1, 3, requires_grad=True)
    output, _ = gru(x)
    (grad,) = torch.autograd.grad(output.sum(), x, create_graph=True)
    assert grad.shape == x.shape
    with pytest.raises(RuntimeError, match="^double backward is not supported by the cpu backend; "
                                           "use backend='reference'$"):
        torch.autograd.grad(grad.sum(), x)


def test_the_forward_keeps_no_reference_to_gx():
    """gx (T, B, G*H), the largest tensor of a layer, is freed after the forward: the backward
    needs only the activations, the output and the weights."""
    inputs = recurrence_inputs("lstm", 5, 3, 4)
    gx = inputs["gx"] * 1.0  # a non-leaf, as functional's input projection makes it
    alive = weakref.ref(gx)
    outputs = cpu.lstm_recurrence(gx, inputs["h0"], inputs["c0"], inputs["w_hh"])
    del gx
    assert alive() is None
    sum(o.sum() for o in outputs).backward()
    assert inputs["gx"].grad is not None


def test_inference_saves_nothing_and_training_runs_one_node_per_layer():
    gru = fastrnn.GRU(3, 4, backend="cpu")
    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        output, h_n = gru(x)
    assert output.grad_fn is None and h_n.grad_fn is None
    output, _ = gru(x)
    assert type(output.grad_fn).__name__ == "GRURecurrenceBackward"  # one fastrnn::gru op call
    gru.requires_grad_(False)
    assert gru(x)[0].grad_fn is None


class _SeenOps(TorchDispatchMode):
    """Records the ops dispatched under it."""

    def __init__(self):
        super().__init__()
        self.seen = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.seen.add(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_eager_inference_runs_the_kernels_without_the_op_unless_watched(monkeypatch, cell):
    """No gradient, eager, plain CPU tensors: the op's kernels run directly (ops.recurrence skips
    the op's dispatch). A dispatch mode still sees the op, with the same results, and a call
    that needs a gradient builds the op's node."""
    applied = []
    function = autograd.FUNCTIONS[cell]

    class Counted:
        @staticmethod
        def apply(*args):
            applied.append(cell)
            return function.apply(*args)

    monkeypatch.setitem(autograd.FUNCTIONS, cell, Counted)
    inputs = recurrence_inputs(cell, 6, 3, 4)
    with torch.no_grad():
        direct = _call(cpu, cell, "tanh", inputs, None, False)
        assert applied == []
        with _SeenOps() as mode:
            watched = _call(cpu, cell, "tanh", inputs, None, False)
    assert f"fastrnn.{cell}.default" in mode.seen and applied == [cell]
    for a, b in zip(direct, watched):
        assert torch.equal(a, b)
    leaves = {k: None if v is None else v.detach().requires_grad_() for k, v in inputs.items()}
    assert _call(cpu, cell, "tanh", leaves, None, False)[0].grad_fn is not None
    assert applied == [cell, cell]


def test_backward_twice_and_partial_gradients():
    """The backward reads its saved tensors without changing them (retain_graph twice gives the
    same gradients), and gradients are computed only for the inputs that require them."""
    inputs = recurrence_inputs("lstm", 5, 3, 4, proj=2)
    inputs["h0"].requires_grad_(False)
    outputs = cpu.lstm_recurrence(inputs["gx"], inputs["h0"], inputs["c0"], inputs["w_hh"],
                                  inputs["w_hr"], torch.tensor([5, 2, 4]), True)
    loss = sum(o.square().sum() for o in outputs)
    first = torch.autograd.grad(loss, [inputs["gx"], inputs["w_hr"]], retain_graph=True)
    second = torch.autograd.grad(loss, [inputs["gx"], inputs["w_hr"]])
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    assert inputs["h0"].grad is None


def test_changing_an_output_in_place_before_backward_is_refused():
    inputs = recurrence_inputs("rnn", 4, 2, 3)
    output, _ = cpu.rnn_recurrence(inputs["gx"], inputs["h0"], inputs["w_hh"])
    output.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        output.sum().backward()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "f16"])
def test_low_precision_computes_in_float32_inside(dtype):
    """bf16/fp16 return their own dtype and equal the float32 run rounded once at the end."""
    inputs = recurrence_inputs("gru", 6, 3, 5)
    low = {k: None if v is None else v.detach().to(dtype) for k, v in inputs.items()}
    single = {k: None if v is None else v.to(torch.float32) for k, v in low.items()}
    with torch.no_grad():
        got = _call(cpu, "gru", "tanh", low, None, False)
        expected = _call(cpu, "gru", "tanh", single, None, False)
    for a, e in zip(got, expected, strict=True):
        assert a.dtype == dtype
        assert torch.equal(a, e.to(dtype))


def test_run_order_of_variable_lengths():
    """Sorted longest first (stable), the reverse direction reversed within each length, the
    running rows a shrinking prefix, buffers packed (step t at rows [offset_t, offset_t + n_t));
    from_run inverts to_run on the valid positions and zeroes the others."""
    lengths = torch.tensor([2, 4, 1, 4])
    layout = Layout(lengths, 4, 4, reverse=True)
    assert layout.lengths.tolist() == [4, 4, 2, 1]
    assert layout.segments == [(0, 1, 4), (1, 2, 3), (2, 4, 2)]
    assert not layout.reverse
    assert layout.rows == 11
    x = torch.arange(16.0).view(4, 4, 1)  # x[t, b] = 4t + b
    run = layout.to_run(x)
    # Run order (sequences 1, 3, 0, 2), each reversed in its length: sequence 0 (length 2) is row 2
    # of steps 0 and 1 (packed rows 2 and 6): times 1, 0.
    assert run[:, 0].tolist() == [13, 15, 4, 2, 9, 11, 0, 5, 7, 1, 3]
    padding = (torch.arange(4).unsqueeze(1) >= lengths).unsqueeze(2)
    assert torch.equal(layout.from_run(run), x.masked_fill(padding, 0))
    steps = [list(layout.steps_of(run, segment)) for segment in layout.segments]
    assert [[v[:, 0].tolist() for v in views] for views in steps] == [
        [[13, 15, 4, 2]], [[9, 11, 0]], [[5, 7], [1, 3]]]
    initial = -torch.arange(1.0, 5.0).unsqueeze(1)
    previous = [[v[:, 0].tolist() for v in layout.previous_steps(run, segment, initial)]
                for segment in layout.segments]
    assert previous == [[[-1, -2, -3, -4]], [[13, 15, 4]], [[9, 11], [5, 7]]]
    (first, first_prev), (rest, rest_prev) = layout.pairs(run, run, initial)
    assert torch.equal(first, run[:4]) and torch.equal(first_prev, initial)
    assert torch.equal(rest, run[4:])
    assert rest_prev[:, 0].tolist() == [13, 15, 4, 9, 11, 5, 7]
    assert layout.last_steps(run)[:, 0].tolist() == [1, 3, 0, 2]
    assert not Layout(torch.tensor([3, 3]), 3, 2, reverse=True).packed


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize(("lengths", "packed_input"), [
    (None, False), ([3, 6, 1, 6, 2], False), ([6, 6, 5, 2, 1], False), ([4, 2, 2, 1, 1], False),
    ([6, 6, 5, 2, 1], True), ([4, 2, 2, 1, 1], True),  # packed input: sorted lengths only
], ids=["none", "unsorted", "sorted", "short", "packed-input-sorted", "packed-input-short"])
def test_step_addresses_are_those_of_the_step_views(lengths, packed_input, reverse):
    """The whole-loop calls take the layout's addresses instead of per-step views: the same
    pointers and row strides as steps_of, previous_steps and gather_steps give, segment by
    segment (T=6 above the longest length: segments with no rows)."""
    steps, batch = 6, 5
    layout = Layout(None if lengths is None else torch.tensor(lengths), steps, batch, reverse,
                    packed_input=packed_input)
    x = torch.randn(layout.rows, 7) if layout.packed else torch.randn(steps, batch, 7)
    initial = torch.randn(batch, 7)

    def rows(views):
        return [[v.data_ptr() for v in views], [v.stride(0) for v in views]]

    def lists(columns):
        return [column.tolist() for column in columns]

    for segment in layout.segments:
        if segment[2] == 0:
            continue
        assert lists(layout.step_addresses(x, segment)) == rows(layout.steps_of(x, segment))
        assert (lists(layout.previous_addresses(x, segment, initial))
                == rows(layout.previous_steps(x, segment, initial)))
        if layout.packed:
            assert (layout.gather_addresses(segment).tolist()
                    == [v.data_ptr() for v in layout.gather_steps(segment)])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_vmapped_gradient_over_per_instance_lengths(cell):
    """vmap of grad with lengths that differ per instance: each instance's packed record has its
    own row count (sum of its lengths), padded to the longest where the instances are stacked."""
    from torch.func import grad, vmap

    from fastrnn import ops

    inputs = recurrence_inputs(cell, 5, 3, 4)
    gx = torch.stack([inputs["gx"].detach(), -inputs["gx"].detach()])
    lengths = torch.tensor([[5, 2, 4], [1, 3, 2]])
    c0 = None if inputs["c0"] is None else inputs["c0"].detach()

    def gradients(backend):
        def loss(w_hh, gx, lengths):
            outputs = ops.recurrence(backend, cell, gx, inputs["h0"].detach(), c0,
                                     w_hh, b_hh=None if cell == "lstm" else inputs["b_hh"].detach(),
                                     lengths=lengths)
            return sum(o.square().sum() for o in outputs)

        return vmap(grad(loss, argnums=(0, 1)), in_dims=(None, 0, 0))(inputs["w_hh"].detach(), gx,
                                                                       lengths)

    for actual, expected in zip(gradients("cpu"), gradients("reference"), strict=True):
        assert_close(actual, expected)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("chunk", [1, 3, 16])
def test_packed_result_laid_out_in_place(chunk, reverse):
    """from_run_in_place turns a buffer whose first N rows are packed into what from_run returns,
    in the buffer's own storage, whatever the number of steps moved at once; gather_steps indexes
    each step's rows of the caller's tensor."""
    lengths = torch.tensor([7, 2, 20, 1, 20, 9, 3])
    layout = Layout(lengths, 20, 7, reverse=reverse)
    x = torch.randn(20, 7, 5)
    packed = layout.to_run(x)
    buffer = torch.full((20 * 7, 5), float("nan"))
    buffer[: layout.rows] = packed
    result = layout.from_run_in_place(buffer, chunk=chunk)
    assert result.data_ptr() == buffer.data_ptr()
    assert torch.equal(result, layout.from_run(packed))
    rows = torch.cat([index for segment in layout.segments for index in layout.gather_steps(segment)])
    assert torch.equal(x.reshape(-1, 5).index_select(0, rows), packed)


@pytest.mark.skipif(products._MKL is None, reason="this torch build has no MKL packed GEMM")
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize(("steps", "batch", "lengths"), [LENGTHS[0], LENGTHS[1], LENGTHS[6]],
                         ids=["none", "unsorted", "long"])
@pytest.mark.parametrize("proj", [0, 3], ids=["lstm", "lstm-proj"])
def test_packed_weight_product_matches_the_reference(monkeypatch, proj, steps, batch, lengths,
                                                     reverse):
    """The LSTM's forward product through MKL's packed weight (products.py), forced at a small size:
    float32 against the float64 reference, every output and gradient, and every step of the loop
    through it."""
    for name in ("MIN_ROWS", "MIN_STEPS", "MIN_WEIGHT_ELEMENTS"):
        monkeypatch.setattr(products, name, 1)
    # Small batches otherwise run the fused whole loop, whose product is its own (fused.py).
    monkeypatch.setattr(fused, "LOOP_MAX_ROWS", 0)
    calls = []
    reorder, linear = products._MKL

    def counted(*args):
        calls.append(args[0].shape[0])
        return linear(*args)

    monkeypatch.setattr(products, "_MKL", (reorder, counted))
    inputs = recurrence_inputs("lstm", steps, batch, 4, proj=proj)
    single = {k: None if v is None else v.detach().float() for k, v in inputs.items()}
    lengths = None if lengths is None else torch.tensor(lengths)
    expected = _results(reference, "lstm", "tanh", inputs, lengths, reverse)
    actual = _results(cpu, "lstm", "tanh", single, lengths, reverse)
    assert len(calls) == (steps if lengths is None else int(lengths.max()))
    for name, value in expected.items():
        assert actual[name].dtype == torch.float32
        assert_close(actual[name], value, name)


@pytest.mark.parametrize("shape", [(5, 3, 6), (7, 6)], ids=["padded", "packed-rows"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_input_projection_is_linear(shape, bias):
    """The CPU path's gx (products.input_projection: the product, then the bias in place): F.linear's
    value and gradients, float64 to rounding."""
    g = torch.Generator().manual_seed(0)
    leaves = [torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_(),
              torch.randn(8, 6, generator=g, dtype=torch.float64).requires_grad_(),
              torch.randn(8, generator=g, dtype=torch.float64).requires_grad_() if bias else None]
    upstream = torch.randn(*shape[:-1], 8, generator=g, dtype=torch.float64)
    results = []
    for function in (products.input_projection, torch.nn.functional.linear):
        inputs = [None if t is None else t.detach().clone().requires_grad_() for t in leaves]
        out = function(*inputs)
        out.backward(upstream)
        results.append([out, *(t.grad for t in inputs if t is not None)])
    for actual, expected in zip(*results):
        torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


def test_input_projection_under_vmap_of_the_bias():
    """A bias batched by torch.func.vmap, the input and weight not: the product has no batch
    dimension to add into in place, so the projection adds out of place there."""
    g = torch.Generator().manual_seed(0)
    x, weight = torch.randn(4, 3, 6, generator=g), torch.randn(8, 6, generator=g)
    biases = torch.randn(5, 8, generator=g)
    actual = torch.func.vmap(lambda b: products.input_projection(x, weight, b))(biases)
    expected = torch.stack([torch.nn.functional.linear(x, weight, b) for b in biases])
    torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("lengths", [None, [5, 2, 4]], ids=["padded", "lengths"])
def test_gru_inference_with_a_large_weight_reads_its_transpose_in_place(monkeypatch, lengths):
    """Inference from gru.LARGE_WEIGHT_ELEMENTS (lowered here) multiplies by W_hh^T as a view, no
    copy: the same values as the float64 reference; training and a strided weight keep the copy."""
    monkeypatch.setattr(gru, "LARGE_WEIGHT_ELEMENTS", 1)
    loops, init = [], gru._ForwardLoop.__init__

    def recorded(self, *args):
        init(self, *args)
        loops.append(self)

    monkeypatch.setattr(gru._ForwardLoop, "__init__", recorded)
    inputs = recurrence_inputs("gru", 5, 3, 4)
    lengths = None if lengths is None else torch.tensor(lengths)
    with torch.no_grad():
        actual = _call(cpu, "gru", "tanh", inputs, lengths, False)
        expected = _call(reference, "gru", "tanh", inputs, lengths, False)
    assert [loop.w_t.is_contiguous() for loop in loops] == [False]
    for index, (a, e) in enumerate(zip(actual, expected)):
        assert_close(a, e, f"output {index}")
    # The copy where the view would cost more: training (the record), or a weight that is itself a
    # strided view (MKL would copy its transpose at every step).
    loops.clear()
    _results(cpu, "gru", "tanh", inputs, lengths, False)
    strided = dict(inputs, w_hh=torch.cat([inputs["w_hh"]] * 2, 1)[:, ::2].detach())
    with torch.no_grad():
        _call(cpu, "gru", "tanh", strided, lengths, False)
    assert [loop.w_t.is_contiguous() for loop in loops] == [True, True]


def _pad_rows(rows, lengths):
    """(N, X) packed rows of sequences sorted by length -> (T, B, X), zero past each end."""
    sizes = torch.nn.utils.rnn.pack_padded_sequence(torch.zeros(int(lengths[0]), len(lengths)),
                                                    lengths).batch_sizes
    packed = torch.nn.utils.rnn.PackedSequence(rows, sizes)
    return torch.nn.utils.rnn.pad_packed_sequence(packed)[0]


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("lengths", [[6, 6, 3, 2, 1], [6, 5, 5, 1], [4, 4, 4], [3]],
                         ids=["distinct", "repeats", "full", "B1"])
@pytest.mark.parametrize(("cell", "proj", "nonlinearity"), CELLS, ids=CELL_IDS)
def test_packed_input_matches_the_reference(cell, proj, nonlinearity, lengths, reverse):
    """Packed input (gx as PackedSequence.data's (N, G*H) rows, the layout the modules hand a
    packed call to): output as (N, H_out) rows, every gradient, against the reference on the
    padded batch."""
    lengths = torch.tensor(lengths)
    inputs = recurrence_inputs(cell, int(lengths[0]), len(lengths), 4, proj=proj)
    leaves = {k: None if v is None else v.detach().clone().requires_grad_()
              for k, v in inputs.items()}
    rows = torch.nn.utils.rnn.pack_padded_sequence(leaves["gx"], lengths).data
    outputs = _call(cpu, cell, nonlinearity, {**leaves, "gx": rows}, lengths, reverse)
    assert outputs[0].shape == (rows.shape[0], (proj or 4))
    gen = torch.Generator().manual_seed(5)
    upstream = [torch.randn(o.shape, generator=gen, dtype=o.dtype) for o in outputs]
    torch.autograd.backward(outputs, upstream)
    # The reference's upstream: the same values, the output's padded.
    ref_leaves = {k: None if v is None else v.detach().clone().requires_grad_()
                  for k, v in inputs.items()}
    ref_outputs = _call(reference, cell, nonlinearity, ref_leaves, lengths, reverse)
    torch.autograd.backward(ref_outputs, [_pad_rows(upstream[0], lengths), *upstream[1:]])
    assert_close(_pad_rows(outputs[0].detach(), lengths), ref_outputs[0].detach(), "output")
    for index in range(1, len(outputs)):
        assert_close(outputs[index].detach(), ref_outputs[index].detach(), f"out{index}")
    for name, leaf in leaves.items():
        if leaf is not None:
            assert_close(leaf.grad, ref_leaves[name].grad, f"grad.{name}")


def test_packed_input_needs_sorted_lengths_and_the_cpu_backend():
    inputs = recurrence_inputs("gru", 3, 2, 4)
    rows = inputs["gx"].detach()[:, 0]  # (3, 3H): lengths (2, 1) would be 3 rows
    h0, w_hh = inputs["h0"].detach(), inputs["w_hh"].detach()
    with pytest.raises(ValueError, match="sorted longest first"):
        cpu.gru_recurrence(rows, h0, w_hh, None, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="runs on the cpu backend with lengths"):
        reference_op = fastrnn.ops.implementation("reference")
        reference_op.gru_recurrence(rows, h0, w_hh, None, torch.tensor([2, 1]))
    with pytest.raises(ValueError, match="without lengths"):
        cpu.gru_recurrence(rows, h0, w_hh)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_a_packed_call_on_the_cpu_backend_runs_its_rows_unpadded(monkeypatch, backend):
    """The cpu backend is handed PackedSequence.data's rows (no padded batch is made); the
    reference runs the padded batch. Both give torch.nn's result."""
    from fastrnn import ops, packing

    unpacked = []
    original_unpack = packing.unpack
    monkeypatch.setattr(packing, "unpack",
                        lambda *args, **kwargs: unpacked.append(1) or original_unpack(*args, **kwargs))
    shapes = []
    original_run = ops.recurrence
    monkeypatch.setattr(ops, "recurrence",
                        lambda backend, cell, gx, *rest: shapes.append(tuple(gx.shape))
                        or original_run(backend, cell, gx, *rest))
    torch.manual_seed(0)
    expected = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True).double()
    module = fastrnn.GRU(3, 4, num_layers=2, bidirectional=True, backend=backend).double()
    module.load_state_dict(expected.state_dict())
    sequences = [torch.randn(n, 3, dtype=torch.float64) for n in (2, 5, 3)]
    packed = torch.nn.utils.rnn.pack_sequence(sequences, enforce_sorted=False)
    h0 = torch.randn(4, 3, 4, dtype=torch.float64)
    (out, h_n), (ref_out, ref_h_n) = module(packed, h0), expected(packed, h0)
    assert_close(out.data, ref_out.data, "output")
    assert_close(h_n, ref_h_n, "h_n")
    if backend == "cpu":
        assert not unpacked and shapes == [(10, 12)] * 4  # N = 2 + 5 + 3 rows, 3H wide
    else:
        assert unpacked


@pytest.mark.parametrize("steps", [1, 2])
def test_a_single_step_runs_plain_ops_and_longer_sequences_the_op(monkeypatch, steps):
    """A cell's call (one step) runs the reference's plain ops on the cpu backend: no loop to save,
    and the op's fixed cost would dominate; two steps or more run the fastrnn op. Both match
    torch.nn, gradients included."""
    from fastrnn import ops

    calls = []
    original = ops.recurrence
    monkeypatch.setattr(ops, "recurrence", lambda *args: calls.append(1) or original(*args))
    torch.manual_seed(0)
    expected = torch.nn.LSTM(3, 4).double()
    module = fastrnn.LSTM(3, 4, backend="cpu").double()
    module.load_state_dict(expected.state_dict())
    x = torch.randn(steps, 2, 3, dtype=torch.float64, requires_grad=True)
    out, (h_n, c_n) = module(x)
    (out.sum() + c_n.sum()).backward()
    grad, x.grad = x.grad, None
    ref_out, (_, ref_c_n) = expected(x)
    (ref_out.sum() + ref_c_n.sum()).backward()
    assert_close(out, ref_out, "output")
    assert_close(grad, x.grad, "grad.input")
    assert len(calls) == (steps > 1)


def test_vmap_over_packed_input_runs_one_call_per_instance():
    """vmap of a packed-input recurrence (rows of length-sorted sequences): the instances cannot
    join one batch, so each runs on its own; the result equals the calls one by one."""
    lengths = torch.tensor([3, 2])
    inputs = recurrence_inputs("gru", 3, 2, 4)
    rows = torch.stack([torch.nn.utils.rnn.pack_padded_sequence(inputs["gx"].detach() * scale,
                                                                lengths).data
                        for scale in (1.0, 0.5)])  # (2, 5, 12)
    h0, w_hh, b_hh = (inputs[k].detach() for k in ("h0", "w_hh", "b_hh"))
    with torch.no_grad():
        output, h_n = torch.func.vmap(
            lambda r: cpu.gru_recurrence(r, h0, w_hh, b_hh, lengths))(rows)
        for index in range(2):
            expected = cpu.gru_recurrence(rows[index], h0, w_hh, b_hh, lengths)
            assert torch.equal(output[index], expected[0]) and torch.equal(h_n[index], expected[1])
