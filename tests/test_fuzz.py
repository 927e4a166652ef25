"""The differential fuzzer: fastrnn against torch.nn on well-formed and malformed calls.

For each of the six classes and each backend, hypothesis generates calls (fuzz_calls): valid ones
and ones with a wrong size, dtype, type or layout, a malformed PackedSequence, NaN or infinity
in the input, the state or a weight. Each runs on torch.nn and on fastrnn with the same weights
and values, in a worker process so that a crash fails the call instead of killing the run
(fuzz_worker). Both must make the same decision; errors must have the same type and, where
torch's message is about the RNN rather than an internal op, the same message; results must
agree in every output, final state and gradient, NaN and infinity positions included
(fuzz_runner). The only exceptions are the documented entries of fuzz_allowlist.

The default run does a few hundred calls per class on the reference and fewer on the other
backends (triton runs through the interpreter); `-m slow` runs ten times as many.
"""

import pytest
from fuzz_allowlist import allowed
from fuzz_calls import CELL_KINDS, LAYER_KINDS, calls, describe
from fuzz_worker import Worker
from helpers import BACKENDS
from hypothesis import HealthCheck, given, settings

# Calls per class in the default run; a backend not named here gets DEFAULT_CALLS.
CALLS = {"reference": 200, "triton": 12}
DEFAULT_CALLS = 40
SLOW_FACTOR = 10
ACCEPTED = ("same", "setup")  # setup: a call the builder cannot express (on neither side)


@pytest.fixture(scope="module")
def worker():
    with Worker() as running:
        yield running


def _fuzz(kind, backend, worker, examples):
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(call=calls(kind, backend))
    def check(call):
        verdict = worker.run(call)
        if verdict.category not in ACCEPTED and allowed(call, verdict) is None:
            raise AssertionError(f"{verdict.category}: {describe(call)}\n    {verdict.detail}")

    check()


def _params(factor):
    marks = [pytest.mark.slow] if factor > 1 else []
    return [pytest.param(kind, backend, CALLS.get(backend, DEFAULT_CALLS) * factor,
                         id=f"{backend}-{kind}",
                         marks=marks + ([pytest.mark.triton] if backend == "triton" else []))
            for backend in BACKENDS for kind in LAYER_KINDS + CELL_KINDS]


@pytest.mark.parametrize("kind, backend, examples", _params(1))
def test_fastrnn_agrees_with_torch_nn(kind, backend, examples, worker):
    _fuzz(kind, backend, worker, examples)


@pytest.mark.parametrize("kind, backend, examples", _params(SLOW_FACTOR))
def test_fastrnn_agrees_with_torch_nn_at_length(kind, backend, examples, worker):
    _fuzz(kind, backend, worker, examples)
