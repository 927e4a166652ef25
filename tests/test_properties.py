"""Property tests: random tiny configurations of every option against torch.nn in float64.

Hypothesis runs derandomized (tests/conftest.py profile), so CI sees the same examples each run.
"""

import pytest
import torch
from helpers import Case, forward_backward, make_data, twins
from hypothesis import given, settings
from hypothesis import strategies as st

from fastrnn.testing import assert_all_close

MODES = {"LSTM": ("LSTM", {}), "GRU": ("GRU", {}), "RNN_TANH": ("RNN", {}),
         "RNN_RELU": ("RNN", {"nonlinearity": "relu"})}
STYLES = ["batched", "unbatched", "packed", "packed_sorted", "pack_sequence",
          "pack_sequence_sorted"]


@st.composite
def module_cases(draw):
    mode = draw(st.sampled_from(list(MODES)))
    kind, kwargs = MODES[mode]
    hidden = draw(st.integers(1, 5))
    kwargs = {**kwargs, "num_layers": draw(st.integers(1, 3)),
              "bidirectional": draw(st.booleans()), "bias": draw(st.booleans()),
              "batch_first": draw(st.booleans())}
    if kind == "LSTM":
        kwargs["proj_size"] = draw(st.integers(0, hidden - 1))
    style = draw(st.sampled_from(STYLES))
    steps, batch = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    lengths = None
    if style not in ("batched", "unbatched"):
        lengths = draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch))
    hx = draw(st.sampled_from(["none", "tuple", "list"] if kind == "LSTM" else ["none", "tuple"]))
    return Case(name=mode, kind=kind, kwargs=kwargs, T=steps, B=batch, input_size=draw(st.integers(1, 4)),
                H=hidden, style=style, hx=hx, given_lengths=lengths)


@st.composite
def cell_cases(draw):
    kind = draw(st.sampled_from(["LSTMCell", "GRUCell", "RNNCell"]))
    kwargs = {"bias": draw(st.booleans())}
    if kind == "RNNCell":
        kwargs["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    return Case(name=kind, kind=kind, kwargs=kwargs, B=draw(st.integers(1, 3)),
                input_size=draw(st.integers(1, 4)), H=draw(st.integers(0, 4)),
                style=draw(st.sampled_from(["batched", "unbatched"])),
                hx=draw(st.sampled_from(["none", "tuple"])))


def _check(case, seed, backend="reference", dtype=torch.float64):
    oracle, fast = twins(case, dtype, backend)
    data = make_data(case, seed)
    expected, _ = forward_backward(oracle, case, data, torch.float64)
    actual, _ = forward_backward(fast, case, data, dtype)
    assert_all_close(actual, expected, dtype)


@settings(max_examples=240)
@given(case=module_cases(), seed=st.integers(0, 2**16))
def test_random_module_matches_torch_nn(case, seed):
    _check(case, seed)


@settings(max_examples=80)
@given(case=cell_cases(), seed=st.integers(0, 2**16))
def test_random_cell_matches_torch_nn(case, seed):
    _check(case, seed)


@pytest.mark.triton
@settings(max_examples=40)
@given(case=module_cases(), seed=st.integers(0, 2**16))
def test_random_module_on_triton_matches_torch_nn(case, seed):
    """The Triton kernels (float32, their default form) on random configurations."""
    _check(case, seed, "triton", torch.float32)
