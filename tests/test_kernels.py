"""The Triton kernels (through the interpreter on CPU) against the float64 reference.

Run with TRITON_INTERPRET=1 exported before Python starts (`make test` does). Every kernel form is
forced explicitly for every named case; fresh kernel outputs are NaN-poisoned so an unwritten
element fails. The interpreter runs programs one after another, so `cooperative` runs one program
per batch tile here (its loop, its exchange through global memory and its barrier code, whose
waits pass at once); `stepwise` runs the same step bodies with several hidden and batch tiles.
Planning, fallback and the barrier's error path are in test_kernel_forms.py.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("triton")

from test_kernels_helpers import Case, check_against_reference  # noqa: E402

from fastrnn import functional as fastrnn_functional  # noqa: E402
from fastrnn import kernels  # noqa: E402
from fastrnn.backends import (  # noqa: E402
    BackendUnavailableError,
    RecurrenceSpec,
    resolve_backend,
)
from fastrnn.kernels import forms  # noqa: E402
from fastrnn.testing import assert_all_close, assert_close  # noqa: E402

pytestmark = pytest.mark.triton

FORMS = kernels.FORMS

CASES = [
    # LSTM
    Case("lstm", 4, 3, 5),
    Case("lstm", 1, 1, 4),
    Case("lstm", 3, 17, 20),
    Case("lstm", 3, 2, 40),
    Case("lstm", 5, 4, 6, lengths=(3, 5, 1, 4)),
    Case("lstm", 5, 4, 6, lengths=(3, 5, 1, 4), reverse=True),
    Case("lstm", 4, 3, 6, proj=3),
    Case("lstm", 5, 3, 7, proj=5, lengths=(2, 5, 4), reverse=True),
    Case("lstm", 4, 5, 6, proj=4, lengths=(4, 1, 3, 2, 4)),
    # GRU
    Case("gru", 4, 3, 5),
    Case("gru", 4, 3, 5, bias=False),
    Case("gru", 1, 1, 3),
    Case("gru", 3, 17, 20),
    Case("gru", 5, 4, 6, lengths=(3, 5, 1, 4)),
    Case("gru", 5, 4, 6, lengths=(3, 5, 1, 4), reverse=True, bias=False),
    # RNN
    Case("rnn", 4, 3, 5),
    Case("rnn", 4, 3, 5, nonlinearity="relu"),
    Case("rnn", 1, 1, 7, nonlinearity="relu"),
    Case("rnn", 3, 17, 33),
    Case("rnn", 5, 4, 6, lengths=(3, 5, 1, 4), reverse=True),
    Case("rnn", 5, 4, 6, lengths=(2, 5, 1, 3), nonlinearity="relu"),
]


@pytest.fixture(autouse=True)
def _poison(monkeypatch):
    monkeypatch.setenv("FASTRNN_POISON", "1")


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_reference_fp32(case, form):
    with kernels.use_form(form):
        check_against_reference(kernels, case, torch.float32)


def _lengths(batch, steps):
    """Unsorted lengths in [1, T] with the full length present."""
    values = [1 + (7 * b + 3) % steps for b in range(batch)]
    values[batch // 2] = steps
    return tuple(values)


TILED_CASES = [Case("lstm", 3, 40, 40, proj=24, lengths=_lengths(40, 3), reverse=True),
               Case("lstm", 3, 40, 40, lengths=_lengths(40, 3)),
               Case("gru", 3, 40, 40, lengths=_lengths(40, 3), reverse=True),
               # tanh: in bf16 a relu flips the sign of near-zero pre-activations against the
               # float64 oracle (the bf16 reference itself fails this case), whatever the kernels.
               Case("rnn", 3, 40, 40)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("case", TILED_CASES, ids=str)
def test_stepwise_several_hidden_and_batch_tiles(case, dtype):
    """Stepwise with 3 hidden tiles of 16 units (the last one partial) and 3 batch tiles of 16 rows
    (H = 40 is not a multiple of 16, which plans 16-row tiles): the step bodies cooperative runs,
    each program reading the others' state."""
    with kernels.use_form("stepwise"), kernels.record_forms() as records:
        check_against_reference(kernels, case, dtype)
    assert {r["form"] for r in records} == {"stepwise"}
    assert "3 batch tiles x 3 hidden tiles" in records[0]["plan"]


