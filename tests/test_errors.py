"""Every error of the contract (tables 1.2 and 1.6, cells): same type and exact message as torch.nn.

Each bad input goes to torch.nn (installed 2.13) and to fastrnn; both must raise the same
exception type with the same text, which is also pinned here to the contract's wording.
"""

import re
import warnings

import pytest
import torch
from helpers import same_error
from torch import nn
from torch.nn.utils.rnn import PackedSequence

import fastrnn

IN, H = 5, 6


def _both(kind, *args, **kwargs):
    """Call the constructor of torch.nn.<kind> and fastrnn.<kind> (as zero-argument callables)."""
    return (lambda: getattr(nn, kind)(*args, **kwargs),
            lambda: getattr(fastrnn, kind)(*args, **kwargs))


DROPOUT_MSG = ("dropout should be a number in range [0, 1] representing the probability of an "
               "element being zeroed")

CONSTRUCTOR_ERRORS = [
    ("dropout-negative", (IN, H), {"dropout": -0.1}, ValueError, DROPOUT_MSG),
    ("dropout-above-1", (IN, H, 2), {"dropout": 1.5}, ValueError, DROPOUT_MSG),
    ("dropout-bool", (IN, H, 2), {"dropout": True}, ValueError, DROPOUT_MSG),
    ("dropout-str-number", (IN, H, 2), {"dropout": "0.5"}, ValueError, DROPOUT_MSG),
    ("dropout-str", (IN, H, 2), {"dropout": "a"}, ValueError,
     "could not convert string to float: 'a'"),
    ("bias-int", (IN, H), {"bias": 1}, TypeError, "bias should be of type bool, got: int"),
    ("batch_first-str", (IN, H), {"batch_first": "yes"}, TypeError,
     "batch_first should be of type bool, got: str"),
    ("input_size-float", (5.0, H), {}, TypeError, "input_size should be of type int, got: float"),
    ("input_size-0", (0, H), {}, ValueError, "input_size must be greater than zero"),
    ("hidden_size-float", (IN, 6.0), {}, TypeError,
     "hidden_size should be of type int, got: float"),
    ("hidden_size-0", (IN, 0), {}, ValueError, "hidden_size must be greater than zero"),
    ("hidden_size-negative", (IN, -2), {}, ValueError, "hidden_size must be greater than zero"),
    ("num_layers-0", (IN, H, 0), {}, ValueError, "num_layers must be greater than zero"),
    ("num_layers-float", (IN, H, 1.5), {}, TypeError,
     "'float' object cannot be interpreted as an integer"),
]

LSTM_CONSTRUCTOR_ERRORS = [
    ("proj_size-negative", (IN, H), {"proj_size": -1}, ValueError,
     "proj_size should be a positive integer or zero to disable projections"),
    ("proj_size-equal-hidden", (IN, H), {"proj_size": H}, ValueError,
     "proj_size has to be smaller than hidden_size"),
]


def _params(table, kinds):
    return [pytest.param(kind, *row[1:], id=f"{kind}-{row[0]}") for kind in kinds for row in table]


@pytest.mark.parametrize(("kind", "args", "kwargs", "error", "message"),
                         _params(CONSTRUCTOR_ERRORS, ["LSTM", "GRU", "RNN"])
                         + _params(LSTM_CONSTRUCTOR_ERRORS, ["LSTM"]))
def test_constructor_error(kind, args, kwargs, error, message):
    same_error(*_both(kind, *args, **kwargs), error, message)


@pytest.mark.parametrize("kind", ["GRU", "RNN"])
def test_proj_size_only_for_lstm(kind):
    same_error(*_both(kind, IN, H, proj_size=2), ValueError,
               "proj_size argument is only supported for LSTM, not RNN or GRU")


