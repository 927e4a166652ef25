"""The run-record schema check rejects what the benchmark harness could not read."""

import copy

import pytest
import torch
from test_tasks import one_torch_thread  # noqa: F401  (autouse fixture)

from fastrnn.tasks import record, train


@pytest.fixture(scope="module")
def good():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # as one_torch_thread, which is per test and starts after this
    try:
        return train("majority-rnn", backend="reference", size="tiny", epochs=2, quiet=True)
    finally:
        torch.set_num_threads(threads)


def test_a_real_record_validates(good):
    assert record.validate(good) is good
    assert good["schema"] == record.SCHEMA
    assert good["final"]["metric"] == "val_accuracy"
    assert set(good["environment"]) >= {"python", "torch", "fastrnn", "device", "cpu_count"}
    assert good["config"]["lr"] == 1e-2 and good["config"]["hidden"] == 16


@pytest.mark.parametrize("mutate, match", [
    (lambda r: r.pop("epochs"), "missing field 'epochs'"),
    (lambda r: r.update(epochs=[]), "record.epochs: empty"),
    (lambda r: r["epochs"][1].pop("tokens_per_s"), r"epochs\[1\]: missing field 'tokens_per_s'"),
    (lambda r: r["epochs"][0].update(loss="low"), r"epochs\[0\].loss: expected float"),
    (lambda r: r["epochs"][0].update(metric=float("nan")), "not finite"),
    (lambda r: r["final"].update(higher_is_better="yes"), "higher_is_better: expected bool"),
    (lambda r: r.update(schema="other/1"), "record.schema"),
    (lambda r: r["backend"].pop("resolved"), "missing field 'resolved'"),
    (lambda r: r.update(seed=True), "seed: expected int"),
])
def test_schema_violations_are_named(good, mutate, match):
    bad = copy.deepcopy(good)
    mutate(bad)
    with pytest.raises(ValueError, match=match):
        record.validate(bad)


def test_non_json_values_are_rejected(good):
    bad = copy.deepcopy(good)
    bad["final"]["extras"]["tensor"] = object()
    with pytest.raises(TypeError):
        record.validate(bad)
