"""What is timed: one recurrent module per provider, all with the torch.nn call convention.

    torch      torch.nn.LSTM/GRU/RNN: cuDNN on CUDA, ATen on CPU (the baseline of every speedup)
    torch-fp16 torch.nn in a fixed dtype whatever the case's dtype (also torch-bf16, torch-fp32):
               cuDNN runs its persistent kernels only in fp16, so a bf16 case needs the fp16
               baseline too. Rows keep the case's fields; the provider name says what ran.
    reference  fastrnn modules with backend='reference' (pure PyTorch)
    cpu        fastrnn modules with backend='cpu' (auto's choice for CPU tensors; CPU only)
    triton     fastrnn modules with backend='triton' (fused kernels; CUDA only when timed)
    triton-<form>  the same with one kernel form forced (fastrnn.kernels.use_form), one provider
               per form of fastrnn.kernels.FORMS; the alias `triton-forms` expands to all of them
    cells      torch.nn.LSTMCell/GRUCell/RNNCell stepped in a Python loop: what the tutorials do

`build(case, device)` returns (module, params): params maps torch.nn parameter names
(weight_ih_l0, ...) to the module's Parameters, so the parity gate loads the same weights into
every provider. A provider that cannot run a case raises Unavailable with the reason.
"""

from dataclasses import replace

import torch
from torch import nn

import fastrnn
from fastrnn.backends import triton_interpreter_enabled
from fastrnn.parity_cli import DTYPES

# Expands to one triton-<form> provider per kernel form (see `expand`).
FORMS_ALIAS = "triton-forms"
FORM_PREFIX = "triton-"
# torch.nn in a fixed dtype: provider name -> dtype.
FIXED_DTYPE_TORCH = {"torch-fp16": "float16", "torch-bf16": "bfloat16", "torch-fp32": "float32"}
# Set by `python -m benchmarks.rowwise --time-interpreter` (the dry run of `fastrnn gpu-run`) so the
# kernels run, tiny, through the interpreter on the CPU: the same code paths, numbers never used.
TIME_INTERPRETER = False


class Unavailable(RuntimeError):
    """This provider cannot run this case here; the message is recorded as the reason."""


def _kwargs(case, device):
    extra = {"nonlinearity": "tanh"} if case.cell == "RNN" else {}
    return {"num_layers": case.layers, "bidirectional": case.bidirectional,
            "dtype": DTYPES[case.dtype], "device": device, **extra}


def _torch(case, device):
    module = getattr(nn, case.cell)(case.I, case.H, **_kwargs(case, device))
    return module, dict(module.named_parameters())


def _fastrnn(backend):
    def build(case, device):
        # The interpreter runs kernels one program at a time in Python: correct, never timed.
        # Without it, fastrnn's own backend policy refuses CPU tensors with its reason.
        if backend == "cpu" and torch.device(device).type != "cpu":
            raise Unavailable("the cpu backend runs on CPU tensors")
        if backend == "triton" and torch.device(device).type == "cpu" and (
            triton_interpreter_enabled() and not TIME_INTERPRETER
        ):
            raise Unavailable("the Triton interpreter (TRITON_INTERPRET=1) is never timed")
        module = getattr(fastrnn, case.cell)(case.I, case.H, backend=backend,
                                             **_kwargs(case, device))
        return module, dict(module.named_parameters())

    return build


def _torch_in(dtype):
    def build(case, device):
        return _torch(replace(case, dtype=dtype), device)

    return build


class FormForced(nn.Module):
    """A fastrnn module whose calls run with one kernel form forced (fastrnn.kernels.use_form).

    The backward pass runs the form its forward chose (the autograd Function keeps it), so forcing
    the forward call is enough, also where autograd runs the backward on another thread.
    """

    def __init__(self, inner, form):
        super().__init__()
        self.inner, self.form = inner, form

    def forward(self, input, hx=None):
        from fastrnn import kernels

        with kernels.use_form(self.form):
            return self.inner(input, hx)


def kernel_forms():
    """fastrnn.kernels.FORMS, or () when the kernels cannot be imported (no triton)."""
    try:
        from fastrnn import kernels
    except ImportError:
        return ()
    return tuple(kernels.FORMS)


def _triton_form(form):
    triton = _fastrnn("triton")

    def build(case, device):
        forms = kernel_forms()
        if form not in forms:
            raise Unavailable(f"no kernel form {form!r} here (fastrnn.kernels.FORMS = {forms})")
        module, params = triton(case, device)
        return FormForced(module, form), params

    return build


