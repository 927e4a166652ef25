"""Every documented task trains end to end on its tiny configuration on the reference backend."""

import json

import pytest
import torch
from matplotlib import image as mpimg

import fastrnn
from fastrnn.tasks import TASKS, record, train

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The task models are tiny: a second intra-op thread only spins, and on a shared machine the
    spinning costs ten times the CPU of the work. Restored after each test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
SMALL_TASKS = ["majority", "majority-rnn", "sine", "dna", "memory"]
TASK_PLOTS = {"sine": {"sine_prediction.png"}, "dna": {"dna_attention.png"},
              "memory": {"memory_accuracy.png"}}


def assert_valid_png(path):
    with open(path, "rb") as handle:
        assert handle.read(8) == PNG_SIGNATURE, path
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 50 and pixels.shape[1] > 50


def beats_chance(run):
    final = run["final"]
    chance = final["extras"]["chance"]
    return final["value"] > chance if final["higher_is_better"] else final["value"] < chance


@pytest.mark.parametrize("name", SMALL_TASKS)
def test_tiny_run_learns_writes_plots_and_a_valid_record(name, tmp_path):
    run = train(name, backend="reference", size="tiny", out=tmp_path, quiet=True,
                plot_states=True)
    assert record.validate(run) is run
    assert run["backend"] == {"requested": "reference", "resolved": "reference",
                              "reason": "requested"}
    assert run["config"]["size"] == "tiny"
    assert len(run["epochs"]) == run["config"]["epochs"]
    assert all(row["seconds"] > 0 and row["tokens_per_s"] > 0 for row in run["epochs"])
    assert beats_chance(run), run["final"]
    on_disk = json.loads((tmp_path / "record.json").read_text())
    assert on_disk == json.loads(json.dumps(run))
    expected = {"curves.png", "states.png"} | TASK_PLOTS.get(name, set())
    assert {p.name for p in tmp_path.glob("*.png")} == expected
    assert sorted(run["plots"]) == sorted(str(p) for p in tmp_path.glob("*.png"))
    for path in run["plots"]:
        assert_valid_png(path)


def test_same_seed_same_record_different_seed_different_data():
    first = train("majority-rnn", backend="reference", size="tiny", epochs=1, quiet=True, seed=3)
    again = train("majority-rnn", backend="reference", size="tiny", epochs=1, quiet=True, seed=3)
    other = train("majority-rnn", backend="reference", size="tiny", epochs=1, quiet=True, seed=4)
    assert first["epochs"][0]["loss"] == again["epochs"][0]["loss"]
    assert first["epochs"][0]["loss"] != other["epochs"][0]["loss"]


def test_torch_backend_reaches_the_same_metric():
    ours = train("dna", backend="reference", size="tiny", quiet=True)
    theirs = train("dna", backend="torch", size="tiny", quiet=True)
    assert theirs["backend"]["resolved"] == "torch"
    assert abs(ours["final"]["value"] - theirs["final"]["value"]) < 0.1


@pytest.mark.parametrize("variant", [
    {"rnn": "gru", "layers": 2, "dropout": 0.3},
    {"rnn": "rnn", "bidirectional": True},
    {"rnn": "lstm", "hidden": 8, "layers": 2, "bidirectional": True},
])
def test_sequence_task_variants(variant):
    run = train("sine", backend="reference", size="tiny", epochs=1, quiet=True, **variant)
    for key, value in variant.items():
        assert run["config"][key] == value


def test_cell_task_stacks_cells_and_rejects_bidirectional():
    run = train("majority", backend="reference", size="tiny", epochs=1, quiet=True, rnn="gru",
                layers=2, dropout=0.2)
    assert run["config"]["rnn"] == "gru" and run["config"]["layers"] == 2
    with pytest.raises(ValueError, match="bidirectional is not supported"):
        train("majority", size="tiny", bidirectional=True, quiet=True)


def test_memory_reports_accuracy_per_cell_and_length():
    run = train("memory", backend="reference", size="tiny", epochs=1, quiet=True)
    table = run["final"]["extras"]["accuracy"]
    assert set(table) == {"lstm", "gru", "rnn"}
    assert all(set(row) == {"5", "10"} for row in table.values())
    only = train("memory", size="tiny", epochs=1, quiet=True, rnn="gru", lengths="4")
    assert set(only["final"]["extras"]["accuracy"]) == {"gru"}


