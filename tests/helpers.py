"""Twin modules (torch.nn and fastrnn with the same weights), one forward+backward, results as dicts.

A run feeds the same float64 data (cast to the run's dtype) to a module, puts fixed random upstream
gradients on the output and on every final state, and collects outputs, final states and the
gradients of input, h0, c0 and every parameter into one dict, ready for
fastrnn.testing.assert_all_close.
"""

import contextlib
import re
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pack_sequence

import fastrnn

# The one list of backends the parity suite runs every test function on (conftest's `backend`).
BACKENDS = ("reference", "cpu", "torch", "triton")
PACKED_STYLES = ("packed", "packed_sorted", "pack_sequence", "pack_sequence_sorted")
STYLES = ("batched", "unbatched") + PACKED_STYLES
CELL_KINDS = ("LSTMCell", "GRUCell", "RNNCell")


@dataclass
class Case:
    """One named configuration of a module and its input.

    kind: 'LSTM' | 'GRU' | 'RNN' | 'LSTMCell' | 'GRUCell' | 'RNNCell'.  kwargs: constructor
    keyword arguments beyond input_size/hidden_size.  style: one of STYLES ('batched'/'unbatched'
    for cells).  hx: 'none' (default zeros), 'tuple' (the state tensor, or (h0, c0) for LSTM),
    'list' ([h0, c0], LSTM only).  training: module mode for the run.  given_lengths: the
    valid lengths of a packed batch (default: a fixed unsorted pattern).
    """

    name: str
    kind: str
    kwargs: dict = field(default_factory=dict)
    T: int = 4
    B: int = 3
    input_size: int = 5
    H: int = 6
    style: str = "batched"
    hx: str = "none"
    training: bool = True
    given_lengths: list | None = None

    def __post_init__(self):
        assert self.style in STYLES, self.style
        assert self.hx in ("none", "tuple", "list"), self.hx

    @property
    def is_cell(self):
        return self.kind in CELL_KINDS

    @property
    def is_lstm(self):
        return self.kind in ("LSTM", "LSTMCell")

    @property
    def directions(self):
        return 2 if self.kwargs.get("bidirectional") else 1

    @property
    def layers(self):
        return self.kwargs.get("num_layers", 1)

    @property
    def h_out(self):
        return self.kwargs.get("proj_size", 0) or self.H

    def lengths(self):
        """Valid lengths of the batch (given_lengths, or unsorted with the maximum T), sorted
        descending for the *_sorted styles."""
        if self.given_lengths is not None:
            lengths = list(self.given_lengths)
        else:
            lengths = [max(1, self.T - (3 * b) % self.T) for b in range(self.B)]
            if self.B > 1:
                lengths[1] = self.T
        if self.style.endswith("sorted"):
            lengths.sort(reverse=True)
        return lengths

    def param(self, *marks):
        return pytest.param(self, id=self.name, marks=marks)


# The kernel forms the parity suite forces on its subsets besides the default (persistent at the
# suite's sizes); under the interpreter cooperative runs one program per batch tile.
OTHER_FORMS = ("cooperative", "stepwise")
# The dtypes the Triton kernels run: they refuse float64, the oracle's precision (pinned against
# fastrnn.kernels.refusal in test_parity), so no parametrisation pairs triton with float64.
TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
DTYPE_IDS = {torch.float64: "f64", torch.float32: "f32", torch.float16: "f16",
             torch.bfloat16: "bf16"}


def with_backends(cases, forms_subset, dtypes):
    """(backend, form, case, dtype) params: every case on every backend in every dtype, except
    the dtypes the kernels refuse on triton (never generated, rather than skipped at run time);
    on triton, the kernels' default form (persistent at these sizes) for every case plus each of
    OTHER_FORMS for the cases named in `forms_subset` (names without their mode prefix:
    'LSTM-base' -> 'base').
    """
    params = []
    for backend in BACKENDS:
        for case in cases:
            forms = [None]
            if backend == "triton" and case.name.split("-", 1)[1] in forms_subset:
                forms.extend(OTHER_FORMS)
            for form in forms:
                marks = [pytest.mark.triton] if backend == "triton" else []
                label = backend if form is None else f"{backend}-{form}"
                params.extend(
                    pytest.param(backend, form, case, dtype,
                                 id=f"{label}-{case.name}-{DTYPE_IDS[dtype]}", marks=marks)
                    for dtype in dtypes if backend != "triton" or dtype in TRITON_DTYPES)
    return params


def kernel_form(form):
    """Force the Triton kernels' form (one of fastrnn.kernels.FORMS) for a block; None: no-op."""
    if form is None:
        return contextlib.nullcontext()
    from fastrnn import kernels

    return kernels.use_form(form)


def build(kind, case_or_args, dtype=torch.float64, backend=None, **kwargs):
    """A torch.nn module (backend None) or a fastrnn module (backend a name) of `kind`."""
    if isinstance(case_or_args, Case):
        args, kwargs = (case_or_args.input_size, case_or_args.H), {**case_or_args.kwargs, **kwargs}
    else:
        args = case_or_args
    if backend is None:
        return getattr(nn, kind)(*args, dtype=dtype, **kwargs)
    return getattr(fastrnn, kind)(*args, dtype=dtype, backend=backend, **kwargs)


