"""Inputs, upstream gradients and the timed closure of one (case, provider, mode).

Modes:
    infer   forward under torch.no_grad()
    fwd     forward with autograd recording (input, states and weights require grad)
    fwdbwd  forward + backward to the input, the initial states and every weight

Everything that is not the user's per-batch cost is made outside the timed closure: the module,
the inputs, the initial states and the upstream gradients. Packed cases time
pack_padded_sequence + the module, the path a user's padded batch takes.
"""

import torch
from torch.nn.utils.rnn import pack_padded_sequence

from benchmarks import providers
from fastrnn.parity_cli import DTYPES


class Workload:
    """The module of `provider` for `case` on `device` and the closure to time in `mode`."""

    def __init__(self, case, provider, mode, device, seed=0):
        # Inputs in the dtype the provider runs (torch-fp16 on a bf16 case): no cast is timed.
        case = providers.effective_case(provider, case)
        self.case, self.mode, self.provider = case, mode, provider
        self.module, params = providers.build(provider, case, device)
        self.params = list(params.values())
        generator = torch.Generator().manual_seed(seed)
        dtype = DTYPES[case.dtype]
        randn = lambda *shape: torch.randn(*shape, generator=generator).to(device, dtype)
        grad = mode != "infer"
        self.x = randn(case.T, case.B, case.I).requires_grad_(grad)
        state_shape = (case.layers * (2 if case.bidirectional else 1), case.B, case.H)
        count = 2 if case.cell == "LSTM" else 1
        self.states = [(0.5 * randn(*state_shape)).requires_grad_(grad) for _ in range(count)]
        for p in self.params:
            p.requires_grad_(grad)
        self.lengths = None if case.lengths is None else torch.tensor(case.lengths)

    def forward(self):
        """One call of the module; returns the flat list [output data, h_n(, c_n)]."""
        run_input = self.x
        if self.lengths is not None:
            run_input = pack_padded_sequence(self.x, self.lengths, enforce_sorted=False)
        hx = tuple(self.states) if self.case.cell == "LSTM" else self.states[0]
        output, finals = self.module(run_input, hx)
        output = output.data if self.lengths is not None else output
        finals = list(finals) if self.case.cell == "LSTM" else [finals]
        return [output, *finals]

    def kernel_form(self):
        """The kernel form(s) one untimed forward call runs (grad recording as in the mode), from
        fastrnn.kernels.record_forms: one form name, several joined by '+' when the calls of a
        module differ (layers, directions), or None for a provider that does not run the Triton
        kernels."""
        if not providers.uses_kernels(self.provider):
            return None
        from fastrnn import kernels

        with torch.set_grad_enabled(self.mode != "infer"), kernels.record_forms() as records:
            self.forward()
        return "+".join(dict.fromkeys(record["form"] for record in records)) or None

    def closure(self):
        """The function to time; upstream gradients are drawn here, once, outside it."""
        if self.mode == "infer":
            def infer():
                with torch.no_grad():
                    self.forward()
            return infer
        if self.mode == "fwd":
            return self.forward
        upstream = [torch.randn_like(t) for t in self.forward()]
        leaves = [self.x, *self.states, *self.params]

        def fwdbwd():
            # autograd.grad, not .backward(): no accumulation into .grad between repeats.
            torch.autograd.grad(self.forward(), leaves, upstream)

        return fwdbwd
