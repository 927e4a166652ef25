"""Every backend against torch.nn over the named grid (tests/cases.py).

The oracle is torch.nn in float64. A float64 run must match it within the float64 tolerance
(1e-10), a float32 run within the float32 tolerance: outputs, final states and the gradients of
input, h0, c0 and every parameter under random upstream gradients on outputs and final states.
The Triton backend runs the grid in the kernels' default form (persistent at these sizes) and a
subset of it in the cooperative and stepwise forms as well, in the dtypes the kernels support:
triton x float64 is not generated (the kernels refuse float64; test_triton_dtypes_are_the_kernels
pins that list against their refusal).
"""

import pytest
import torch
from cases import FORMS_CELL_SUBSET, FORMS_SUBSET, cell_cases, module_cases
from helpers import (
    TRITON_DTYPES,
    assert_same_packing,
    forward_backward,
    kernel_form,
    make_data,
    twins,
    with_backends,
)

from fastrnn.testing import assert_all_close

# torch's own warning for proj_size on CPU (torch.nn.LSTM raises it too): not ours to act on.
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

DTYPES = (torch.float64, torch.float32)


def _check(case, backend, form, dtype):
    oracle, fast = twins(case, dtype, backend)
    data = make_data(case)
    expected, expected_packed = forward_backward(oracle, case, data, torch.float64)
    with kernel_form(form):
        actual, actual_packed = forward_backward(fast, case, data, dtype)
    assert_same_packing(actual_packed, expected_packed)
    assert_all_close(actual, expected, dtype)


@pytest.mark.parametrize(("backend", "form", "case", "dtype"),
                         with_backends(module_cases(), FORMS_SUBSET, DTYPES))
def test_module_matches_torch_nn(backend, form, case, dtype):
    _check(case, backend, form, dtype)


@pytest.mark.parametrize(("backend", "form", "case", "dtype"),
                         with_backends(cell_cases(), FORMS_CELL_SUBSET, DTYPES))
def test_cell_matches_torch_nn(backend, form, case, dtype):
    _check(case, backend, form, dtype)


_TORCH_VS_REFERENCE = [c.param() for c in module_cases()
                       if any(key in c.name for key in ("packed", "pack_sequence", "L3", "proj"))]


@pytest.mark.parametrize("case", _TORCH_VS_REFERENCE)
def test_torch_backend_equals_reference(case):
    """The 'torch' backend (torch's _VF ops) and the reference agree, packed input included."""
    _, on_reference = twins(case, torch.float64, "reference")
    _, on_torch = twins(case, torch.float64, "torch")
    data = make_data(case)
    expected, expected_packed = forward_backward(on_reference, case, data, torch.float64)
    actual, actual_packed = forward_backward(on_torch, case, data, torch.float64)
    assert_same_packing(actual_packed, expected_packed)
    assert_all_close(actual, expected, torch.float64)


_LOW_PRECISION = [c for c in module_cases() + cell_cases()
                  if c.name.endswith(("-L2-hx", "proj-L2-bidir-hx", "packed-L2-bidir-hx",
                                      "Cell-batched-hx", "tanh-batched-hx"))]


@pytest.mark.parametrize(("backend", "form", "case", "dtype"),
                         with_backends(_LOW_PRECISION, set(), (torch.bfloat16, torch.float16)))
def test_low_precision_matches_torch_nn(backend, form, case, dtype):
    """bf16 / fp16 modules (CPU supports both) within their tolerance of the float64 oracle."""
    _check(case, backend, form, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16],
                         ids=str)
def test_triton_dtypes_are_the_kernels(dtype):
    """The parity grid leaves out exactly the dtypes the kernels refuse: a dtype they gain is
    tested, and one they refuse is never a parametrisation that can only skip."""
    pytest.importorskip("triton")
    from fastrnn import kernels
    from fastrnn.backends import RecurrenceSpec

    for mode in ("LSTM", "GRU", "RNN_TANH", "RNN_RELU"):
        spec = RecurrenceSpec(mode=mode, device=torch.device("cpu"), dtype=dtype, hidden_size=6)
        assert (kernels.refusal(spec) is None) == (dtype in TRITON_DTYPES), mode
