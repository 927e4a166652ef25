"""pytest-benchmark set-up for `pytest benchmarks/ --benchmark-only` (the `cpu` grid).

The default test run (testpaths = ["tests"]) never collects this folder. Timings run on one
thread, as `fastrnn bench` does by default, and the saved machine info carries fastrnn's env block.
"""

import pytest
import torch

THREADS = 1


@pytest.fixture(scope="session", autouse=True)
def _threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(previous)


def pytest_benchmark_update_machine_info(config, machine_info):
    from fastrnn.environment import collect

    machine_info["fastrnn_env"] = {**collect(), "threads": THREADS}