@pytest.mark.parametrize("case", [Case("lstm", 3, 5, 40, proj=24, lengths=(3, 1, 2, 3, 2)),
                                  Case("gru", 3, 5, 40, lengths=(1, 3, 2, 2, 3), reverse=True),
                                  Case("rnn", 3, 5, 40)], ids=str)
def test_stepwise_weights_in_k_chunks(case, monkeypatch):
    """Weights too large for a program stream in K chunks: forced here with 16-wide chunks (3 of
    them over H = 40, 2 over P = 24)."""
    monkeypatch.setattr(forms, "STEPWISE_MAX_K", 16)
    monkeypatch.setattr(forms, "FP32_K_CHUNK", 16)
    forms.clear_plan_cache()
    try:
        with kernels.use_form("stepwise"), kernels.record_forms() as records:
            check_against_reference(kernels, case, torch.float32)
    finally:
        forms.clear_plan_cache()
    assert "BLOCK_H=16" in records[0]["plan"]


HALF_CASES = [Case("lstm", 3, 5, 6, proj=4, lengths=(3, 1, 2, 3, 2)),
              Case("gru", 3, 5, 6, lengths=(3, 1, 2, 3, 2), reverse=True),
              Case("rnn", 3, 5, 6, nonlinearity="relu")]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", HALF_CASES, ids=str)
def test_matches_reference_half(case, form, dtype):
    with kernels.use_form(form):
        check_against_reference(kernels, case, dtype)


def test_empty_batch_and_zero_hidden():
    gx = torch.zeros(3, 0, 8)
    out, h_n, c_n = kernels.lstm_recurrence(gx, torch.zeros(0, 2), torch.zeros(0, 2),
                                            torch.zeros(8, 2))
    assert out.shape == (3, 0, 2) and h_n.shape == (0, 2) and c_n.shape == (0, 2)
    out, h_n = kernels.gru_recurrence(torch.zeros(3, 2, 0), torch.zeros(2, 0), torch.zeros(0, 0))
    assert out.shape == (3, 2, 0) and h_n.shape == (2, 0)


@settings(max_examples=12)
@given(cell=st.sampled_from(["lstm", "gru", "rnn"]), form=st.sampled_from(FORMS),
       steps=st.integers(1, 4), batch=st.integers(1, 18), hidden=st.integers(1, 20),
       proj=st.integers(0, 5), reverse=st.booleans(), bias=st.booleans(),
       relu=st.booleans(), data=st.data())
def test_random_problems(cell, form, steps, batch, hidden, proj, reverse, bias, relu, data):
    lengths = data.draw(st.none() | st.lists(st.integers(1, steps), min_size=batch,
                                             max_size=batch).map(tuple))
    case = Case(cell, steps, batch, hidden, proj=proj if cell == "lstm" else 0, lengths=lengths,
                reverse=reverse, bias=bias, nonlinearity="relu" if relu else "tanh")
    with kernels.use_form(form):
        check_against_reference(kernels, case, torch.float32)


# --- through fastrnn.functional (input projection, layers, directions, lengths) -----------------


def _stack_weights(mode, input_size, hidden, proj, layers, directions, gen):
    gates = {"LSTM": 4, "GRU": 3}.get(mode, 1)
    h_out = proj or hidden
    weights = []
    for layer in range(layers):
        width = input_size if layer == 0 else directions * h_out
        for _ in range(directions):
            def rand(*shape):
                return (torch.randn(*shape, generator=gen, dtype=torch.float64) * 0.4)

            weights.append((rand(gates * hidden, width), rand(gates * hidden, h_out),
                            rand(gates * hidden), rand(gates * hidden),
                            rand(proj, hidden) if proj else None))
    return weights