@pytest.mark.parametrize("args", [(IN, H), (IN, H, 1)], ids=["keyword", "positional"])
def test_rnn_unknown_nonlinearity(args):
    if len(args) == 3:
        calls = _both("RNN", *args, "sigmoid")
    else:
        calls = _both("RNN", *args, nonlinearity="sigmoid")
    same_error(*calls, ValueError, "Unknown nonlinearity 'sigmoid'. Select from 'tanh' or 'relu'.")


def test_rnnbase_unknown_mode():
    same_error(lambda: nn.RNNBase("FOO", IN, H), lambda: fastrnn.RNNBase("FOO", IN, H), ValueError,
               "Unrecognized RNN mode: FOO")


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_rnnbase_itself_has_no_forward(mode):
    x = _x(2, 1, IN)
    same_error(lambda: nn.RNNBase(mode, IN, H)(x), lambda: fastrnn.RNNBase(mode, IN, H)(x),
               NotImplementedError, 'Module [RNNBase] is missing the required "forward" function')


def test_gru_rejects_nonlinearity():
    same_error(*_both("GRU", IN, H, nonlinearity="relu"), TypeError,
               "RNNBase.__init__() got an unexpected keyword argument 'nonlinearity'")


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_dropout_with_one_layer_warns_and_constructs(kind):
    message = ("dropout option adds dropout after all but last recurrent layer, so non-zero "
               "dropout expects num_layers greater than 1, but got dropout=0.5 and num_layers=1")
    for make in _both(kind, IN, H, dropout=0.5):
        with pytest.warns(UserWarning) as record:
            module = make()
        assert [str(w.message) for w in record] == [message]
        assert module.dropout == 0.5


def test_constructor_accepts_what_torch_accepts():
    """Positional order, nonlinearity as 4th positional, an int bidirectional, float dropout."""
    for ours, theirs in [
        (fastrnn.RNN(2, 3, 1, "relu"), nn.RNN(2, 3, 1, "relu")),
        (fastrnn.LSTM(3, 5, 1, False, True), nn.LSTM(3, 5, 1, False, True)),
        (fastrnn.GRU(3, 5, 2, True, False, 1), nn.GRU(3, 5, 2, True, False, 1)),
        (fastrnn.LSTM(3, 5, bidirectional=1), nn.LSTM(3, 5, bidirectional=1)),
    ]:
        for attr in ("mode", "num_layers", "bias", "batch_first", "dropout", "bidirectional"):
            assert getattr(ours, attr) == getattr(theirs, attr), attr
        assert type(ours.dropout) is float
        assert repr(ours) == repr(theirs)
    assert fastrnn.RNN(2, 3, 1, "relu").nonlinearity == "relu"
    assert "bidirectional=1" in repr(fastrnn.LSTM(3, 5, bidirectional=1))


# Calls that do not bind: torch.nn's LSTM/GRU/RNN take (*args, **kwargs) and hand them to
# RNNBase.__init__, so Python's binding error names RNNBase there; ours have real signatures and
# raise the same. The cells have real signatures in both.
BINDING_ERRORS = [
    ("LSTM-unknown-keyword", "LSTM", (IN, H), {"foo": 1},
     "RNNBase.__init__() got an unexpected keyword argument 'foo'"),
    ("LSTM-nonlinearity", "LSTM", (IN, H), {"nonlinearity": "tanh"},
     "RNNBase.__init__() got an unexpected keyword argument 'nonlinearity'"),
    ("GRU-no-sizes", "GRU", (), {},
     "RNNBase.__init__() missing 2 required positional arguments: 'input_size' and 'hidden_size'"),
    ("GRU-twice", "GRU", (IN, H, 1), {"num_layers": 2},
     "RNNBase.__init__() got multiple values for argument 'num_layers'"),
    ("LSTM-13-positionals", "LSTM", (IN, H, 1, True, False, 0.0, False, 0, None, None, 3), {},
     "RNNBase.__init__() takes from 4 to 12 positional arguments but 13 were given"),
    ("RNN-nonlinearity-twice", "RNN", (IN, H, 1, "tanh"), {"nonlinearity": "relu"},
     "RNNBase.__init__() got an unexpected keyword argument 'nonlinearity'"),
    ("LSTMCell-6-positionals", "LSTMCell", (IN, H, True, None, None, "cpu"), {},
     "LSTMCell.__init__() takes from 3 to 6 positional arguments but 7 were given"),
]


