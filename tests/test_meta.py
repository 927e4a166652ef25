"""The meta device and FakeTensorMode: a forward returns outputs of the right shapes, running nothing.

Every module class on every backend (cpu and triton through the ops' fake kernels, the reference
and torch through their plain ops), with dense, unbatched and packed input; the shapes are those of
the same call on real CPU tensors.
"""

import pytest
import torch
from op_helpers import ALL_BACKENDS
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import fastrnn

KINDS = ("LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell")
# Cells take no PackedSequence.
CASES = [(kind, style) for kind in KINDS for style in ("dense", "unbatched", "packed")
         if not (kind.endswith("Cell") and style == "packed")]


def _tensors(result):
    """The output (a PackedSequence's data) and state tensors of a module's or cell's result."""
    if isinstance(result, PackedSequence):
        return [result.data]
    if isinstance(result, torch.Tensor):
        return [result]
    return [t for part in result for t in _tensors(part)]


def _call(kind, backend, device, style):
    torch.manual_seed(0)
    kwargs = {} if kind.endswith("Cell") else {"num_layers": 2, "bidirectional": True}
    if kind == "LSTM":
        kwargs["proj_size"] = 2
    model = getattr(fastrnn, kind)(3, 4, device=device, backend=backend, **kwargs)
    if kind.endswith("Cell"):
        return model(torch.randn(2, 3, device=device) if style != "unbatched"
                     else torch.randn(3, device=device))
    if style == "packed":
        x = torch.randn(5, 3, 3, device=device)
        return model(pack_padded_sequence(x, torch.tensor([5, 2, 4]), enforce_sorted=False))
    return model(torch.randn(5, 3, 3, device=device) if style == "dense"
                 else torch.randn(5, 3, device=device))


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize(("kind", "style"), CASES)
@pytest.mark.parametrize("backend", ("auto",) + ALL_BACKENDS)
def test_meta_forward_has_the_shapes_of_a_real_one(backend, kind, style):
    tensors = _tensors(_call(kind, backend, "meta", style))
    assert {t.device.type for t in tensors} == {"meta"}
    real_backend = "reference" if backend == "triton" else backend  # the interpreter is not needed
    real = _tensors(_call(kind, real_backend, "cpu", style))
    assert [t.shape for t in tensors] == [t.shape for t in real]


@pytest.mark.parametrize("backend", ["auto", "cpu", "reference", "torch",
                                     pytest.param("triton", marks=pytest.mark.triton)])
def test_fake_tensor_mode(backend):
    """Under FakeTensorMode a forward and backward of a GRU with packed input trace shapes only
    (batch_sizes is fake too: its values are never read)."""
    packed = pack_padded_sequence(torch.randn(5, 3, 3), torch.tensor([5, 2, 4]),
                                  enforce_sorted=False)
    mode = FakeTensorMode()
    data = mode.from_tensor(packed.data).requires_grad_()
    fake = PackedSequence(data, *(mode.from_tensor(t) for t in packed[1:]))
    with mode:
        model = fastrnn.GRU(3, 4, 2, backend=backend)
        output, h_n = model(fake)
        (output.data.sum() + h_n.sum()).backward()
        assert output.data.shape == (11, 4) and h_n.shape == (2, 3, 4)
        assert data.grad.shape == data.shape
