"""fastrnn.explain: which implementation runs a call, and why, without running it.

Every answer is checked against the call itself: the backend against the one the call resolves
(a spy on functional.resolve_backend), the Triton kernel form against the forms the run records
(kernels.record_forms, through the interpreter).
"""

import contextlib

import pytest
import torch
from helpers import backends_the_call_ran
from torch.nn.utils.rnn import PackedSequence, pack_sequence

import fastrnn
from fastrnn import backends
from fastrnn.backends import BackendUnavailableError, use_backend

IN, H = 5, 6
SEQUENCE_KINDS = ("LSTM", "GRU", "RNN")
CELL_KINDS = ("LSTMCell", "GRUCell", "RNNCell")
MODES = {"LSTM": "LSTM", "GRU": "GRU", "RNN": "RNN_TANH", "LSTMCell": "LSTM", "GRUCell": "GRU",
         "RNNCell": "RNN_TANH"}


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(backends.ENV_VAR, raising=False)


def _inputs(kind):
    """(style, input) pairs the module's forward takes."""
    if kind in CELL_KINDS:
        return [("batched", torch.randn(3, IN)), ("unbatched", torch.randn(IN))]
    packed = pack_sequence([torch.randn(4, IN), torch.randn(2, IN), torch.randn(3, IN)],
                           enforce_sorted=False)
    return [("batched", torch.randn(4, 3, IN)), ("unbatched", torch.randn(4, IN)),
            ("packed", packed)]


@pytest.mark.parametrize("backend", [None, "auto", "reference", "cpu", "torch"])
@pytest.mark.parametrize("kind", SEQUENCE_KINDS + CELL_KINDS)
def test_every_module_and_input_style_agrees_with_the_call(kind, backend, monkeypatch):
    module = getattr(fastrnn, kind)(IN, H, backend=backend)
    for style, x in _inputs(kind):
        explanation = fastrnn.explain(module, x)
        assert backends_the_call_ran(monkeypatch, lambda x=x: module(x)) == [explanation.backend]
        assert explanation.target == f"fastrnn.{kind}"
        assert explanation.mode == MODES[kind]
        assert explanation.backend == ("cpu" if backend in (None, "auto") else backend)
        assert explanation.reason == ("auto: cpu tensor" if backend in (None, "auto")
                                      else "requested")
        assert explanation.batch == {"batched": 3, "unbatched": 1, "packed": 3}[style]
        assert explanation.variable_lengths == (style == "packed")
        assert (explanation.hidden_size, explanation.dtype) == (H, torch.float32)
        assert explanation.form is None and explanation.tiles is None


def test_layers_directions_and_projection():
    lstm = fastrnn.LSTM(IN, H, num_layers=3, bidirectional=True, proj_size=2, batch_first=True)
    explanation = fastrnn.explain(lstm, torch.randn(7, 4, IN))
    assert (explanation.layers, explanation.directions, explanation.proj_size) == (3, 2, 2)
    assert explanation.batch == 7  # batch_first
    assert "B=7 H=6 P=2, 3 layers x 2 directions" in str(explanation)


def test_packed_empty_batch_and_dtype():
    gru = fastrnn.GRU(IN, H, dtype=torch.float64)
    packed = pack_sequence([torch.randn(2, IN, dtype=torch.float64)])
    explanation = fastrnn.explain(gru, packed)
    assert (explanation.batch, explanation.dtype, explanation.variable_lengths) == (
        1, torch.float64, True)


@pytest.mark.parametrize("source", ["argument", "use_backend", "FASTRNN_BACKEND", "default"])
def test_where_the_request_came_from(source, monkeypatch):
    module = fastrnn.GRU(IN, H, backend="torch" if source == "argument" else "auto")
    x = torch.randn(4, 3, IN)
    if source == "FASTRNN_BACKEND":
        monkeypatch.setenv(backends.ENV_VAR, "reference")
    with use_backend("reference") if source == "use_backend" else contextlib.nullcontext():
        explanation = fastrnn.explain(module, x)
        ran = backends_the_call_ran(monkeypatch, lambda: module(x))
    expected = {"argument": "torch", "use_backend": "reference", "FASTRNN_BACKEND": "reference",
                "default": "auto"}[source]
    assert (explanation.requested, explanation.source) == (expected, source)
    assert ran == [explanation.backend]
    assert f"asked for: {expected!r}" in str(explanation)


def test_an_explicit_backend_that_cannot_run_raises_what_the_call_raises(monkeypatch):
    # Imported first: the kernels bind triton_interpreter_enabled at import, and must not bind
    # the stand-in below.
    pytest.importorskip("fastrnn.kernels")
    monkeypatch.setattr(backends, "triton_interpreter_enabled", lambda: False)
    lstm, x = fastrnn.LSTM(IN, H, backend="triton"), torch.randn(4, 3, IN)
    with pytest.raises(BackendUnavailableError) as from_explain:
        fastrnn.explain(lstm, x)
    with pytest.raises(BackendUnavailableError) as from_call:
        lstm(x)
    assert str(from_explain.value) == str(from_call.value)


def test_autocast_dtype_is_the_one_decided_on():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        explanation = fastrnn.explain(fastrnn.LSTM(IN, H), torch.randn(4, 3, IN))
    assert explanation.dtype == torch.bfloat16


def _lstm_weights(layers=1, directions=1):
    return [(torch.randn(4 * H, IN if k < directions else directions * H), torch.randn(4 * H, H),
             None, None, None) for k in range(layers * directions)]