@pytest.mark.parametrize(("kind", "args", "kwargs", "message"),
                         [pytest.param(*row[1:], id=row[0]) for row in BINDING_ERRORS])
def test_constructor_call_that_does_not_bind(kind, args, kwargs, message):
    same_error(*_both(kind, *args, **kwargs), TypeError, message)


def test_rnn_checks_nonlinearity_before_binding():
    """torch.nn.RNN takes and checks nonlinearity before RNNBase binds the rest."""
    same_error(*_both("RNN", IN, H, nonlinearity="gelu", foo=1), ValueError,
               "Unknown nonlinearity 'gelu'. Select from 'tanh' or 'relu'.")


def test_cell_constructor_does_no_validation():
    for kind in ("LSTMCell", "GRUCell", "RNNCell"):
        assert getattr(fastrnn, kind)(3, 0).weight_hh.shape[1] == 0
    assert fastrnn.RNNCell(3, 5, nonlinearity="x").nonlinearity == "x"


# -- forward-time errors of the sequence modules ---------------------------------------------

def _x(*shape, dtype=torch.float32):
    return torch.randn(shape, dtype=dtype)


def _hx(kind, h, c=None):
    return (h, c if c is not None else h.clone()) if kind == "LSTM" else h


def _input_dim_message(kind, n):
    tail = " tensor instead" if kind == "RNN" else " instead"
    return f"{kind}: Expected input to be 2D or 3D, got {n}D{tail}"


