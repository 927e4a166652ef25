"""Shared helpers for the kernel tests (no tests here): random problems and the float64-reference comparison.

Every comparison covers the outputs, the final states and the gradients of gx, h0, c0, w_hh, w_hr
and b_hh, with random upstream gradients on the output and on every final state.
"""

from dataclasses import dataclass

import torch

from fastrnn import reference
from fastrnn.testing import assert_all_close, recurrence_inputs


@dataclass(frozen=True)
class Case:
    """One recurrence problem. proj: LSTM projection size (0: none); bias: GRU b_hh present."""

    cell: str
    steps: int
    batch: int
    hidden: int
    proj: int = 0
    lengths: tuple | None = None
    reverse: bool = False
    bias: bool = True
    nonlinearity: str = "tanh"

    def __str__(self):
        parts = [self.cell, f"T{self.steps}", f"B{self.batch}", f"H{self.hidden}"]
        if self.proj:
            parts.append(f"P{self.proj}")
        if self.lengths is not None and len(self.lengths) > 6:
            parts.append(f"len{min(self.lengths)}to{max(self.lengths)}")
        elif self.lengths is not None:
            parts.append("len" + "-".join(map(str, self.lengths)))
        if self.reverse:
            parts.append("rev")
        if self.cell == "gru" and not self.bias:
            parts.append("nobias")
        if self.cell == "rnn":
            parts.append(self.nonlinearity)
        return "_".join(parts)


def make_inputs(case, device="cpu", seed=0):
    """Float64 leaf tensors {name: tensor or None} for `case` (fastrnn.testing.recurrence_inputs)."""
    return recurrence_inputs(case.cell, case.steps, case.batch, case.hidden, case.proj, case.bias,
                             device, seed)


def call(impl, case, inputs, device="cpu"):
    """Run `impl.<cell>_recurrence` on `inputs`; returns the tuple of outputs."""
    lengths = None if case.lengths is None else torch.tensor(case.lengths, device=device)
    if case.cell == "lstm":
        return impl.lstm_recurrence(inputs["gx"], inputs["h0"], inputs["c0"], inputs["w_hh"],
                                    inputs["w_hr"], lengths, case.reverse)
    if case.cell == "gru":
        return impl.gru_recurrence(inputs["gx"], inputs["h0"], inputs["w_hh"], inputs["b_hh"],
                                   lengths, case.reverse)
    return impl.rnn_recurrence(inputs["gx"], inputs["h0"], inputs["w_hh"], case.nonlinearity,
                               lengths, case.reverse)


def results(outputs, inputs, upstream):
    """{name: tensor}: the outputs and the gradients of every input under `upstream`."""
    names = [k for k, v in inputs.items() if v is not None]
    grads = torch.autograd.grad(outputs, [inputs[k] for k in names], upstream)
    out = {f"out{i}": o for i, o in enumerate(outputs)}
    out.update({f"d{k}": None for k in inputs})
    out.update({f"d{k}": g for k, g in zip(names, grads)})
    return out


def check_against_reference(impl, case, dtype, device="cpu", seed=0, tolerance=None):
    """Run `case` through impl in `dtype` and hold it to the float64 reference under the tolerance
    of `tolerance` (a dtype of the table; default `dtype`)."""
    inputs = make_inputs(case, device, seed)
    expected_outputs = call(reference, case, inputs, device)
    gen = torch.Generator().manual_seed(seed + 1)
    upstream = [torch.randn(o.shape, generator=gen, dtype=o.dtype).to(device)
                for o in expected_outputs]
    expected = results(expected_outputs, inputs, upstream)
    cast = {k: None if v is None else v.detach().to(dtype).requires_grad_()
            for k, v in inputs.items()}
    actual_outputs = call(impl, case, cast, device)
    for a, e in zip(actual_outputs, expected_outputs):
        assert a.dtype == dtype and a.shape == e.shape
    actual = results(actual_outputs, cast, [u.to(dtype) for u in upstream])
    assert_all_close(actual, expected, dtype=tolerance or dtype)
