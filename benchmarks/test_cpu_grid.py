"""The `cpu` grid as pytest-benchmark tests: `pytest benchmarks/ --benchmark-only`.

Same cases, providers, workloads and parity gate as `fastrnn bench cpu`; pytest-benchmark does
the timing and its own reporting (--benchmark-json, --benchmark-compare). A provider that cannot
run here is skipped with its reason; a provider that fails the parity gate fails the test and is
not timed.
"""

import functools

import pytest

from benchmarks import parity
from benchmarks.cases import GRIDS, MODES, PROVIDERS
from benchmarks.runner import UNAVAILABLE
from benchmarks.workload import Workload

DEVICE = "cpu"


@functools.cache
def _gate(case, provider):
    """The gate once per (case, provider), shared by its modes; the refusal text if unavailable."""
    try:
        return parity.gate(case, provider, DEVICE), None
    except UNAVAILABLE as error:
        return None, str(error)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", GRIDS["cpu"].cases, ids=lambda case: case.id)
def test_cpu_grid(benchmark, case, provider, mode):
    gate, refusal = _gate(case, provider)
    if refusal is not None:
        pytest.skip(refusal)
    assert gate.ok, "parity gate failed: " + ", ".join(gate.to_json()["failed"])
    fn = Workload(case, provider, mode, DEVICE).closure()
    benchmark.group = f"{case.id} {mode}"
    benchmark.extra_info.update(case=case.id, provider=provider, mode=mode, T=case.T,
                                tokens=case.tokens, parity_T=gate.T,
                                parity_worst_rel_rms=gate.to_json()["worst_rel_rms"])
    benchmark.pedantic(fn, rounds=5, iterations=1, warmup_rounds=1)
