"""Run one fuzzer call on torch.nn and on fastrnn and say how the two differ.

`run_call(call)` returns a Verdict: 'same', or the category of the first difference:
    decision   one side raised, the other returned
    type       both raised, different exception types
    message    both raised the same type, different messages
    structure  both returned, outputs of different types, shapes or dtypes
    value      both returned, an output or final state differs (NaN/inf positions included)
    gradient   both returned, a gradient differs (input, states, every parameter)
Crashes (the process dies) are caught by the caller, which runs calls in a worker process
(fuzz_worker). Tolerances are fastrnn.testing's, by the module's dtype.
"""

import copy
import os
import re
import warnings
from dataclasses import dataclass

import torch
from fuzz_build import DTYPES, Arguments, modules
from torch.nn.utils.rnn import PackedSequence

from fastrnn.testing import compare


@dataclass
class Outcome:
    """What one side did: raised (phase, type, message) or returned (outputs, gradients)."""

    error: tuple | None = None
    outputs: list | None = None
    gradients: list | None = None


@dataclass
class Verdict:
    category: str
    detail: str = ""
    torch_error: tuple | None = None
    our_error: tuple | None = None


def _tensors(value):
    """Flatten a forward result into a list of tensors (None kept) in a fixed order."""
    if isinstance(value, PackedSequence):
        return [value.data, value.batch_sizes, value.sorted_indices, value.unsorted_indices]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors(item)]
    return [value]


def _upstream(outputs, seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t.dtype)
            if isinstance(t, torch.Tensor) and t.requires_grad else None for t in outputs]


def _run_side(module, arguments):
    """Forward, then the gradients of every leaf under a fixed random upstream gradient."""
    args, leaves = arguments.make()
    params = [p for _, p in module.named_parameters()]
    phase = "forward"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = module(*args)
        outputs = _tensors(result)
        phase = "backward"
        upstream = _upstream(outputs, arguments.upstream_seed)
        pairs = [(o, u) for o, u in zip(outputs, upstream) if u is not None]
        wanted = [t for t in leaves + params if t is not None and t.requires_grad]
        gradients = [None] * len(leaves + params)
        if pairs and wanted:
            found = torch.autograd.grad([o for o, _ in pairs], wanted, [u for _, u in pairs],
                                        allow_unused=True)
            found = iter(found)
            gradients = [next(found) if t is not None and t.requires_grad else None
                         for t in leaves + params]
        return Outcome(outputs=[t.detach() if isinstance(t, torch.Tensor) else t for t in outputs],
                       gradients=gradients)
    except Exception as error:  # noqa: BLE001 - every exception is an outcome to compare
        classes = tuple(cls.__name__ for cls in type(error).__mro__)
        return Outcome(error=(phase, type(error).__name__, _first_line(error), classes))


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


# torch.nn messages that come from whichever generic op trips first rather than from the RNN
# contract (a matmul's dtype check, a narrow, the argument parser's dump, a C++ frame): compared
# by exception type only. fastrnn says what is wrong instead (see fastrnn.validation).
_GENERIC_MESSAGES = re.compile("|".join([
    r"Exception raised from", r"0x[0-9a-f]{6,}",
    r"(m1|mat1|self) and (m2|mat2) (must )?(to )?have the same dtype",
    r"expected m1 and m2 to have the same dtype",
    r"received an invalid combination of arguments",
    r"start \(\d+\) \+ length \(\d+\) exceeds dimension size",
    r"^narrow\(\)", r"Dimension size must be non-negative",
    r"Trying to create tensor with negative dimension",
    r"doesn't match the broadcast shape", r"^expected scalar type",
    r"shape '\[[\d, ]*\]' is invalid for input of size",
    r"get_mkldnn_dtype", r"The size of tensor a \(\d+\) must match the size of tensor b",
]))


def _compare_errors(torch_error, our_error):
    # fastrnn may raise a subclass of torch's type (BackendUnavailableError is a RuntimeError):
    # `except RuntimeError` still catches it.
    if torch_error[1] not in our_error[3]:
        return "type"
    if torch_error[2] != our_error[2] and not _GENERIC_MESSAGES.search(torch_error[2]):
        return "message"
    return "same"


def _no_less_accurate(a, e, oracle, dtype, label):
    """True when `a` is within tolerance of the float64 `oracle` or no further from it than 4x
    torch's own float32 result `e`: short float32 sums can cancel, and then torch.nn and fastrnn
    round differently while both are as right as float32 allows."""
    if oracle is None or oracle.shape != a.shape:
        return False
    mine, theirs = compare(a, oracle, label, dtype=dtype), compare(e, oracle, label, dtype=dtype)
    return mine.finite and (
        mine.rel_rms <= max(mine.tolerance.rel_rms, 4 * theirs.rel_rms)
        and mine.max_err <= max(mine.tolerance.max_err, 4 * theirs.max_err))


