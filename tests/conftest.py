"""Shared test configuration: the backend fixture, a deterministic hypothesis profile, seeding."""

import pytest
import torch
from helpers import BACKENDS
from hypothesis import settings

settings.register_profile("fastrnn", derandomize=True, deadline=None, database=None,
                          print_blob=True)
settings.load_profile("fastrnn")


def pytest_configure(config):
    config.addinivalue_line("markers", "triton: runs the Triton kernels (interpreter on CPU)")


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same RNG state, so a failure reproduces on its own."""
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _poison_triton_outputs(request, monkeypatch):
    """Triton runs fill fresh kernel outputs with NaN, so an unwritten element fails a test."""
    callspec = getattr(request.node, "callspec", None)
    on_triton = callspec is not None and callspec.params.get("backend") == "triton"
    if on_triton or request.node.get_closest_marker("triton") is not None:
        monkeypatch.setenv("FASTRNN_POISON", "1")


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each backend of the one list in helpers.BACKENDS."""
    return request.param
