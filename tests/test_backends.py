"""The backend policy: precedence, aliases, auto on CPU, and refusals that say why."""

import logging

import pytest
import torch
from helpers import backends_the_call_ran

import fastrnn
from fastrnn import backends
from fastrnn.backends import (
    BackendUnavailableError,
    RecurrenceSpec,
    requested_backend,
    resolve_backend,
    use_backend,
)

CPU_SPEC = RecurrenceSpec(mode="LSTM", device=torch.device("cpu"), dtype=torch.float32,
                          hidden_size=8)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(backends.ENV_VAR, raising=False)


def test_default_is_auto_and_auto_on_cpu_runs_the_cpu_backend():
    assert requested_backend(None) == "auto"
    assert resolve_backend(None, CPU_SPEC) == ("cpu", "auto: cpu tensor")
    assert resolve_backend("auto", CPU_SPEC)[0] == "cpu"
    assert resolve_backend("reference", CPU_SPEC) == ("reference", "requested")


def test_precedence_argument_over_context_over_env_over_auto(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "torch")
    assert requested_backend(None) == "torch"
    with use_backend("reference"):
        assert requested_backend(None) == "reference"
        assert requested_backend("auto") == "reference"
        assert requested_backend("torch") == "torch"
        with use_backend("cudnn"):
            assert requested_backend(None) == "torch"
        assert requested_backend(None) == "reference"
    assert requested_backend(None) == "torch"
    monkeypatch.setenv(backends.ENV_VAR, "  ")
    assert requested_backend(None) == "auto"


def test_use_backend_restores_on_error():
    with pytest.raises(KeyError), use_backend("torch"):
        raise KeyError("boom")
    assert requested_backend(None) == "auto"


@pytest.mark.parametrize("name", ["cudnn", "CUDNN", "Torch"])
def test_cudnn_is_an_alias_of_torch(name):
    assert backends.canonical_name(name) == "torch"
    assert resolve_backend(name, CPU_SPEC) == ("torch", "requested")


def test_unknown_names_are_refused_everywhere(monkeypatch):
    message = ("Unknown fastrnn backend 'fast'. Select from 'auto', 'reference', 'cpu', 'triton', "
               "'torch', 'cudnn'.")
    with pytest.raises(ValueError) as info:
        use_backend("fast").__enter__()
    assert str(info.value) == message
    monkeypatch.setenv(backends.ENV_VAR, "fast")
    with pytest.raises(ValueError) as info:
        fastrnn.GRU(3, 4)(torch.randn(2, 1, 3))
    assert str(info.value) == message
    with pytest.raises(TypeError, match="^backend should be a str, got: int$"):
        fastrnn.LSTM(3, 4, backend=1)


def test_explicit_triton_without_interpreter_on_cpu_says_why(monkeypatch):
    # Import the kernels first: an import under the patch would bind the patched function into
    # fastrnn.kernels.launch for every later test.
    pytest.importorskip("fastrnn.kernels")
    monkeypatch.setattr(backends, "triton_interpreter_enabled", lambda: False)
    with pytest.raises(BackendUnavailableError) as info:
        resolve_backend("triton", CPU_SPEC)
    assert str(info.value) == (
        "fastrnn backend 'triton' cannot run this call: the triton backend runs on CUDA tensors "
        "(or on CPU with TRITON_INTERPRET=1 exported before Python starts); got a cpu tensor")
    with pytest.raises(BackendUnavailableError, match="got a cpu tensor"):
        fastrnn.LSTM(3, 4, backend="triton")(torch.randn(2, 1, 3))


