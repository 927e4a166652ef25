"""fastrnn layers train under DistributedDataParallel and FSDP2 exactly as in one process.

Two ranks on gloo over 127.0.0.1 (CPU) each take half of the same global batch; after a few SGD
steps the parameters must equal (float64, to rounding) a single-process run on the whole batch.
Each rank is its own Python process (tests/distributed_worker.py), started by the test.
"""

import os
import socket
import subprocess
import sys

import pytest
import torch
from torch import distributed

from fastrnn.testing import assert_all_close

WORKER = os.path.join(os.path.dirname(__file__), "distributed_worker.py")
WORLD = 2

pytestmark = pytest.mark.skipif(not distributed.is_available() or
                                not distributed.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(wrapper, tmp_path):
    """Run `wrapper` on WORLD ranks (or one process for 'single'); the result of rank 0."""
    world = 1 if wrapper == "single" else WORLD
    port = _free_port()
    outs = [tmp_path / f"{wrapper}-{rank}.pt" for rank in range(world)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(WORKER)), os.environ.get("PYTHONPATH", "")]))
    processes = [subprocess.Popen([sys.executable, WORKER, wrapper, str(rank), str(world),
                                   str(port), str(out)], env=env, stderr=subprocess.PIPE,
                                  text=True)
                 for rank, out in enumerate(outs)]
    errors = []
    for process in processes:
        try:
            _, stderr = process.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        if process.returncode != 0:
            errors.append(stderr[-3000:])
    assert not errors, "\n".join(errors)
    return [torch.load(out) for out in outs]


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    """The single-process run on the whole batch."""
    return _run("single", tmp_path_factory.mktemp("single"))[0]


@pytest.mark.parametrize("wrapper", ["ddp", "fsdp"])
def test_training_matches_one_process(wrapper, expected, tmp_path):
    results = _run(wrapper, tmp_path)
    for result in results:
        assert_all_close(result["params"], expected["params"])
    # The loss each rank sees is its half's; their mean is the single run's.
    for step, loss in enumerate(expected["losses"]):
        mean = sum(r["losses"][step] for r in results) / len(results)
        assert_all_close({"loss": mean}, {"loss": loss})