# (id, kinds, build the call args from kind, error, message)
FORWARD_ERRORS = [
    ("input-4D", "LSTM GRU RNN", lambda k: (_x(2, 3, 4, IN),), ValueError,
     lambda k: _input_dim_message(k, 4)),
    ("input-1D", "LSTM GRU RNN", lambda k: (_x(IN),), ValueError,
     lambda k: _input_dim_message(k, 1)),
    ("batched-hx-2D", "GRU RNN", lambda k: (_x(4, 3, IN), _x(3, H)), RuntimeError,
     lambda k: "For batched 3-D input, hx should also be 3-D but got 2-D tensor"),
    ("unbatched-hx-3D", "GRU RNN", lambda k: (_x(4, IN), _x(1, 1, H)), RuntimeError,
     lambda k: "For unbatched 2-D input, hx should also be 2-D but got 3-D tensor"),
    ("batched-hx-cx-2D-3D", "LSTM", lambda k: (_x(4, 3, IN), (_x(3, H), _x(1, 3, H))),
     RuntimeError,
     lambda k: "For batched 3-D input, hx and cx should also be 3-D but got (2-D, 3-D) tensors"),
    ("unbatched-hx-cx-2D-3D", "LSTM", lambda k: (_x(4, IN), (_x(1, H), _x(1, 1, H))),
     RuntimeError,
     lambda k: "For unbatched 2-D input, hx and cx should also be 2-D but got (2-D, 3-D) tensors"),
    ("lstm-bare-tensor-hx", "LSTM", lambda k: (_x(4, 3, IN), _x(2, 3, H)), RuntimeError,
     lambda k: "For batched 3-D input, hx and cx should also be 3-D but got (2-D, 2-D) tensors"),
    ("tuple-hx", "GRU RNN", lambda k: (_x(4, 3, IN), (_x(1, 3, H),)), AttributeError,
     lambda k: "'tuple' object has no attribute 'dim'"),
    ("dtype", "LSTM GRU RNN", lambda k: (_x(4, 3, IN, dtype=torch.float64),), ValueError,
     lambda k: "RNN input dtype (torch.float64) does not match weight dtype (torch.float32). "
               "Convert input: input.to(torch.float32), or convert model: "
               "model.to(torch.float64)"),
    ("feature-size", "LSTM GRU RNN", lambda k: (_x(4, 3, IN + 1),), RuntimeError,
     lambda k: f"input.size(-1) must be equal to input_size. Expected {IN}, got {IN + 1}"),
    ("feature-size-unbatched", "LSTM GRU RNN", lambda k: (_x(4, IN - 1),), RuntimeError,
     lambda k: f"input.size(-1) must be equal to input_size. Expected {IN}, got {IN - 1}"),
    ("hx-batch", "GRU RNN", lambda k: (_x(4, 3, IN), _x(1, 2, H)), RuntimeError,
     lambda k: f"Expected hidden size (1, 3, {H}), got [1, 2, {H}]"),
    ("hx-layers", "GRU RNN", lambda k: (_x(4, 3, IN), _x(2, 3, H)), RuntimeError,
     lambda k: f"Expected hidden size (1, 3, {H}), got [2, 3, {H}]"),
    ("h-width", "LSTM", lambda k: (_x(4, 3, IN), (_x(1, 3, H - 1), _x(1, 3, H))), RuntimeError,
     lambda k: f"Expected hidden[0] size (1, 3, {H}), got [1, 3, {H - 1}]"),
    ("c-batch", "LSTM", lambda k: (_x(4, 3, IN), (_x(1, 3, H), _x(1, 2, H))), RuntimeError,
     lambda k: f"Expected hidden[1] size (1, 3, {H}), got [1, 2, {H}]"),
    ("unbatched-hx-width", "LSTM GRU RNN", lambda k: (_x(4, IN), _hx(k, _x(1, H + 1))),
     RuntimeError,
     lambda k: (f"Expected hidden[0] size (1, 1, {H}), got [1, 1, {H + 1}]" if k == "LSTM"
                else f"Expected hidden size (1, 1, {H}), got [1, 1, {H + 1}]")),
    ("seq-len-0", "LSTM GRU RNN", lambda k: (_x(0, 3, IN),), RuntimeError,
     lambda k: "Expected sequence length to be larger than 0 in RNN"),
    ("seq-len-0-unbatched", "LSTM GRU RNN", lambda k: (_x(0, IN),), RuntimeError,
     lambda k: "Expected sequence length to be larger than 0 in RNN"),
    ("packed-data-3D", "GRU RNN",
     lambda k: (PackedSequence(_x(6, 2, IN), torch.tensor([3, 2, 1])),), RuntimeError,
     lambda k: "input must have 2 dimensions, got 3"),
]


@pytest.mark.parametrize(
    ("kind", "make_args", "error", "message"),
    [pytest.param(kind, row[2], row[3], row[4](kind), id=f"{kind}-{row[0]}")
     for row in FORWARD_ERRORS for kind in row[1].split()],
)
def test_forward_error(kind, make_args, error, message):
    ours, theirs = getattr(fastrnn, kind)(IN, H), getattr(nn, kind)(IN, H)
    args = make_args(kind)
    same_error(lambda: theirs(*args), lambda: ours(*args), error, message)


def _raises_exactly(call, message):
    with pytest.raises(RuntimeError, match=f"^{re.escape(message)}$"):
        call()


def test_lstm_packed_errors_are_clear():
    """torch.nn's LSTM skips its checks on packed input (a wrong hx can segfault it, a wrong
    feature size can run); fastrnn runs them and says what is wrong."""
    lstm = fastrnn.LSTM(IN, H)
    _raises_exactly(lambda: lstm(PackedSequence(_x(6, 2, IN), torch.tensor([3, 2, 1]))),
                    "input must have 2 dimensions, got 3")
    packed = torch.nn.utils.rnn.pack_sequence([_x(3, IN), _x(2, IN)])
    _raises_exactly(lambda: lstm(packed, (_x(1, 3, H), _x(1, 3, H))),
                    f"Expected hidden[0] size (1, 2, {H}), got [1, 3, {H}]")
    _raises_exactly(lambda: lstm(packed, (_x(1, 2, H), _x(2, 2, H))),
                    f"Expected hidden[1] size (1, 2, {H}), got [2, 2, {H}]")
    wide = torch.nn.utils.rnn.pack_sequence([_x(3, IN + 1), _x(2, IN + 1)])
    _raises_exactly(lambda: lstm(wide),
                    f"input.size(-1) must be equal to input_size. Expected {IN}, got {IN + 1}")


