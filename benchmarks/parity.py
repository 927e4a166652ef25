"""The parity gate: every timed (case, provider) is first held against the float64 reference.

It reuses `fastrnn parity`'s check (outputs, final states and every gradient, with the tolerance
table of fastrnn.testing). The gate runs on a reduced shape: the sequence is cut to PARITY_STEPS
steps (packed lengths scaled down with it) while batch, sizes, layers, directions and dtype stay
those of the case, so the same code paths run without timing a float64 oracle over 1000 steps.
"""

from dataclasses import dataclass

from benchmarks import providers
from fastrnn.parity_cli import ParityConfig, check_module

PARITY_STEPS = 16


@dataclass(frozen=True)
class GateResult:
    """Outcome of the gate: ok, the shape it ran at, the worst tensor and every comparison."""

    ok: bool
    T: int
    B: int
    comparisons: tuple

    def to_json(self):
        worst = max(self.comparisons, key=lambda c: c.rel_rms / c.tolerance.rel_rms)
        return {
            "ok": self.ok,
            "T": self.T,
            "B": self.B,
            "worst": worst.name,
            "worst_rel_rms": worst.rel_rms,
            "failed": [c.name for c in self.comparisons if not c.ok],
            "tensors": [{"name": c.name, "rel_rms": c.rel_rms, "max_err": c.max_err,
                         "ok": c.ok} for c in self.comparisons],
        }


def parity_config(case, device):
    """The reduced-shape ParityConfig of `case`."""
    steps = min(case.T, PARITY_STEPS)
    lengths = None
    if case.packed:
        # Scale the lengths down to `steps`, keeping the spread and one full-length sequence.
        lengths = tuple(max(1, round(n * steps / case.T)) for n in case.lengths)
    mode = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn"}[case.cell]
    return ParityConfig(mode=mode, T=steps, B=case.B, I=case.I, H=case.H, layers=case.layers,
                        bidirectional=case.bidirectional, lengths=lengths, dtype=case.dtype,
                        device=str(device))


def gate(case, provider, device):
    """Run the parity check of `provider` on `case`; raises providers.Unavailable or
    fastrnn.BackendUnavailableError when the provider cannot run here."""
    # A fixed-dtype provider (torch-fp16 on a bf16 case) is held to its own dtype's tolerance.
    case = providers.effective_case(provider, case)
    config = parity_config(case, device)
    module, params = providers.build(provider, case, device)
    comparisons = tuple(check_module(config, module, params))
    return GateResult(all(c.ok for c in comparisons), config.T, config.B, comparisons)