def test_dna_default_model_is_the_tutorials():
    """Without --data, dna builds the tutorial's model: no position parameters, attention pooling
    into Linear(64, 2), so the documented bar stands as measured."""
    from fastrnn.tasks.base import Splits

    task = TASKS["dna"]
    config = task.resolve({})
    model = task.make_model(config, "reference", Splits(None, None, {"spec": {
        "classes": ["no motif", "motif"], "length": config["seq_len"]}}))
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert shapes["embed.weight"] == (4, 16) and shapes["head.weight"] == (2, 64)
    assert shapes["score.weight"] == (1, 64) and not any("position" in n for n in shapes)


def test_default_settings_are_the_tutorials():
    assert TASKS["majority"].resolve({})["epochs"] == 30
    sentiment = TASKS["sentiment"].resolve({})
    assert (sentiment["embed"], sentiment["hidden"], sentiment["layers"]) == (64, 128, 2)
    assert TASKS["dna"].resolve({})["bidirectional"] is True
    assert TASKS["dna"].resolve({})["positional"] == "none"   # the tutorial's model without --data
    assert TASKS["dna"].resolve({})["patience"] == 0
    assert TASKS["sine"].resolve({"epochs": 3})["epochs"] == 3


@pytest.mark.parametrize("call, error, match", [
    (dict(name="nope"), ValueError, "unknown task 'nope'"),
    (dict(name="sine", colour="red"), ValueError, "unknown option.*colour"),
    (dict(name="sine", rnn="transformer"), ValueError, "supports rnn in"),
    (dict(name="sine", size="huge"), ValueError, "unknown size 'huge'"),
    (dict(name="sine", hidden=0), ValueError, "hidden must be a positive integer"),
    (dict(name="sine", dropout=1.5), ValueError, "dropout must be in"),
    (dict(name="sine", backend="fastest"), ValueError, "Unknown fastrnn backend"),
    (dict(name="sine", device="tpu"), ValueError, "device must be 'cpu' or 'cuda'"),
    (dict(name="sine", device="mps"), ValueError, "device must be 'cpu' or 'cuda'"),
    (dict(name="memory", rnn="lstm,cnn"), ValueError, "memory: rnn must be"),
    (dict(name="dna", motif="XYZ"), ValueError, "motif must be"),
])
def test_bad_input_is_a_clear_error(call, error, match):
    settings = {"size": "tiny", **call}
    name = settings.pop("name")
    with pytest.raises(error, match=match):
        train(name, quiet=True, **settings)


def test_unavailable_backend_fails_before_training(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(fastrnn.BackendUnavailableError, match="triton"):
        train("sine", backend="triton", size="tiny", quiet=True)


def test_state_traces_have_units_by_time():
    from fastrnn.tasks.layers import CellStack, cell_states, recurrent, sequence_states

    x = torch.randn(1, 7, 3)
    lstm = recurrent("lstm", 3, 5, layers=2, backend="reference")
    states = sequence_states(lstm, x)
    assert sorted(states) == ["c layer 0", "c layer 1", "h layer 0", "h layer 1"]
    assert all(s.shape == (5, 7) for s in states.values())
    # Stepping one step at a time reproduces the full-sequence top-layer output.
    output, _ = lstm(x)
    torch.testing.assert_close(states["h layer 1"], output[0].t())
    gru = sequence_states(recurrent("gru", 3, 4, bidirectional=True, backend="reference"), x)
    assert [s.shape for s in gru.values()] == [(8, 7)]
    stack = CellStack("lstm", 3, 6, layers=2, backend="reference")
    traced = cell_states(stack, x)
    assert sorted(traced) == ["c layer 0", "c layer 1", "h layer 0", "h layer 1"]
    torch.testing.assert_close(traced["h layer 1"][:, -1], stack(x)[0])
    assert stack.trace is None


def test_memory_gate_bias_opens_the_lstm_forget_and_gru_update_gates():
    from fastrnn.tasks.layers import recurrent, set_memory_bias

    for kind in ("lstm", "gru"):
        module = set_memory_bias(recurrent(kind, 3, 4, layers=2, backend="reference"), 3.0)
        for layer in range(2):
            b_ih, b_hh = getattr(module, f"bias_ih_l{layer}"), getattr(module, f"bias_hh_l{layer}")
            assert torch.all(b_ih[4:8] == 3.0) and torch.all(b_hh[4:8] == 0.0)
            assert not torch.all(b_ih[:4] == 3.0)   # the other gates keep torch's init
    rnn = recurrent("rnn", 3, 4, backend="reference")
    before = rnn.bias_ih_l0.clone()
    assert torch.equal(set_memory_bias(rnn, 3.0).bias_ih_l0, before)
