"""NaN and infinity behave as in torch.nn: every cell, every backend, every Triton kernel form.

A NaN or an infinity goes into the input, the initial state or a weight, with and without
variable lengths (the reverse direction is the same code with time reversed, and the fuzzer runs
it); outputs, final states and every gradient must have NaN and infinity where
torch.nn has them and agree elsewhere (fuzz_runner's comparison). The fuzzer meets these cases at
random; here each one is pinned.
"""

import math

import pytest
from fuzz_runner import run_call
from helpers import BACKENDS, kernel_form

KINDS = {"LSTM": {}, "GRU": {}, "RNN-tanh": {"nonlinearity": "tanh"},
         "RNN-relu": {"nonlinearity": "relu"}}
# name -> (mutation, argument, input style): a position (taken modulo the tensor's size) and a
# value. Packed input runs the variable-length path, where a finished sequence keeps its state.
CASES = {
    "nan-input": ("input_special", (7, math.nan), "batched"),
    "neg-inf-input": ("input_special", (10, -math.inf), "packed"),
    "nan-h0": ("hx_special", (3, math.nan, 0), "packed"),
    "inf-h0": ("hx_special", (6, math.inf, 0), "batched"),
    "inf-h0-packed": ("hx_special", (6, math.inf, 0), "packed"),
    "inf-c0": ("hx_special", (2, math.inf, 1), "packed"),
    "inf-weight": ("weight_special", (1, 5, math.inf), "batched"),
}
FORMS = ("persistent", "cooperative", "stepwise")


def _call(kind, backend, case):
    mutation, argument, style = CASES[case]
    name = kind.split("-")[0]
    return {"kind": name, "backend": backend, "dtype": "float32",
            "ctor": {"input_size": 3, "hidden_size": 5, "num_layers": 1, "bias": True,
                     "batch_first": False, "bidirectional": False, **KINDS[kind]},
            "T": 4, "B": 3, "style": style, "lengths": [4, 2, 1], "enforce_sorted": False,
            "hx": "given", "input_grad": True, "hx_grad": True, "seed": 5,
            "mutations": [(mutation, argument)]}


def _params():
    params = []
    for backend in BACKENDS:
        for form in FORMS if backend == "triton" else (None,):
            marks = [pytest.mark.triton] if backend == "triton" else []
            label = backend if form is None else f"{backend}-{form}"
            params.append(pytest.param(backend, form, id=label, marks=marks))
    return params


# Only the LSTM has a cell state to put an infinity in.
KIND_CASES = [(kind, case) for kind in sorted(KINDS) for case in sorted(CASES)
              if case != "inf-c0" or kind == "LSTM"]


@pytest.mark.parametrize("kind, case", KIND_CASES)
@pytest.mark.parametrize("backend, form", _params())
def test_nonfinite_values_match_torch_nn(backend, form, kind, case):
    with kernel_form(form):
        verdict = run_call(_call(kind, backend, case))
    assert verdict.category == "same", verdict.detail


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("backend, form", _params())
def test_inf_in_a_finished_state_stays_out_of_weight_gradients(backend, form, kind):
    """A sequence that ends early with an Inf in its state: the padded steps after it compute
    from that state (and discard the result), and 0 * NaN there reached dW_hh on triton's GRU
    (found by the fuzzer: seed 334)."""
    call = {"kind": kind, "backend": backend, "dtype": "float32",
            "ctor": {"input_size": 2, "hidden_size": 3, "num_layers": 1, "bias": False,
                     "batch_first": True, "bidirectional": False},
            "T": 2, "B": 3, "style": "packed", "lengths": [2, 1, 1], "enforce_sorted": True,
            "hx": "given", "input_grad": True, "hx_grad": True, "seed": 334,
            "mutations": [("hx_special", (1706, math.inf, 0))]}
    with kernel_form(form):
        verdict = run_call(call)
    assert verdict.category == "same", verdict.detail