def test_functional_api_arguments(monkeypatch):
    x = torch.randn(4, 3, IN)
    weights = _lstm_weights(layers=2, directions=2)
    explanation = fastrnn.explain(fastrnn.functional.lstm, x, None, weights, bidirectional=True,
                                  lengths=[4, 2, 3], backend="torch")
    assert (explanation.target, explanation.backend, explanation.source) == (
        "fastrnn.functional.lstm", "torch", "argument")
    assert (explanation.layers, explanation.directions, explanation.variable_lengths) == (2, 2, True)
    rnn_weights = [(torch.randn(H, IN), torch.randn(H, H), None, None, None)]
    explanation = fastrnn.explain(fastrnn.functional.rnn, x, None, rnn_weights, nonlinearity="relu")
    assert (explanation.mode, explanation.backend) == ("RNN_RELU", "cpu")
    call = lambda: fastrnn.functional.rnn(x, None, rnn_weights, nonlinearity="relu")  # noqa: E731
    assert backends_the_call_ran(monkeypatch, call) == ["cpu"]
    cell = fastrnn.explain(fastrnn.functional.gru_cell, torch.randn(3, IN), torch.zeros(3, H),
                           torch.randn(3 * H, IN), torch.randn(3 * H, H), backend="reference")
    assert (cell.target, cell.mode, cell.batch, cell.backend) == (
        "fastrnn.functional.gru_cell", "GRU", 3, "reference")


def test_functional_errors_are_the_calls():
    x = torch.randn(4, 3, IN)
    with pytest.raises(TypeError, match="^weights are required"):
        fastrnn.explain(fastrnn.functional.lstm, x)
    with pytest.raises(ValueError, match="^Unknown nonlinearity 'gelu'"):
        fastrnn.explain(fastrnn.functional.rnn, x, None, _lstm_weights(), nonlinearity="gelu")


def test_what_the_call_would_refuse_is_refused():
    with pytest.raises(TypeError, match="RNNBase has no forward of its own"):
        fastrnn.explain(fastrnn.RNNBase("LSTM", IN, H), torch.randn(4, 3, IN))
    cell, x = fastrnn.RNNCell(IN, H, nonlinearity="gelu"), torch.randn(3, IN)
    with pytest.raises(RuntimeError, match="^Unknown nonlinearity: gelu$"):
        fastrnn.explain(cell, x)
    with pytest.raises(RuntimeError, match="^Unknown nonlinearity: gelu$"):
        cell(x)


def test_torch_nn_modules_are_refused_with_the_way_forward():
    with pytest.raises(TypeError, match=r"got LSTM; convert torch.nn layers with fastrnn\.convert"):
        fastrnn.explain(torch.nn.LSTM(IN, H), torch.randn(4, 3, IN))


# -- the Triton kernel form (through the interpreter) --------------------------------------------


def _recorded(module, x):
    from fastrnn import kernels

    with kernels.record_forms() as records:
        output = module(x)[0]
        (output.data if isinstance(output, PackedSequence) else output).sum().backward()
    return records


@pytest.mark.triton
@pytest.mark.parametrize("kind", SEQUENCE_KINDS + CELL_KINDS)
@pytest.mark.parametrize("form", [None, "stepwise", "cooperative"])
def test_triton_form_is_the_one_the_run_records(kind, form):
    from fastrnn import kernels

    stack = {"num_layers": 2} if kind in SEQUENCE_KINDS else {}
    module = getattr(fastrnn, kind)(IN, H, backend="triton", **stack)
    # Two steps: the interpreter runs each launch in Python (stepwise launches once per step).
    x = torch.randn(2, 3, IN) if stack else torch.randn(3, IN)
    with kernels.use_form(form):
        explanation = fastrnn.explain(module, x)
        records = _recorded(module, x)
    assert explanation.form == (form or "persistent")
    recurrences = 2 if stack else 1
    assert len(records) == 2 * recurrences  # a forward and a backward per layer-direction
    for record in records:
        assert (record["form"], record["reason"], record["plan"]) == (
            explanation.form, explanation.form_reason, explanation.tiles)
    every = "each of the 2 recurrences" if stack else "the recurrence"
    assert f"kernel form of {every}: {explanation.form}: " in str(explanation)


@pytest.mark.triton
def test_triton_form_on_packed_input_and_after_a_failed_form(monkeypatch):
    """The planner's memory of a form that failed on this device is part of the answer."""
    from fastrnn.kernels import forms

    monkeypatch.setattr(forms, "_failed", {})
    gru = fastrnn.GRU(IN, H, backend="triton")
    packed = _inputs("GRU")[2][1]
    shape = forms.Shape("gru", H, 0, 3, torch.float32)
    forms.remember_failure(torch.device("cpu"), shape, "persistent", RuntimeError("out of resources"))
    explanation = fastrnn.explain(gru, packed)
    records = _recorded(gru, packed)
    assert explanation.form == "stepwise"
    assert "not persistent: it failed here (RuntimeError: out of resources)" in explanation.form_reason
    assert {(r["form"], r["reason"]) for r in records} == {(explanation.form, explanation.form_reason)}


@pytest.mark.triton
def test_triton_planner_reason_without_a_run():
    """A size the interpreter would take long to run: the answer is the public choose_form's."""
    from fastrnn import kernels

    lstm = fastrnn.LSTM(IN, 128, backend="triton")
    explanation = fastrnn.explain(lstm, torch.randn(2, 40, IN))
    assert (explanation.form, explanation.form_reason) == kernels.choose_form(
        "lstm", 128, 0, torch.float32, torch.device("cpu"), 40)
    assert explanation.form == "stepwise"  # IEEE fp32 spills past K = 64 in one program


@pytest.mark.triton
def test_triton_nothing_to_launch():
    explanation = fastrnn.explain(fastrnn.GRUCell(IN, 0, backend="triton"), torch.randn(3, IN))
    assert explanation.form is None
    assert explanation.form_reason.startswith("nothing to launch")
