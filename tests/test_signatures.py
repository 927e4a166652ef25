"""The public API's signatures and type hints: what inspect.signature, help() and type checkers see.

The constructors show torch.nn's parameters (its documented overloads for LSTM, GRU and RNN, whose
runtime signature is (*args, **kwargs)) plus the keyword-only `backend`; every public function and
method is annotated, and the package ships its py.typed marker.
"""

import inspect
import re
import sys
import typing
from pathlib import Path

import pytest
from torch import nn

import fastrnn
from fastrnn import backends, explanation, functional

SEQUENCES = ("LSTM", "GRU", "RNN")
CELLS = ("LSTMCell", "GRUCell", "RNNCell")
BACKEND = inspect.Parameter("backend", inspect.Parameter.KEYWORD_ONLY, default="auto")


def _torch_parameters(kind):
    """torch.nn.<kind>'s constructor parameters without self: its overload with named parameters
    for the sequence modules, its real signature for the cells."""
    init = getattr(nn, kind).__init__
    if kind in SEQUENCES:
        if sys.version_info < (3, 11):
            pytest.skip("typing.get_overloads (reading torch.nn's overloads) needs Python 3.11")
        (init,) = [o for o in typing.get_overloads(init)
                   if "input_size" in inspect.signature(o).parameters]
    return list(inspect.signature(init).parameters.values())[1:]


def _shape(parameters):
    return [(p.name, p.kind, p.default) for p in parameters]


@pytest.mark.parametrize("kind", SEQUENCES + CELLS)
def test_constructor_signature_is_torch_nn_plus_backend(kind):
    ours = list(inspect.signature(getattr(fastrnn, kind)).parameters.values())
    assert _shape(ours) == _shape(_torch_parameters(kind) + [BACKEND])


@pytest.mark.parametrize(("kind", "args"), [
    ("LSTM", (5, 6, 1, True, False, 0.0, False, 0, "meta")),
    ("GRU", (5, 6, 1, True, False, 0.0, False, "meta")),
    ("RNN", (5, 6, 1, "tanh", True, False, 0.0, False, "meta")),
])
def test_positional_device_binds_as_documented(kind, args):
    """device is positional where torch.nn's documented signature puts it (torch.nn's GRU and RNN
    hand that slot to RNNBase's proj_size at run time: docs/torch-rnn-contract.md 1.1)."""
    module = getattr(fastrnn, kind)(*args)
    assert module.weight_ih_l0.device.type == "meta" and module.proj_size == 0


@pytest.mark.parametrize("kind", SEQUENCES + CELLS)
def test_forward_is_documented_as_ours(kind):
    """help(module.forward) shows our argument shapes, not nn.Module's note for implementers."""
    doc = inspect.getdoc(getattr(fastrnn, kind).forward)
    assert "hx" in doc and "Should be overridden" not in doc


def _public_callables():
    yield from (getattr(functional, name) for name in (
        "lstm", "gru", "rnn", "lstm_cell", "gru_cell", "rnn_cell", "recurrent_stack",
        "check_weights", "recurrence_spec"))
    yield from (getattr(backends, name) for name in (
        "canonical_name", "check_backend_argument", "use_backend", "backend_request",
        "requested_backend", "triton_interpreter_enabled", "resolve_backend"))
    yield fastrnn.convert  # the function (it shadows its module's name in the package)
    yield explanation.explain
    yield explanation.Explanation.__str__
    for kind in SEQUENCES + CELLS:
        module = getattr(fastrnn, kind)
        yield inspect.unwrap(module.__init__)
        yield module.forward
        yield module.reset_parameters
        yield module.extra_repr
    # torch.nn's overridable checks and plumbing, public there too.
    yield from (getattr(fastrnn.RNNBase, name) for name in (
        "check_input", "get_expected_hidden_size", "check_hidden_size", "check_forward_args",
        "permute_hidden", "flatten_parameters"))
    yield fastrnn.RNNBase.all_weights.fget
    yield from (getattr(fastrnn.LSTM, name) for name in (
        "get_expected_cell_size", "check_forward_args", "permute_hidden"))


@pytest.mark.parametrize("function", list(_public_callables()),
                         ids=lambda f: f.__qualname__)
def test_public_callables_are_annotated(function):
    signature = inspect.signature(function)
    missing = [name for name, p in signature.parameters.items()
               if name != "self" and p.annotation is inspect.Parameter.empty]
    assert not missing, f"{function.__qualname__}: {missing} without a type hint"
    assert signature.return_annotation is not inspect.Signature.empty, function.__qualname__


def test_hints_resolve():
    """The hints are real objects (no typos hiding in strings): typing can evaluate all of them."""
    for function in _public_callables():
        typing.get_type_hints(function)


def test_package_ships_its_py_typed_marker():
    root = Path(fastrnn.__file__).parent
    assert (root / "py.typed").is_file()
    pyproject = (root.parent / "pyproject.toml").read_text()
    section = re.search(r"^\[tool\.setuptools\.package-data\]\n(.*?)(^\[|\Z)", pyproject,
                        re.MULTILINE | re.DOTALL)
    assert section and re.search(r'^fastrnn = \[.*"py\.typed".*\]', section.group(1), re.MULTILINE)
