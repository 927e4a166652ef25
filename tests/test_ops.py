"""The recurrences as torch ops (fastrnn.ops): registration, fake kernels, autograd and the errors.

Every backend's forward op passes torch.library.opcheck (schema, autograd registration, fake
tensor, AOT dispatch with dynamic shapes); the op path's outputs and every gradient equal the eager
path; the backward op is one node; what cannot work says so.
"""

import pytest
import torch
from op_helpers import backend_params

import fastrnn
from fastrnn import native, ops, reference
from fastrnn.testing import assert_all_close, recurrence_inputs


def _op_args(cell, backend, inputs, lengths, reverse, store=True):
    i = inputs
    if cell == "lstm":
        return (i["gx"], i["h0"], i["c0"], i["w_hh"], i["w_hr"], lengths, reverse, backend, store)
    if cell == "gru":
        return (i["gx"], i["h0"], i["w_hh"], i["b_hh"], lengths, reverse, backend, store)
    return (i["gx"], i["h0"], i["w_hh"], lengths, reverse, "relu", backend)


def _inputs(cell, dtype=torch.float32, proj=2):
    inputs = recurrence_inputs(cell, 4, 3, 5, proj=proj if cell == "lstm" else 0)
    return {k: None if v is None else v.detach().to(dtype).requires_grad_()
            for k, v in inputs.items()}


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("backend", backend_params())
def test_opcheck(backend, cell):
    """Schema, autograd registration, fake kernel and AOT dispatch, with lengths and reverse."""
    op = getattr(torch.ops.fastrnn, cell).default
    args = _op_args(cell, backend, _inputs(cell), torch.tensor([4, 2, 3]), True)
    results = torch.library.opcheck(op, args)
    assert set(results.values()) == {"SUCCESS"}, results


def _call(backend, cell, inputs, lengths, reverse):
    i = inputs
    return ops.recurrence(backend, cell, i["gx"], i["h0"], i["c0"], i["w_hh"], i["w_hr"], i["b_hh"],
                          lengths, reverse, "relu")


def _reference(cell, inputs, lengths, reverse):
    i = inputs
    if cell == "lstm":
        return reference.lstm_recurrence(i["gx"], i["h0"], i["c0"], i["w_hh"], i["w_hr"], lengths,
                                         reverse)
    if cell == "gru":
        return reference.gru_recurrence(i["gx"], i["h0"], i["w_hh"], i["b_hh"], lengths, reverse)
    return reference.rnn_recurrence(i["gx"], i["h0"], i["w_hh"], "relu", lengths, reverse)


def _results(outputs, inputs):
    """Outputs and the gradients of every input for fixed random upstream gradients."""
    g = torch.Generator().manual_seed(2)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype)).sum()
               for o in outputs)
    present = {k: v for k, v in inputs.items() if v is not None}
    grads = torch.autograd.grad(loss, list(present.values()))
    return {**{f"out.{k}": o for k, o in enumerate(outputs)},
            **{f"grad.{k}": g for k, g in zip(present, grads)}}


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("backend", backend_params())
def test_op_path_equals_the_eager_reference(backend, cell):
    """Outputs and every gradient: the reference op exactly (float64), the others within float32's
    tolerance of the float64 reference (the parity suite holds them to torch.nn)."""
    lengths = torch.tensor([4, 2, 3])
    dtype = torch.float64 if backend == "reference" else torch.float32
    oracle = _inputs(cell, torch.float64)
    expected = _results(_reference(cell, oracle, lengths, True), oracle)
    inputs = _inputs(cell, dtype)
    actual = _results(_call(backend, cell, inputs, lengths, True), inputs)
    assert_all_close(actual, expected)


