"""The Triton kernels compiled for a real GPU (marker `gpu`; skipped without CUDA).

What the interpreter cannot check: the tl.dot >= 16 rule, register and shared-memory limits, the
compiled bf16/fp16 tensor-core products, large sizes (several hidden and K tiles, H not a power of
two), long sequences, and parity with torch.nn on cuDNN. TF32 is off for parity.
"""

import pytest
import torch

pytest.importorskip("triton")

from test_kernels_helpers import Case, check_against_reference  # noqa: E402

from fastrnn import functional, kernels  # noqa: E402
from fastrnn.testing import assert_all_close  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
HIDDEN = (96, 256, 500, 1024)
BATCH = (1, 17, 128)
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


@pytest.fixture(autouse=True)
def _parity_settings(monkeypatch):
    monkeypatch.setenv("FASTRNN_POISON", "1")
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _lengths(batch, steps):
    """Unsorted lengths in [1, T] with the full length present."""
    values = [max(1, (steps * (7 * b + 3)) % (steps + 1)) for b in range(batch)]
    values[batch // 2] = steps
    return tuple(values)


@pytest.mark.parametrize("form", ("auto", "alternating"))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("batch", BATCH)
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("cell", ("lstm", "gru", "rnn"))
def test_sizes_against_reference(cell, hidden, batch, dtype, form):
    case = Case(cell, 16, batch, hidden, lengths=_lengths(batch, 16), reverse=batch == 17)
    with kernels.use_form(None if form == "auto" else form):
        check_against_reference(kernels, case, dtype, device="cuda")


# The largest size each dtype runs persistent by default (common.PERSISTENT_WEIGHT_BYTES).
PERSISTENT_LIMITS = [
    ("lstm", 64, torch.float32), ("lstm", 128, torch.float16), ("lstm", 128, torch.bfloat16),
    ("gru", 64, torch.float32), ("gru", 128, torch.bfloat16),
    ("rnn", 64, torch.float32), ("rnn", 256, torch.bfloat16),
]


@pytest.mark.parametrize("cell,hidden,dtype", PERSISTENT_LIMITS, ids=str)
@pytest.mark.parametrize("batch", BATCH)
def test_persistent_at_its_limit(cell, hidden, dtype, batch):
    assert kernels.select_form(GATES[cell], hidden, hidden, 0, dtype,
                               torch.cuda.get_device_capability(), batch) == "persistent"
    case = Case(cell, 32, batch, hidden - 3, lengths=_lengths(batch, 32))
    with kernels.use_form("persistent"):
        check_against_reference(kernels, case, dtype, device="cuda")


@pytest.mark.parametrize("form", ("persistent", "alternating"))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_lstm_projection(dtype, form):
    case = Case("lstm", 24, 17, 60, proj=40, lengths=_lengths(17, 24), reverse=True)
    with kernels.use_form(form):
        check_against_reference(kernels, case, dtype, device="cuda")


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("cell,hidden", [("lstm", 96), ("gru", 256), ("rnn", 500)])
def test_long_sequence(cell, hidden, dtype):
    case = Case(cell, 2048, 17, hidden, lengths=_lengths(17, 2048))
    check_against_reference(kernels, case, dtype, device="cuda")


def _module_weights(module):
    names = ("weight_ih_l{}{}", "weight_hh_l{}{}", "bias_ih_l{}{}", "bias_hh_l{}{}",
             "weight_hr_l{}{}")
    weights = []
    for layer in range(module.num_layers):
        for suffix in ("", "_reverse")[: 2 if module.bidirectional else 1]:
            weights.append(tuple(getattr(module, n.format(layer, suffix), None) for n in names))
    return weights


@pytest.mark.parametrize("mode,hidden,proj", [("LSTM", 256, 0), ("LSTM", 200, 96),
                                              ("GRU", 500, 0), ("RNN_TANH", 96, 0),
                                              ("RNN_RELU", 1024, 0)])
def test_matches_cudnn_fp32(mode, hidden, proj):
    """functional.recurrent_stack(backend='triton') against torch.nn on cuDNN, same weights,
    2 layers, bidirectional, fp32 with TF32 off."""
    torch.manual_seed(0)
    kwargs = {"num_layers": 2, "bidirectional": True}
    if mode == "LSTM":
        module = torch.nn.LSTM(64, hidden, proj_size=proj, **kwargs)
    elif mode == "GRU":
        module = torch.nn.GRU(64, hidden, **kwargs)
    else:
        module = torch.nn.RNN(64, hidden, nonlinearity=mode[4:].lower(), **kwargs)
    module = module.cuda()
    x = torch.randn(50, 17, 64, device="cuda", requires_grad=True)
    expected_out, expected_h = module(x)
    expected_h = list(expected_h) if mode == "LSTM" else [expected_h]
    upstream = [torch.randn_like(t) for t in [expected_out, *expected_h]]
    params = list(module.parameters())
    expected_grads = torch.autograd.grad([expected_out, *expected_h], [x, *params], upstream)
    out, finals = functional.recurrent_stack(mode, x, None, _module_weights(module),
                                             bidirectional=True, backend="triton")
    grads = torch.autograd.grad([out, *finals], [x, *params], upstream)
    actual = {"out": out, **{f"h{i}": f for i, f in enumerate(finals)},
              **{f"g{i}": g for i, g in enumerate(grads)}}
    expected = {"out": expected_out, **{f"h{i}": f for i, f in enumerate(expected_h)},
                **{f"g{i}": g for i, g in enumerate(expected_grads)}}
    assert_all_close(actual, expected, dtype=torch.float32)


@pytest.mark.parametrize("form", ("persistent", "alternating"))
def test_tf32_switch(form):
    """With TF32 enabled explicitly the fp32 products run in TF32 (10-bit mantissa): held to the
    bf16 tolerance (7-bit), the nearest looser row of the table."""
    case = Case("lstm", 8, 17, 48)
    torch.backends.cuda.matmul.allow_tf32 = True
    with kernels.use_form(form):
        check_against_reference(kernels, case, torch.float32, device="cuda",
                                tolerance=torch.bfloat16)
