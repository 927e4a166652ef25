"""The parity metric itself (fastrnn.testing): what passes, what fails, and the message."""

import pytest
import torch

from fastrnn.testing import TOLERANCES, assert_all_close, assert_close, compare

INF, NAN = float("inf"), float("nan")


def test_identical_and_tiny_errors_pass():
    e = torch.randn(100, dtype=torch.float64)
    assert compare(e.clone(), e).ok
    assert compare(e + 1e-13, e).ok
    assert compare(e.float(), e).ok


@pytest.mark.parametrize(("actual", "expected"), [
    ([1.0, NAN], [1.0, 2.0]),
    ([1.0, 2.0], [1.0, NAN]),
    ([1.0, INF], [1.0, 2.0]),
    ([1.0, INF], [1.0, -INF]),
    ([1.0, NAN], [1.0, INF]),
], ids=["nan-where-finite", "finite-where-nan", "inf-where-finite", "inf-sign", "nan-vs-inf"])
def test_nonfinite_mismatches_fail(actual, expected):
    result = compare(torch.tensor(actual, dtype=torch.float64),
                     torch.tensor(expected, dtype=torch.float64))
    assert not result.ok and not result.finite


def test_matching_nonfinite_values_pass():
    values = torch.tensor([1.0, NAN, INF, -INF], dtype=torch.float64)
    assert compare(values.clone(), values).ok


def test_float32_tolerance_is_applied_to_a_float32_run():
    e = torch.randn(1000, dtype=torch.float64)
    off = e * (1 + 3 * TOLERANCES[torch.float32].rel_rms)
    assert not compare(off.float(), e).ok
    assert compare(off.float(), e, dtype=torch.float16).ok


def test_shape_mismatch_and_messages():
    with pytest.raises(AssertionError, match=r"^x: shape \(2,\) != expected \(3,\)$"):
        compare(torch.zeros(2), torch.zeros(3), "x")
    with pytest.raises(AssertionError, match=r"^y: rel_rms=.* FAIL$"):
        assert_close(torch.ones(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), "y")
    with pytest.raises(AssertionError, match="^a: one side is None$"):
        assert_all_close({"a": None}, {"a": torch.zeros(1)})
    with pytest.raises(AssertionError, match="^different keys"):
        assert_all_close({"a": None}, {"b": None})