def test_reference_runs_as_an_op_only_while_tracing():
    """Eagerly backend='reference' is plain ops (differentiable twice); the op is what a trace sees."""
    i = _inputs("gru", torch.float64)
    out, _ = reference.gru_recurrence(i["gx"], i["h0"], i["w_hh"], i["b_hh"])
    (grad,) = torch.autograd.grad(out.sum(), i["w_hh"], create_graph=True)
    assert grad.requires_grad
    op_out, _ = _call("reference", "gru", i, None, False)
    assert type(op_out.grad_fn).__name__ == "GRURecurrenceBackward"
    assert torch.equal(op_out, out)


@pytest.mark.parametrize("backend", backend_params(("cpu", "triton")))
def test_double_backward_names_the_reference(backend):
    i = _inputs("lstm")
    out, _, _ = _call(backend, "lstm", i, None, False)
    (grad,) = torch.autograd.grad(out.sum(), i["w_hh"], create_graph=True)
    with pytest.raises(RuntimeError, match=f"double backward is not supported by the {backend} "
                                           f"backend; use backend='reference'"):
        torch.autograd.grad(grad.square().sum(), i["w_hh"])


@pytest.mark.parametrize("backend", backend_params(("cpu", "triton")))
def test_reserves_only_with_a_gradient(backend):
    """The reserve outputs (what the backward needs) are empty when no gradient is recorded; a
    call made that way refuses to be differentiated later with a reason."""
    i = _inputs("lstm")
    op = torch.ops.fastrnn.lstm.default
    with torch.no_grad():
        outputs = op(*_op_args("lstm", backend, i, None, False, store=False))
    assert [o.numel() for o in outputs[3:]] == [0, 0]
    outputs = op(*_op_args("lstm", backend, i, None, False, store=True))
    # triton: gate activations and cell states; cpu: one per-step record (the second is padding).
    assert [o.numel() > 0 for o in outputs[3:]] == {"cpu": [True, False], "triton": [True, True]}[backend]
    outputs = op(*_op_args("lstm", backend, i, None, False, store=False))
    with pytest.raises(RuntimeError, match="store=False"):
        outputs[0].sum().backward()


def test_unknown_backend_and_nonlinearity():
    i = _inputs("rnn")
    with pytest.raises(ValueError, match="fastrnn ops run the backends"):
        torch.ops.fastrnn.rnn.default(i["gx"], i["h0"], i["w_hh"], None, False, "tanh", "torch")
    with pytest.raises(ValueError, match="Unknown nonlinearity 'gelu'"):
        ops.recurrence("cpu", "rnn", i["gx"], i["h0"], None, i["w_hh"], nonlinearity="gelu")


def _torch_rnn_args(seed):
    """fastrnn::torch_rnn's arguments for a 2-layer LSTM with dropout 0.5 in training, lengths."""
    model = fastrnn.LSTM(3, 4, 2, dropout=0.5)
    flat = [p.detach().clone().requires_grad_() for p in model.parameters()]
    x = torch.randn(5, 3, 3, requires_grad=True)
    states = [torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)]
    return ("LSTM", x, states, flat, True, 2, False, 0.5, True, torch.tensor([5, 2, 4]), seed)


def test_torch_backend_op_repeats_dropout_masks_in_its_backward():
    """backend='torch' traced is fastrnn::torch_rnn: it passes opcheck, and its backward (a
    recompute) draws the forward's dropout masks from the call's seed: its gradients are those of
    the eager call under the same seed."""
    args = _torch_rnn_args(torch.tensor(1234))
    assert set(torch.library.opcheck(torch.ops.fastrnn.torch_rnn.default, args).values()) == {
        "SUCCESS"}
    output, finals = torch.ops.fastrnn.torch_rnn(*args)
    actual = _results([output, *finals], {"x": args[1], **dict(enumerate(args[3]))})
    mode, x, states, flat, *options, lengths, _ = args
    with torch.random.fork_rng():
        torch.manual_seed(1234)
        output, finals = native.run_flat(mode, x, states, flat, options[0], options[1], options[3],
                                         options[4], options[2], lengths)
    expected = _results([output, *finals], {"x": x, **dict(enumerate(flat))})
    assert_all_close(actual, expected)