def test_interpreter_flag_reads_the_environment(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert not backends.triton_interpreter_enabled()
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert backends.triton_interpreter_enabled()


def test_auto_on_cpu_never_picks_triton_even_with_the_interpreter(monkeypatch):
    monkeypatch.setattr(backends, "triton_interpreter_enabled", lambda: True)
    assert resolve_backend(None, CPU_SPEC)[0] == "cpu"


def test_explicit_cpu_backend_refuses_other_devices():
    """Other than CPU tensors it takes meta tensors only (shapes through the op's fake kernel)."""
    spec = RecurrenceSpec(mode="GRU", device=torch.device("cuda"), dtype=torch.float32,
                          hidden_size=8)
    assert resolve_backend("cpu", CPU_SPEC) == ("cpu", "requested")
    meta = RecurrenceSpec(mode="GRU", device=torch.device("meta"), dtype=torch.float32,
                          hidden_size=8)
    assert resolve_backend("cpu", meta) == ("cpu", "requested")
    with pytest.raises(BackendUnavailableError) as info:
        resolve_backend("cpu", spec)
    assert str(info.value) == ("fastrnn backend 'cpu' cannot run this call: the cpu backend runs "
                               "on CPU tensors, got a cuda tensor; use backend='auto' or "
                               "'reference'")


def test_a_differentiable_backward_on_cpu_runs_the_reference():
    """The cpu backend's backward is not differentiable: auto picks the reference for a call that
    declares it needs one, and an explicit request says why it cannot."""
    spec = RecurrenceSpec(mode="LSTM", device=torch.device("cpu"), dtype=torch.float64,
                          hidden_size=8, double_backward=True)
    reason = "double backward is not supported by the cpu backend; use backend='reference'"
    assert resolve_backend(None, spec) == ("reference", reason)
    with pytest.raises(BackendUnavailableError, match=f"^fastrnn backend 'cpu' cannot run this "
                                                       f"call: {reason}$"):
        resolve_backend("cpu", spec)


def test_auto_choice_is_logged_once(caplog, monkeypatch):
    monkeypatch.setattr(backends, "_logged_auto_choices", set())
    with caplog.at_level(logging.INFO, logger="fastrnn"):
        resolve_backend(None, CPU_SPEC)
        resolve_backend(None, CPU_SPEC)
    assert [r.getMessage() for r in caplog.records] == [
        "fastrnn auto backend: LSTM cpu torch.float32 -> cpu (auto: cpu tensor)"]


def test_module_argument_beats_context_and_env(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "reference")
    lstm = fastrnn.LSTM(3, 4, backend="torch")
    x = torch.randn(2, 1, 3)
    with use_backend("reference"):
        assert backends_the_call_ran(monkeypatch, lambda: lstm(x)) == ["torch"]
    auto = fastrnn.LSTM(3, 4)
    with use_backend("torch"):
        assert backends_the_call_ran(monkeypatch, lambda: auto(x)) == ["torch"]
    assert backends_the_call_ran(monkeypatch, lambda: auto(x)) == ["reference"]
    monkeypatch.setenv(backends.ENV_VAR, "cudnn")
    assert backends_the_call_ran(monkeypatch, lambda: auto(x)) == ["torch"]


def test_cells_follow_the_policy(monkeypatch):
    cell = fastrnn.GRUCell(3, 4)
    with use_backend("torch"):
        assert backends_the_call_ran(monkeypatch, lambda: cell(torch.randn(2, 3))) == ["torch"]


@pytest.mark.triton
def test_triton_double_backward_names_the_reference_backend():
    """The kernels support one backward; differentiating its result (double backward) says which
    backend supports it instead of returning a graph that silently stops. A create_graph backward
    alone works (torch.func.grad always asks for one)."""
    gru = fastrnn.GRU(3, 4, backend="triton")
    x = torch.randn(2, 1, 3, requires_grad=True)
    output, _ = gru(x)
    (grad,) = torch.autograd.grad(output.sum(), x, create_graph=True)
    assert grad.shape == x.shape
    with pytest.raises(RuntimeError, match="^double backward is not supported by the triton "
                                           "backend; use backend='reference'$"):
        torch.autograd.grad(grad.sum(), x)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"])
def test_modules_take_backend_none_as_auto(kind, monkeypatch):
    """None means what it means in the functional API: auto, deferring to use_backend and the
    environment; the repr leaves it out like 'auto'."""
    module = getattr(fastrnn, kind)(3, 4, backend=None)
    assert module.backend is None
    assert "backend" not in repr(module)
    x = torch.randn(2, 3) if kind.endswith("Cell") else torch.randn(2, 1, 3)
    assert backends_the_call_ran(monkeypatch, lambda: module(x)) == ["cpu"]
    with use_backend("reference"):
        assert backends_the_call_ran(monkeypatch, lambda: module(x)) == ["reference"]
    monkeypatch.setenv(backends.ENV_VAR, "torch")
    assert backends_the_call_ran(monkeypatch, lambda: module(x)) == ["torch"]


def test_convert_passes_backend_none():
    model = fastrnn.convert(torch.nn.Sequential(torch.nn.GRU(3, 4)), backend=None)
    assert type(model[0]) is fastrnn.GRU and model[0].backend is None
