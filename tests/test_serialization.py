"""Checkpoints move both ways between torch.nn and fastrnn; modules pickle, deepcopy and save."""

import copy
import io
import pickle

import pytest
import torch
from helpers import build

import fastrnn
from fastrnn.testing import assert_close

CONFIGS = {
    "LSTM-L2-bidir-proj": ("LSTM", {"num_layers": 2, "bidirectional": True, "proj_size": 3}),
    "LSTM-nobias": ("LSTM", {"bias": False}),
    "GRU-L3": ("GRU", {"num_layers": 3}),
    "RNN-relu-bidir": ("RNN", {"nonlinearity": "relu", "bidirectional": True}),
    "LSTMCell": ("LSTMCell", {}),
    "GRUCell-nobias": ("GRUCell", {"bias": False}),
    "RNNCell": ("RNNCell", {}),
}
PARAMS = [pytest.param(kind, kwargs, id=key) for key, (kind, kwargs) in CONFIGS.items()]


def _input(kind):
    return torch.randn(3, 4, dtype=torch.float64) if kind.endswith("Cell") else torch.randn(
        5, 3, 4, dtype=torch.float64)


def _outputs(module, x):
    result = module(x)
    flat = []
    stack = [result]
    while stack:
        item = stack.pop()
        if torch.is_tensor(item):
            flat.append(item)
        else:
            stack.extend(item)
    return flat


def _assert_same_outputs(a, b, x):
    for got, expected in zip(_outputs(a, x), _outputs(b, x), strict=True):
        assert_close(got, expected)


@pytest.mark.parametrize(("kind", "kwargs"), PARAMS)
def test_state_dict_round_trips_both_ways(kind, kwargs):
    theirs = build(kind, (4, 6), **kwargs)
    ours = build(kind, (4, 6), backend="reference", **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = _input(kind)
    ours.load_state_dict(theirs.state_dict())
    _assert_same_outputs(ours, theirs, x)
    other = build(kind, (4, 6), backend="reference", **kwargs)
    theirs.load_state_dict(other.state_dict())
    _assert_same_outputs(other, theirs, x)
    buffer = io.BytesIO()
    torch.save(other.state_dict(), buffer)
    buffer.seek(0)
    ours.load_state_dict(torch.load(buffer, weights_only=True))
    _assert_same_outputs(ours, theirs, x)


def _copies(module):
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    return {
        "pickle": pickle.loads(pickle.dumps(module)),
        "deepcopy": copy.deepcopy(module),
        "torch.save": torch.load(buffer, weights_only=False),
    }


@pytest.mark.parametrize(("kind", "kwargs"), PARAMS)
def test_pickle_deepcopy_and_torch_save_of_the_whole_module(kind, kwargs):
    module = build(kind, (4, 6), backend="torch", **kwargs)
    x = _input(kind)
    for how, clone in _copies(module).items():
        assert type(clone) is type(module), how
        assert clone.backend == "torch", how
        assert repr(clone) == repr(module), how
        assert all(p is not q for p, q in zip(clone.parameters(), module.parameters()))
        _assert_same_outputs(clone, module, x)


def test_pickle_keeps_dropout_and_training_mode():
    module = fastrnn.GRU(4, 6, 2, dropout=0.25).eval()
    clone = pickle.loads(pickle.dumps(module))
    assert clone.dropout == 0.25 and not clone.training


def test_old_pickles_without_proj_size_or_backend_load():
    """Pickles from before proj_size (torch <= 1.7 layout) and before the backend option."""
    lstm = fastrnn.LSTM(4, 6, 2)
    state = dict(lstm.__getstate__())
    del state["proj_size"]
    del state["backend"]
    restored = fastrnn.LSTM.__new__(fastrnn.LSTM)
    restored.__setstate__(state)
    assert restored.proj_size == 0 and restored.backend == "auto"
    x = _input("LSTM")
    _assert_same_outputs(restored.double(), lstm.double(), x)
    cell_state = dict(fastrnn.GRUCell(4, 6).__dict__)
    del cell_state["backend"]
    cell = fastrnn.GRUCell.__new__(fastrnn.GRUCell)
    cell.__setstate__(cell_state)
    assert cell.backend == "auto"
    assert cell(torch.randn(2, 4)).shape == (2, 6)