@pytest.mark.parametrize("kind", ["GRU", "RNN"])
def test_packed_hx_is_checked_as_the_user_passed_it(kind):
    """torch.nn permutes hx before checking it: a larger batch is silently cut to the packed
    batch, and a 2-D hx is reported with a permuted shape. fastrnn checks the hx it was given."""
    module = getattr(fastrnn, kind)(IN, H)
    packed = torch.nn.utils.rnn.pack_sequence([_x(2, IN), _x(3, IN)], enforce_sorted=False)
    _raises_exactly(lambda: module(packed, _x(1, 3, H)),
                    f"Expected hidden size (1, 2, {H}), got [1, 3, {H}]")
    _raises_exactly(lambda: module(packed, _x(2, H)),
                    f"Expected hidden size (1, 2, {H}), got [2, {H}]")


# -- cells --------------------------------------------------------------------------------------

def _cell_hx(kind, h, c=None):
    return (h, c if c is not None else h.clone()) if kind == "LSTMCell" else h


CELL_ERRORS = [
    ("input-3D", lambda k: (_x(1, 3, IN),), ValueError,
     lambda k: f"{k}: Expected input to be 1D or 2D, got 3D instead"),
    ("input-0D", lambda k: (_x(),), ValueError,
     lambda k: f"{k}: Expected input to be 1D or 2D, got 0D instead"),
    ("hx-3D", lambda k: (_x(3, IN), (_x(3, H), _x(1, 3, H)) if k == "LSTMCell" else _x(1, 3, H)),
     ValueError,
     lambda k: ("LSTMCell: Expected hx[1] to be 1D or 2D, got 3D instead" if k == "LSTMCell"
                else f"{k}: Expected hidden to be 1D or 2D, got 3D instead")),
    ("feature-size", lambda k: (_x(3, IN - 1),), RuntimeError,
     lambda k: f"input has inconsistent input_size: got {IN - 1} expected {IN}"),
    ("feature-size-unbatched", lambda k: (_x(IN + 1),), RuntimeError,
     lambda k: f"input has inconsistent input_size: got {IN + 1} expected {IN}"),
    ("h-batch", lambda k: (_x(3, IN), _cell_hx(k, _x(2, H), _x(3, H))), RuntimeError,
     lambda k: "Input batch size 3 doesn't match hidden0 batch size 2"),
    ("h-width", lambda k: (_x(3, IN), _cell_hx(k, _x(3, H + 2), _x(3, H))), RuntimeError,
     lambda k: f"hidden0 has inconsistent hidden_size: got {H + 2}, expected {H}"),
    ("unbatched-input-2D-hx", lambda k: (_x(IN), _cell_hx(k, _x(1, H))), RuntimeError,
     lambda k: f"hidden0 has inconsistent hidden_size: got 1, expected {H}"),
    ("dtype", lambda k: (_x(3, IN, dtype=torch.float64),), RuntimeError,
     lambda k: "mat1 and mat2 must have the same dtype, but got Double and Float"),
]


@pytest.mark.parametrize(
    ("kind", "make_args", "error", "message"),
    [pytest.param(kind, row[1], row[2], row[3](kind), id=f"{kind}-{row[0]}")
     for row in CELL_ERRORS for kind in ("LSTMCell", "GRUCell", "RNNCell")],
)
def test_cell_error(kind, make_args, error, message):
    ours, theirs = getattr(fastrnn, kind)(IN, H), getattr(nn, kind)(IN, H)
    args = make_args(kind)
    same_error(lambda: theirs(*args), lambda: ours(*args), error, message)