def _compare_tensors(mine, theirs, dtype, label, oracle=None):
    """None when equal (under dtype's tolerance; integers exactly), else a description."""
    if len(mine) != len(theirs):
        return f"{label}: {len(mine)} tensors vs {len(theirs)}"
    for index, (a, e) in enumerate(zip(mine, theirs)):
        if (a is None) != (e is None):
            return f"{label}[{index}]: one side is None"
        if a is None:
            continue
        if not isinstance(a, torch.Tensor) or not isinstance(e, torch.Tensor):
            if a != e:
                return f"{label}[{index}]: {a!r} vs {e!r}"
            continue
        if a.shape != e.shape or a.dtype != e.dtype:
            return f"{label}[{index}]: {tuple(a.shape)} {a.dtype} vs {tuple(e.shape)} {e.dtype}"
        if not a.is_floating_point():
            if not torch.equal(a, e):
                return f"{label}[{index}]: integers differ"
            continue
        result = compare(a, e, f"{label}[{index}]", dtype=dtype)
        reference = None if oracle is None else oracle[index]
        if not result.ok and not (result.finite and _no_less_accurate(a, e, reference, dtype,
                                                                      label)):
            return str(result)
    return None


def compare_outcomes(ours, theirs, dtype, oracle=None):
    """The Verdict of fastrnn's outcome `ours` against torch.nn's `theirs` (and, for float32,
    torch.nn's float64 `oracle` outcome on the same values, when it ran)."""
    if (ours.error is None) != (theirs.error is None):
        detail = f"torch: {theirs.error or 'returned'}; fastrnn: {ours.error or 'returned'}"
        return Verdict("decision", detail, theirs.error, ours.error)
    if ours.error is not None:
        category = _compare_errors(theirs.error, ours.error)
        return Verdict(category, f"torch: {theirs.error}; fastrnn: {ours.error}", theirs.error,
                       ours.error)
    shapes = [(tuple(t.shape), t.dtype) if isinstance(t, torch.Tensor) else t
              for t in ours.outputs]
    expected = [(tuple(t.shape), t.dtype) if isinstance(t, torch.Tensor) else t
                for t in theirs.outputs]
    if shapes != expected:
        return Verdict("structure", f"torch: {expected}; fastrnn: {shapes}")
    usable = oracle is not None and oracle.error is None
    difference = _compare_tensors(ours.outputs, theirs.outputs, dtype, "output",
                                  oracle.outputs if usable else None)
    if difference:
        return Verdict("value", difference)
    difference = _compare_tensors(ours.gradients, theirs.gradients, dtype, "gradient",
                                  oracle.gradients if usable else None)
    if difference:
        return Verdict("gradient", difference)
    return Verdict("same")


def run_call(call, progress=None, torch_side=True):
    """Run `call` on both sides; `progress(side)` is told which side is about to run.

    torch_side=False runs fastrnn alone, after torch.nn crashed on the call: the verdict is
    'torch-crash', with fastrnn's error (or None when it returned).
    """
    torch.set_num_threads(1)
    try:
        reference, ours = modules(call)
        arguments = Arguments(call)
        arguments.make()
    except Exception as error:  # noqa: BLE001 - a call the builder cannot express
        return Verdict("setup", f"{type(error).__name__}: {error}")
    if not torch_side:
        if progress:
            progress("fastrnn")
        mine = _run_side(ours, arguments)
        return Verdict("torch-crash", f"torch.nn crashed; fastrnn: {mine.error or 'returned'}",
                       ("crash",), mine.error)
    if progress:
        progress("torch")
    theirs = _run_side(reference, arguments)
    if progress:
        progress("fastrnn")
    mine = _run_side(ours, arguments)
    oracle = None
    if call["dtype"] != "float64" and mine.error is None and theirs.error is None:
        oracle = _run_side(copy.deepcopy(reference).double(), Arguments(call, oracle=True))
    return compare_outcomes(mine, theirs, DTYPES[call["dtype"]], oracle)


def progress_to_file(path):
    """A progress callback writing the side about to run to `path` (read after a crash)."""
    def record(side):
        with open(path, "w") as handle:
            handle.write(side)
            handle.flush()
            os.fsync(handle.fileno())
    return record