def _stack_results(mode, input, states, weights, lengths, backend, dtype, upstream):
    leaves = {"input": input, **{f"state{i}": s for i, s in enumerate(states)}}
    for k, weight in enumerate(weights):
        leaves.update({f"w{k}_{j}": w for j, w in enumerate(weight)})
    cast = {k: None if v is None else v.detach().to(dtype).requires_grad_()
            for k, v in leaves.items()}
    cast_weights = [tuple(cast[f"w{k}_{j}"] for j in range(5)) for k in range(len(weights))]
    output, finals = fastrnn_functional.recurrent_stack(
        mode, cast["input"], [cast[f"state{i}"] for i in range(len(states))], cast_weights,
        bidirectional=True, lengths=lengths, backend=backend)
    outs = [output, *finals]
    names = [k for k, v in cast.items() if v is not None]
    grads = torch.autograd.grad(outs, [cast[k] for k in names], [u.to(dtype) for u in upstream])
    result = {f"out{i}": o for i, o in enumerate(outs)}
    result.update({f"d{k}": g for k, g in zip(names, grads)})
    return result


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("mode,proj", [("LSTM", 3), ("GRU", 0), ("RNN_RELU", 0)])
def test_functional_bidirectional_two_layers_with_lengths(mode, proj, form):
    steps, batch, input_size, hidden, layers = 4, 3, 5, 6, 2
    gen = torch.Generator().manual_seed(3)
    weights = _stack_weights(mode, input_size, hidden, proj, layers, 2, gen)
    input = torch.randn(steps, batch, input_size, generator=gen, dtype=torch.float64)
    h_out = proj or hidden
    states = [torch.randn(layers * 2, batch, h_out, generator=gen, dtype=torch.float64)]
    if mode == "LSTM":
        states.append(torch.randn(layers * 2, batch, hidden, generator=gen, dtype=torch.float64))
    lengths = torch.tensor([2, 4, 1])
    upstream = [torch.randn(steps, batch, 2 * h_out, generator=gen, dtype=torch.float64)]
    upstream += [torch.randn(s.shape, generator=gen, dtype=torch.float64) for s in states]
    expected = _stack_results(mode, input, states, weights, lengths, "reference", torch.float64,
                              upstream)
    with kernels.use_form(form):
        actual = _stack_results(mode, input, states, weights, lengths, "triton", torch.float32,
                                upstream)
    assert_all_close(actual, expected, dtype=torch.float32)


def test_functional_cells():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(3, 5, generator=gen)
    h, c = torch.randn(3, 4, generator=gen), torch.randn(3, 4, generator=gen)
    w_ih, w_hh = torch.randn(16, 5, generator=gen), torch.randn(16, 4, generator=gen)
    b_ih, b_hh = torch.randn(16, generator=gen), torch.randn(16, generator=gen)
    args = (x, (h, c), w_ih, w_hh, b_ih, b_hh)
    actual = fastrnn_functional.lstm_cell(*args, backend="triton")
    expected = fastrnn_functional.lstm_cell(*args, backend="reference")
    assert_all_close(dict(enumerate(actual)), dict(enumerate(expected)), dtype=torch.float32)
    gru_args = (x, h, w_ih[:12], w_hh[:12], b_ih[:12], b_hh[:12])
    assert_close(fastrnn_functional.gru_cell(*gru_args, backend="triton"),
                 fastrnn_functional.gru_cell(*gru_args, backend="reference"))


