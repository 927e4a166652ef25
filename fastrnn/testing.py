"""Comparison helpers and the one tolerance table, used by the tests and the benchmark parity gate.

Metric per tensor: relative RMS error ||a - e||_2 / ||e||_2 and scaled max error
max|a - e| / max(1, max|e|). NaN or Inf in the actual tensor where the expected one is finite fails.
The expected side is normally the float64 reference.
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Tolerance:
    rel_rms: float
    max_err: float


# Per dtype of the run under test. float64 is the oracle's own precision (drop-in parity, 1e-10);
# the others allow for rounding of the I/O dtype over the short sequences the tests use.
TOLERANCES = {
    torch.float64: Tolerance(rel_rms=1e-12, max_err=1e-10),
    torch.float32: Tolerance(rel_rms=1e-5, max_err=1e-4),
    torch.float16: Tolerance(rel_rms=5e-3, max_err=1e-2),
    torch.bfloat16: Tolerance(rel_rms=2e-2, max_err=5e-2),
}


@dataclass(frozen=True)
class Comparison:
    """Error of one tensor against its expected value."""

    name: str
    rel_rms: float
    max_err: float
    finite: bool
    tolerance: Tolerance

    @property
    def ok(self):
        return self.finite and self.rel_rms <= self.tolerance.rel_rms and (
            self.max_err <= self.tolerance.max_err
        )

    def __str__(self):
        status = "ok" if self.ok else "FAIL"
        return (f"{self.name}: rel_rms={self.rel_rms:.3e} (<= {self.tolerance.rel_rms:.0e}) "
                f"max_err={self.max_err:.3e} (<= {self.tolerance.max_err:.0e}) "
                f"finite={self.finite} {status}")


def compare(actual, expected, name="tensor", dtype=None):
    """Compare `actual` with `expected` under the tolerance of `dtype` (default: actual's dtype)."""
    tolerance = TOLERANCES[dtype or actual.dtype]
    if actual.shape != expected.shape:
        raise AssertionError(
            f"{name}: shape {tuple(actual.shape)} != expected {tuple(expected.shape)}"
        )
    a = actual.detach().to(torch.float64).cpu()
    e = expected.detach().to(torch.float64).cpu()
    finite = bool(torch.equal(torch.isfinite(a), torch.isfinite(e)))
    both = torch.isfinite(a) & torch.isfinite(e)
    # Non-finite positions must agree (NaN where the oracle has NaN, infinities of the same sign);
    # compare the finite rest.
    special_a, special_e = a[~both], e[~both]
    nan = special_a.isnan()
    same_specials = finite and bool(torch.equal(nan, special_e.isnan())) and bool(
        torch.equal(special_a[~nan], special_e[~nan]))
    a, e = a[both], e[both]
    if e.numel() == 0:
        return Comparison(name, 0.0, 0.0, finite and same_specials, tolerance)
    diff = a - e
    rel_rms = float(diff.norm() / e.norm().clamp_min(torch.finfo(torch.float64).tiny))
    if float(e.norm()) == 0.0:
        rel_rms = float(diff.norm())
    max_err = float(diff.abs().max() / max(1.0, float(e.abs().max())))
    return Comparison(name, rel_rms, max_err, finite and same_specials, tolerance)


def assert_close(actual, expected, name="tensor", dtype=None):
    """Raise AssertionError with both error figures when `actual` is off `expected`."""
    result = compare(actual, expected, name, dtype)
    if not result.ok:
        raise AssertionError(str(result))
    return result


def assert_all_close(actual, expected, dtype=None):
    """Compare two dicts name -> tensor (or None) key by key; every failure is reported at once."""
    if set(actual) != set(expected):
        raise AssertionError(f"different keys: {sorted(actual)} vs {sorted(expected)}")
    failures = []
    for name in expected:
        if expected[name] is None or actual[name] is None:
            if (expected[name] is None) != (actual[name] is None):
                failures.append(f"{name}: one side is None")
            continue
        result = compare(actual[name], expected[name], name, dtype)
        if not result.ok:
            failures.append(str(result))
    if failures:
        raise AssertionError("\n".join(failures))


GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def recurrence_inputs(cell, steps, batch, hidden, proj=0, bias=True, device="cpu", seed=0):
    """Float64 leaf tensors {name: tensor or None} of one random recurrence problem (the arguments
    of fastrnn.reference.<cell>_recurrence), scaled so the gates are not saturated.

    Args:
        cell: 'lstm', 'gru' or 'rnn'.  steps, batch, hidden: T, B, H.  proj: P (LSTM only).
        bias: GRU's b_hh.  device: where the tensors go (drawn on the CPU: the same values anywhere).
    Returns:
        gx (T, B, G*H), h0 (B, H_out), c0 (B, H) for LSTM, w_hh (G*H, H_out), w_hr (P, H) with a
        projection, b_hh (3H,) for GRU with bias; None where absent. All require grad.
    """
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(device)

    h_out = proj or hidden
    width = GATES[cell] * hidden
    inputs = {
        "gx": randn(steps, batch, width),
        "h0": randn(batch, h_out, scale=0.5),
        "c0": randn(batch, hidden, scale=0.5) if cell == "lstm" else None,
        "w_hh": randn(width, h_out, scale=h_out**-0.5),
        "w_hr": randn(proj, hidden, scale=hidden**-0.5) if proj else None,
        "b_hh": randn(width, scale=0.5) if cell == "gru" and bias else None,
    }
    return {k: None if v is None else v.requires_grad_() for k, v in inputs.items()}