def test_lstm_cell_c_batch_mismatch():
    ours, theirs = fastrnn.LSTMCell(IN, H), nn.LSTMCell(IN, H)
    args = (_x(3, IN), (_x(3, H), _x(2, H)))
    same_error(lambda: theirs(*args), lambda: ours(*args), RuntimeError,
               "Input batch size 3 doesn't match hidden1 batch size 2")


@pytest.mark.parametrize("features", [IN, IN + 1], ids=["good-input", "bad-input-size"])
def test_rnn_cell_unknown_nonlinearity_raises_at_forward(features):
    """Raised at forward, after the dimension checks and before the size checks, as torch."""
    ours, theirs = fastrnn.RNNCell(IN, H, nonlinearity="x"), nn.RNNCell(IN, H, nonlinearity="x")
    same_error(lambda: theirs(_x(3, features)), lambda: ours(_x(3, features)), RuntimeError,
               "Unknown nonlinearity: x")
    same_error(lambda: theirs(_x(1, 3, IN)), lambda: ours(_x(1, 3, IN)), ValueError,
               "RNNCell: Expected input to be 1D or 2D, got 3D instead")


@pytest.mark.parametrize(("kind", "hidden", "hx"), [
    ("GRUCell", H, lambda: _x(H, H)),
    ("LSTMCell", 1, lambda: (_x(1, 1), _x(1))),
], ids=["GRUCell-square-hx", "LSTMCell-H1"])
def test_unbatched_cell_input_with_2d_hx_is_refused(kind, hidden, hx):
    """torch lets a 2-D hx through for a 1-D input when the sizes line up (and torch.nn's
    LSTMCell(3, 1) then segfaults on torch 2.13); fastrnn refuses it with a clear message."""
    with pytest.raises(RuntimeError, match="^hidden0 must be 1-D for 1-D input, got 2-D$"):
        getattr(fastrnn, kind)(IN, hidden)(_x(IN), hx())


# -- bad input never crashes or returns garbage --------------------------------------------------

@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_empty_batch_runs_forward_and_backward(kind, backend):
    module = getattr(fastrnn, kind)(IN, H, num_layers=2, bidirectional=True, backend=backend)
    x = torch.randn(4, 0, IN, requires_grad=True)
    output, hidden = module(x)
    h_n = hidden[0] if kind == "LSTM" else hidden
    assert output.shape == (4, 0, 2 * H) and h_n.shape == (4, 0, H)
    (output.sum() + h_n.sum()).backward()
    assert x.grad.shape == x.shape
    assert all(p.grad is not None and torch.count_nonzero(p.grad) == 0 for p in module.parameters())


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_nan_input_propagates(kind, backend):
    module = getattr(fastrnn, kind)(IN, H, backend=backend)
    x = torch.randn(4, 2, IN)
    x[1, 0, 2] = float("nan")
    output, _ = module(x)
    assert not output[0].isnan().any()
    assert output[1:, 0].isnan().all()
    assert not output[:, 1].isnan().any()


