"""Where a run happens: seeding, device and backend checks, and the environment block of a record."""

import os
import platform
import random
import sys

import numpy as np
import torch

import fastrnn
from fastrnn.backends import RecurrenceSpec, canonical_name, resolve_backend

MODES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN_TANH"}


def seed_everything(seed):
    """Seed python, numpy and torch so a run is reproducible from its record."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name):
    """torch.device for 'cpu' / 'cuda' / 'cuda:N'; a clear error when CUDA is asked for but absent."""
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"device must be 'cpu' or 'cuda', got {name!r}") from error
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available on this machine")
    return device


def check_backend(backend, rnn, hidden, device):
    """Resolve the backend a model of cell type `rnn` would run on, before any data is built.

    Returns (canonical requested name, resolved name, reason). Raises BackendUnavailableError when an
    explicitly requested backend cannot run here (e.g. 'triton' on CPU without TRITON_INTERPRET=1).
    """
    requested = canonical_name(backend)
    spec = RecurrenceSpec(mode=MODES[rnn], device=device, dtype=torch.float32, hidden_size=hidden)
    resolved, reason = resolve_backend(requested, spec)
    return requested, resolved, reason


def environment(device):
    """JSON-able description of the machine and software a run used."""
    env = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "fastrnn": fastrnn.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    return env
