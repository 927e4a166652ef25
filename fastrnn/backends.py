"""The one place that decides which implementation runs a recurrence.

Backends:
    reference  pure PyTorch (fastrnn.reference), runs everywhere, supports double backward.
    cpu        our implementation for CPU tensors (fastrnn.cpu): the time loop without autograd and
               a hand-derived backward; no double backward.
    triton     fused Triton kernels (fastrnn.kernels): CUDA tensors, or CPU tensors when
               TRITON_INTERPRET=1 was exported before Python started.
    torch      torch's own RNN ops with our parameters (cuDNN on CUDA, ATen on CPU): the baseline
               we measure against and an explicit escape hatch; `cudnn` is an alias.
    auto       cpu for CPU tensors (compiled too: a fastrnn op, fastrnn.ops); triton on CUDA where it
               supports the configuration, reference otherwise. Never picks torch.

Precedence: the module/call argument, then `with use_backend(...)`, then the FASTRNN_BACKEND
environment variable, then auto. A module's default `backend='auto'` (or `None`, the same)
defers to the context manager and the environment, so `use_backend` can switch a whole model.

Seeing which implementation ran:
    fastrnn.explain(module, input) answers for one call without running it: the backend, why,
    and the Triton kernel form (fastrnn.explanation).
    The logger `logging.getLogger("fastrnn")` logs at INFO each automatic choice, once per mode,
    device type, dtype and result, e.g.
    `fastrnn auto backend: LSTM cpu torch.float32 -> cpu (auto: cpu tensor)`. An explicitly
    requested backend is not logged (it runs or raises BackendUnavailableError); nothing is
    logged at other levels. Python shows INFO records only once configured, e.g.
    `logging.basicConfig(level=logging.INFO)`.
"""

import contextlib
import contextvars
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from fastrnn import cpu

BACKENDS = ("auto", "reference", "cpu", "triton", "torch")
ALIASES = {"cudnn": "torch"}
ENV_VAR = "FASTRNN_BACKEND"

logger = logging.getLogger("fastrnn")
# A context variable, not a thread-local: `use_backend` holds in its own asyncio task (and thread)
# only, and a task started inside the block inherits it.
_requested = contextvars.ContextVar("fastrnn_backend", default=None)
_logged_auto_choices: set[tuple[str, str, torch.dtype, str]] = set()


class BackendUnavailableError(RuntimeError):
    """An explicitly requested backend cannot run this call; the message says why."""


@dataclass(frozen=True)
class RecurrenceSpec:
    """What a backend needs to know to accept a call.

    mode: 'LSTM', 'GRU', 'RNN_TANH' or 'RNN_RELU'.  device/dtype: of the input.
    hidden_size/proj_size: cell sizes.  double_backward: the caller needs a differentiable backward.
    """

    mode: str
    device: torch.device
    dtype: torch.dtype
    hidden_size: int
    proj_size: int = 0
    double_backward: bool = False


def canonical_name(name: str) -> str:
    """Validate a backend name and resolve aliases ('cudnn' -> 'torch')."""
    if not isinstance(name, str):
        raise TypeError(f"backend should be a str, got: {type(name).__name__}")
    key = ALIASES.get(name.lower(), name.lower())
    if key not in BACKENDS:
        valid = ", ".join(repr(b) for b in BACKENDS + tuple(ALIASES))
        raise ValueError(f"Unknown fastrnn backend {name!r}. Select from {valid}.")
    return key