def _lstm_weights():
    return [(torch.randn(4 * H, IN), torch.randn(4 * H, H), None, None, None)]


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH"])
def test_functional_padding_garbage_is_ignored(mode, backend):
    """NaN/Inf past a sequence's length (torch.empty padding) changes nothing, gradients included
    (a zero gradient times NaN in the skipped steps used to poison every weight gradient)."""
    gates = {"LSTM": 4, "GRU": 3}.get(mode, 1)
    weights = [tuple(torch.randn(shape, requires_grad=True) for shape in
                     ((gates * H, IN), (gates * H, H), (gates * H,), (gates * H,))) + (None,)]
    clean = torch.randn(5, 2, IN)
    lengths = torch.tensor([3, 5])
    results = []
    for fill in (0.0, float("nan"), float("inf")):
        x = clean.clone()
        x[3:, 0] = fill
        x.requires_grad_()
        output, finals = fastrnn.functional.recurrent_stack(
            mode, x, None, weights, bidirectional=False, lengths=lengths, backend=backend)
        (output.sum() + sum(f.sum() for f in finals)).backward()
        grads = [x.grad] + [w.grad.clone() for w in weights[0][:4]]
        for w in weights[0][:4]:
            w.grad = None
        results.append([output.detach(), *[f.detach() for f in finals], *grads])
    for garbage in results[1:]:
        for a, e in zip(garbage, results[0], strict=True):
            assert torch.equal(a, e)


@pytest.mark.parametrize(("lengths", "message"), [
    ([4, 5], "lengths must lie in [1, 4] (the padded sequence length), got min 4 and max 5"),
    ([0, 2], "lengths must lie in [1, 4] (the padded sequence length), got min 0 and max 2"),
    ([3], "lengths must have shape (2,), got (1,)"),
], ids=["too-long", "zero", "wrong-count"])
def test_functional_lengths_out_of_range(lengths, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        fastrnn.functional.lstm(torch.randn(4, 2, IN), None, _lstm_weights(), lengths=lengths)


@pytest.mark.parametrize("function", ["lstm", "gru", "rnn"])
def test_functional_weights_are_required(function):
    """Without weights the functional API says what it needs (it used to be an IndexError)."""
    call = getattr(fastrnn.functional, function)
    with pytest.raises(TypeError, match=r"^weights are required: a sequence of L\*D tuples "
                                        r"\(w_ih, w_hh, b_ih, b_hh, w_hr\)"):
        call(torch.randn(4, 2, IN))
    with pytest.raises(ValueError, match="got an empty sequence$"):
        call(torch.randn(4, 2, IN), None, ())


@pytest.mark.parametrize(("weights", "kwargs", "error", "message"), [
    (lambda: [(torch.randn(4 * H, IN), torch.randn(4 * H, H))], {}, ValueError,
     "weights[0] must be a tuple (w_ih, w_hh, b_ih, b_hh, w_hr) with None for an absent bias or "
     "projection, got 2 items"),
    (lambda: [torch.randn(4 * H, IN)], {}, TypeError,
     "weights[0] must be a tuple (w_ih, w_hh, b_ih, b_hh, w_hr) with None for an absent bias or "
     "projection, got a Tensor"),
    (lambda: [(None, torch.randn(4 * H, H), None, None, None)], {}, TypeError,
     "weights[0]: w_ih and w_hh must be tensors"),
    (_lstm_weights, {"bidirectional": True}, ValueError,
     "a bidirectional stack needs 2 tuples per layer (forward, reverse), got 1"),
], ids=["short-tuple", "bare-tensor", "no-w_ih", "odd-bidirectional"])
def test_functional_weights_layout_errors(weights, kwargs, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        fastrnn.functional.lstm(torch.randn(4, 2, IN), None, weights(), **kwargs)


def test_unknown_backend_name():
    expected = ("Unknown fastrnn backend 'cuda_fast'. Select from 'auto', 'reference', 'cpu', "
                "'triton', 'torch', 'cudnn'.")
    for make in (lambda: fastrnn.LSTM(IN, H, backend="cuda_fast"),
                 lambda: fastrnn.GRUCell(IN, H, backend="cuda_fast"),
                 lambda: fastrnn.functional.lstm(torch.randn(4, 2, IN), None, _lstm_weights(),
                                                 backend="cuda_fast")):
        with pytest.raises(ValueError) as info:
            make()
        assert str(info.value) == expected


def test_no_warning_on_valid_construction():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fastrnn.LSTM(IN, H, 2, dropout=0.3)
        fastrnn.GRUCell(IN, H)