def twins(case, dtype=torch.float64, backend="reference"):
    """(torch.nn module in float64, fastrnn module in `dtype` with the same weights).

    The weights depend on the case only (fixed seed), so twins of one case on two backends match.
    """
    torch.manual_seed(0)
    oracle = build(case.kind, case)
    fast = build(case.kind, case, dtype=dtype, backend=backend)
    fast.load_state_dict(oracle.state_dict())
    oracle.train(case.training)
    fast.train(case.training)
    return oracle, fast


@dataclass
class Data:
    """float64 inputs of a case: x (layout as the module expects), lengths, h0, c0 (or None)."""

    x: torch.Tensor
    lengths: list | None
    h0: torch.Tensor | None
    c0: torch.Tensor | None


def make_data(case, seed=1):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(shape, generator=g, dtype=torch.float64)

    batched = case.style != "unbatched"
    if case.is_cell:
        x = randn(case.B, case.input_size) if batched else randn(case.input_size)
        state_shape = (case.B, case.H) if batched else (case.H,)
        h_shape = c_shape = state_shape
    else:
        layout = (case.B, case.T) if case.kwargs.get("batch_first") else (case.T, case.B)
        x = randn(*layout, case.input_size) if batched else randn(case.T, case.input_size)
        states = case.layers * case.directions
        batch = (case.B,) if batched else ()
        h_shape, c_shape = (states, *batch, case.h_out), (states, *batch, case.H)
    if case.hx == "none":
        h0 = c0 = None
    else:
        h0 = randn(*h_shape)
        c0 = randn(*c_shape) if case.is_lstm else None
    lengths = case.lengths() if case.style in PACKED_STYLES else None
    return Data(x, lengths, h0, c0)


def _model_input(case, x, lengths):
    if case.style in ("batched", "unbatched"):
        return x
    batch_first = bool(case.kwargs.get("batch_first"))
    sorted_ = case.style.endswith("sorted")
    if case.style.startswith("pack_sequence"):
        columns = x.unbind(0) if batch_first else x.unbind(1)
        return pack_sequence([col[:n] for col, n in zip(columns, lengths)], enforce_sorted=sorted_)
    return pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first,
                                enforce_sorted=sorted_)


def _leaf(tensor, dtype):
    return None if tensor is None else tensor.detach().to(dtype, copy=True).requires_grad_()


def forward_backward(module, case, data, dtype):
    """One forward and backward of `module` on `data` cast to `dtype`.

    Returns (results, packed): results maps 'output', 'h_n', 'c_n' and 'grad.<input|h0|c0|param>'
    to tensors (None for an absent state or parameter gradient); packed is the output
    PackedSequence (or None).
    """
    x, h0, c0 = _leaf(data.x, dtype), _leaf(data.h0, dtype), _leaf(data.c0, dtype)
    model_input = _model_input(case, x, data.lengths)
    if case.hx == "none":
        hx = None
    elif case.is_lstm:
        hx = [h0, c0] if case.hx == "list" else (h0, c0)
    else:
        hx = h0
    result = module(model_input, hx)
    if case.kind == "LSTM":
        output, (h_n, c_n) = result
    elif case.kind == "LSTMCell":
        output, (h_n, c_n) = None, result
    else:
        output, h_n, c_n = (None, result, None) if case.is_cell else (*result, None)
    packed = output if isinstance(output, PackedSequence) else None
    results = {"output": packed.data if packed is not None else output, "h_n": h_n, "c_n": c_n}
    results = {k: v for k, v in results.items() if v is not None}
    generator = torch.Generator().manual_seed(2)
    loss = sum(
        (t * torch.randn(t.shape, generator=generator, dtype=torch.float64).to(t.dtype)).sum()
        for t in results.values()
    )
    loss.backward()
    results.update({"grad.input": x.grad, "grad.h0": None if h0 is None else h0.grad,
                    "grad.c0": None if c0 is None else c0.grad})
    for name, parameter in module.named_parameters():
        results[f"grad.{name}"] = parameter.grad
    return results, packed


def assert_same_packing(actual, expected):
    """Same batch_sizes and permutations on two PackedSequence outputs (or both None)."""
    assert (actual is None) == (expected is None)
    if expected is None:
        return
    assert torch.equal(actual.batch_sizes, expected.batch_sizes)
    for name in ("sorted_indices", "unsorted_indices"):
        a, e = getattr(actual, name), getattr(expected, name)
        assert (a is None) == (e is None), name
        if e is not None:
            assert torch.equal(a, e), name


def same_error(call_torch, call_fast, error, message):
    """Both calls raise exactly `error` with exactly `message` (a plain string, not a regex)."""
    raised = []
    for call in (call_torch, call_fast):
        with pytest.raises(error, match=f"^{re.escape(message)}$") as info:
            call()
        raised.append(info)
    assert [type(info.value) for info in raised] == [error, error]


def backends_the_call_ran(monkeypatch, call):
    """Run `call` and return the backend name of each recurrent_stack it made (a spy on
    fastrnn.functional.resolve_backend, removed again afterwards)."""
    seen = []
    original = fastrnn.functional.resolve_backend

    def spy(requested, spec):
        name, reason = original(requested, spec)
        seen.append(name)
        return name, reason

    monkeypatch.setattr(fastrnn.functional, "resolve_backend", spy)
    call()
    monkeypatch.setattr(fastrnn.functional, "resolve_backend", original)
    return seen