def test_autocast_bf16_cpu():
    """CPU autocast to bf16: functional casts everything, the kernels run in bf16 (the
    interpreter's bf16 products are upcast, see forms.dot_meta)."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(3, 2, 5, generator=gen, dtype=torch.float64)
    weights = [tuple(torch.randn(*s, generator=gen, dtype=torch.float64) * 0.4
                     for s in [(18, 5), (18, 6), (18,), (18,)]) + (None,)]
    expected, h_expected = fastrnn_functional.gru(x, None, weights, backend="reference")
    weights32 = [tuple(None if w is None else w.float() for w in weights[0])]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        actual, h_actual = fastrnn_functional.gru(x.float(), None, weights32, backend="triton")
    assert actual.dtype == torch.bfloat16
    assert_all_close({"out": actual, "h": h_actual}, {"out": expected, "h": h_expected},
                     dtype=torch.bfloat16)


# --- errors, refusals, form selection -----------------------------------------------------------


def test_double_backward_raises_naming_the_reference():
    gx = torch.randn(2, 3, 16, requires_grad=True)
    w_hh = torch.randn(16, 4, requires_grad=True)
    out, h_n, c_n = kernels.lstm_recurrence(gx, torch.zeros(3, 4), torch.zeros(3, 4), w_hh)
    grads = torch.autograd.grad(out.sum(), [gx, w_hh], create_graph=True)
    with pytest.raises(RuntimeError, match="double backward is not supported by the triton "
                                           "backend; use backend='reference'"):
        torch.autograd.grad(sum(g.square().sum() for g in grads), [gx, w_hh])


def test_refusal():
    spec = RecurrenceSpec("LSTM", torch.device("cpu"), torch.float32, 8)
    assert kernels.refusal(spec) is None
    for dtype in (torch.float16, torch.bfloat16):
        assert kernels.refusal(RecurrenceSpec("GRU", torch.device("cpu"), dtype, 8)) is None
    reason = kernels.refusal(RecurrenceSpec("RNN_TANH", torch.device("cpu"), torch.float64, 8))
    assert "float64" in reason and "reference" in reason
    reason = kernels.refusal(RecurrenceSpec("LSTM", torch.device("cpu"), torch.float32, 8,
                                            double_backward=True))
    assert "double backward" in reason and "reference" in reason
    assert resolve_backend("triton", spec) == ("triton", "requested")
    with pytest.raises(BackendUnavailableError, match="float64"):
        resolve_backend("triton", RecurrenceSpec("LSTM", torch.device("cpu"), torch.float64, 8))


def test_invalid_inputs_raise():
    gx = torch.randn(2, 3, 16)
    with pytest.raises(ValueError, match="h0"):
        kernels.lstm_recurrence(gx, torch.zeros(3, 5), torch.zeros(3, 4), torch.randn(16, 4))
    with pytest.raises(TypeError, match="dtype"):
        kernels.lstm_recurrence(gx, torch.zeros(3, 4), torch.zeros(3, 4),
                                torch.randn(16, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="nonlinearity"):
        kernels.rnn_recurrence(torch.randn(2, 3, 4), torch.zeros(3, 4), torch.randn(4, 4), "gelu")


def test_poisoned_outputs_are_nan():
    from fastrnn.kernels.launch import empty

    assert torch.isnan(empty((2, 3), torch.zeros(1))).all()


def test_torch_compile_runs_the_kernels_as_one_op():
    """torch.compile traces the kernels as one fastrnn::gru op (no graph break) and the result and
    its gradient match the uncompiled call."""
    torch._dynamo.reset()
    gx = torch.randn(3, 2, 12, requires_grad=True)
    w_hh = torch.randn(12, 4) * 0.5

    def f(gx):
        out, h_n = kernels.gru_recurrence(gx, torch.zeros(2, 4), w_hh)
        return out.sum() + h_n.sum()

    compiled = torch.compile(f, backend="eager", fullgraph=True)
    expected = torch.autograd.grad(f(gx), gx)[0]
    value = compiled(gx)
    assert torch.equal(value, f(gx))
    assert torch.equal(torch.autograd.grad(value, gx)[0], expected)