class CellLoop(nn.Module):
    """A stacked (bidirectional) recurrence of torch.nn cells unrolled in Python, step by step.

    The naive baseline: the loop of the classic tutorials, generalised to layers and directions.
    forward(input (T, B, I), hx) -> (output (T, B, D*H), h_n (L*D, B, H) or (h_n, c_n)).
    """

    def __init__(self, cell, input_size, hidden_size, num_layers=1, bidirectional=False,
                 dtype=None, device=None):
        super().__init__()
        self.is_lstm = cell == "LSTM"
        self.directions = 2 if bidirectional else 1
        cell_class = getattr(nn, f"{cell}Cell")
        self.cells = nn.ModuleList(
            cell_class(input_size if layer == 0 else self.directions * hidden_size, hidden_size,
                       dtype=dtype, device=device)
            for layer in range(num_layers) for _ in range(self.directions))

    def canonical_parameters(self):
        """torch.nn.LSTM-style names -> this module's cell parameters."""
        params = {}
        for index, cell in enumerate(self.cells):
            layer, direction = divmod(index, self.directions)
            suffix = f"l{layer}" + ("_reverse" if direction else "")
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                params[f"{name}_{suffix}"] = getattr(cell, name)
        return params

    def forward(self, input, hx):
        states = list(hx) if self.is_lstm else [hx]
        finals = [[] for _ in states]
        layer_input = input
        for layer in range(len(self.cells) // self.directions):
            outputs = []
            for direction in range(self.directions):
                index = layer * self.directions + direction
                cell = self.cells[index]
                state = tuple(s[index] for s in states)
                steps = range(input.shape[0] - 1, -1, -1) if direction else range(input.shape[0])
                out = [None] * input.shape[0]
                for t in steps:
                    state = cell(layer_input[t], state if self.is_lstm else state[0])
                    state = state if self.is_lstm else (state,)
                    out[t] = state[0]
                outputs.append(torch.stack(out))
                for collected, tensor in zip(finals, state):
                    collected.append(tensor)
            layer_input = torch.cat(outputs, dim=2) if self.directions == 2 else outputs[0]
        finals = [torch.stack(f) for f in finals]
        return layer_input, tuple(finals) if self.is_lstm else finals[0]


def _cells(case, device):
    if case.packed:
        raise Unavailable("a hand-unrolled cell loop takes no packed input")
    kwargs = _kwargs(case, device)
    kwargs.pop("nonlinearity", None)
    module = CellLoop(case.cell, case.I, case.H, **kwargs)
    return module, module.canonical_parameters()


PROVIDERS = {
    "torch": _torch,
    "reference": _fastrnn("reference"),
    "cpu": _fastrnn("cpu"),
    "triton": _fastrnn("triton"),
    "cells": _cells,
    **{name: _torch_in(dtype) for name, dtype in FIXED_DTYPE_TORCH.items()},
}
DESCRIPTIONS = {
    "torch": "torch.nn modules (cuDNN on CUDA, ATen on CPU)",
    **{name: f"torch.nn modules in {dtype} whatever the case's dtype (cuDNN's persistent kernels "
             f"run only in fp16)" for name, dtype in FIXED_DTYPE_TORCH.items()},
    "reference": "fastrnn modules, backend='reference'",
    "cpu": "fastrnn modules, backend='cpu' (CPU tensors)",
    "triton": "fastrnn modules, backend='triton'",
    "cells": "torch.nn *Cell unrolled in a Python loop (tutorial style)",
}


def is_known(provider):
    """True for a provider name `build` or `expand` understands (triton-<form> is checked when it
    is built, against the FORMS of the kernels installed then)."""
    return provider in PROVIDERS or provider == FORMS_ALIAS or provider.startswith(FORM_PREFIX)


def expand(names):
    """Provider names with the `triton-forms` alias replaced by triton-<form> for every form of
    fastrnn.kernels.FORMS (read now: the forms change with the kernels), or by plain `triton`
    when the kernels cannot be imported, so its rows say why."""
    expanded = []
    for name in names:
        if name == FORMS_ALIAS:
            forms = kernel_forms()
            expanded += [FORM_PREFIX + form for form in forms] if forms else ["triton"]
        else:
            expanded.append(name)
    return list(dict.fromkeys(expanded))


def for_case(names, case):
    """The providers to run on `case`: expanded, without a fixed-dtype torch provider that would
    repeat the `torch` row in the case's own dtype."""
    return [name for name in expand(names)
            if FIXED_DTYPE_TORCH.get(name) != case.dtype or "torch" not in names]


def run_dtype(provider, case):
    """The dtype `provider` runs `case` in (its fixed dtype, else the case's)."""
    return FIXED_DTYPE_TORCH.get(provider, case.dtype)


def effective_case(provider, case):
    """`case` in the dtype the provider runs it in: inputs and the parity gate follow it."""
    dtype = run_dtype(provider, case)
    return case if dtype == case.dtype else replace(case, dtype=dtype)


def uses_kernels(provider):
    """True for the providers that run the Triton kernels (their rows record the kernel form)."""
    return provider == "triton" or (provider.startswith(FORM_PREFIX) and provider != FORMS_ALIAS)


def descriptions(names=()):
    """DESCRIPTIONS plus an entry for every triton-<form> among `names` or the installed forms."""
    found = dict(DESCRIPTIONS)
    forms = [n[len(FORM_PREFIX):] for n in expand(names) if n.startswith(FORM_PREFIX)]
    for form in dict.fromkeys([*kernel_forms(), *forms]):
        found[FORM_PREFIX + form] = (f"fastrnn modules, backend='triton', kernel form {form!r} "
                                     f"forced with fastrnn.kernels.use_form")
    return found


def build(provider, case, device):
    """(module, params) of `provider` for `case` on `device`; raises Unavailable with the reason."""
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise Unavailable("no CUDA device in this process")
    if provider in PROVIDERS:
        return PROVIDERS[provider](case, device)
    if uses_kernels(provider):
        return _triton_form(provider[len(FORM_PREFIX):])(case, device)
    raise Unavailable(f"unknown provider {provider!r}")