def check_backend_argument(backend: str | None) -> None:
    """Refuse a module's or call's `backend` unless it is None (auto) or a backend name."""
    if backend is not None:
        canonical_name(backend)


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the enclosed calls on `name` unless a module or call names its own backend.

    Example:
        >>> lstm, x = fastrnn.LSTM(8, 16), torch.randn(5, 3, 8)
        >>> with fastrnn.use_backend("reference"):
        ...     out, (h, c) = lstm(x)
        ...     fastrnn.explain(lstm, x).backend
        'reference'
    """
    token = _requested.set(canonical_name(name))
    try:
        yield
    finally:
        _requested.reset(token)


@torch.compiler.assume_constant_result
def _context_backend() -> str | None:
    """The name `use_backend` put in force here, or None.

    Dynamo cannot trace ContextVar.get: while torch.compile traces, the value at trace time is
    taken as a constant of the graph (after switching use_backend around an already compiled
    model, torch.compiler.reset() makes it trace again).
    """
    return _requested.get()


def backend_request(requested: str | None = None) -> tuple[str, str]:
    """(name, source): the backend name in force for a call and where it came from.

    source is 'argument' (the module's or call's own backend), 'use_backend', 'FASTRNN_BACKEND'
    or 'default' (nothing asked: auto). `None` and `'auto'` as an argument both defer to the
    context manager and the environment.
    """
    if requested is not None and canonical_name(requested) != "auto":
        return canonical_name(requested), "argument"
    context = _context_backend()
    if context is not None:
        return context, "use_backend"
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return canonical_name(env), ENV_VAR
    return "auto", "default"


def requested_backend(requested: str | None = None) -> str:
    """The backend name in force for a call: argument > use_backend() > FASTRNN_BACKEND > auto.

    `None` and `'auto'` as an argument both defer to the context manager and the environment.
    """
    return backend_request(requested)[0]


def triton_interpreter_enabled() -> bool:
    """True when Triton runs kernels on the CPU through its interpreter (read at start-up)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _triton_refusal(spec: RecurrenceSpec) -> str | None:
    """None when the triton backend can run `spec`, else the reason it cannot."""
    try:
        from fastrnn import kernels
    except ImportError as error:
        return f"triton is not installed ({error}); install fastrnn[triton]"
    # meta: shapes only, through the op's fake implementation (fastrnn.ops).
    if spec.device.type not in ("cuda", "meta") and not (
        spec.device.type == "cpu" and triton_interpreter_enabled()
    ):
        return (
            f"the triton backend runs on CUDA tensors (or on CPU with TRITON_INTERPRET=1 "
            f"exported before Python starts); got a {spec.device.type} tensor"
        )
    return kernels.refusal(spec)


def resolve_backend(requested: str | None, spec: RecurrenceSpec) -> tuple[str, str]:
    """Decide which implementation runs `spec`.

    Args:
        requested: a backend name or None (see `requested_backend` for precedence).
        spec: RecurrenceSpec of the call.
    Returns:
        (name, reason): name in {'reference', 'cpu', 'triton', 'torch'} and why it was chosen.
    Raises:
        BackendUnavailableError: an explicitly requested backend cannot run this call.
    """
    name = requested_backend(requested)
    if name == "reference":
        return name, "requested"
    if name == "torch":
        return name, "requested"
    if name == "cpu":
        refusal = cpu.refusal(spec)
        if refusal is not None:
            raise BackendUnavailableError(f"fastrnn backend 'cpu' cannot run this call: {refusal}")
        return name, "requested"
    if name == "triton":
        refusal = _triton_refusal(spec)
        if refusal is not None:
            raise BackendUnavailableError(f"fastrnn backend 'triton' cannot run this call: {refusal}")
        return name, "requested"
    if spec.device.type == "cuda":
        refusal = _triton_refusal(spec)
        choice = ("triton", "auto: CUDA tensor") if refusal is None else ("reference", refusal)
    elif spec.device.type == "cpu" and spec.double_backward:
        choice = ("reference", cpu.refusal(spec))
    elif spec.device.type == "cpu":
        choice = ("cpu", "auto: cpu tensor")
    else:
        choice = ("reference", f"auto: {spec.device.type} tensor")
    _log_auto_choice(spec, *choice)
    return choice


def _log_auto_choice(spec: RecurrenceSpec, name: str, reason: str) -> None:
    if torch.compiler.is_compiling():
        return  # logging calls graph-break Dynamo; the eager call logs the same choice
    key = (spec.mode, spec.device.type, spec.dtype, name)
    if key not in _logged_auto_choices:
        _logged_auto_choices.add(key)
        logger.info("fastrnn auto backend: %s %s %s -> %s (%s)", spec.mode, spec.device.type,
                    spec.dtype, name, reason)
