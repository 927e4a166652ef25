"""`fastrnn train` and `fastrnn sweep` from the command line: outputs, records and clear errors."""

import json

import pytest
from test_tasks import one_torch_thread  # noqa: F401  (autouse fixture)

from fastrnn.cli import main
from fastrnn.tasks.data import synthetic


def test_train_prints_epoch_lines_and_writes_record_and_plots(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "majority-rnn", "--backend", "reference", "--size", "tiny", "--epochs",
                 "2", "--hidden", "8", "--plot-states", "--out", str(out), "--seed", "5"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "epoch 1/2  loss" in printed and "val_accuracy" in printed and "tok/s" in printed
    run = json.loads((out / "record.json").read_text())
    assert run["config"]["hidden"] == 8 and run["seed"] == 5 and len(run["epochs"]) == 2
    files = ["curves.png", "model.pt", "preprocessing.json", "record.json", "states.png"]
    assert sorted(p.name for p in out.iterdir()) == files
    assert json.loads(printed[printed.index("{") : printed.rindex("}") + 1])["final"] == run["final"]
    assert printed.splitlines()[-1] == f"fastrnn train: files in {out}/: {', '.join(files)}"


def test_train_variants_and_set_options(tmp_path):
    out = tmp_path / "run"
    code = main(["train", "sine", "--backend", "torch", "--size", "tiny", "--rnn", "gru",
                 "--layers", "2", "--dropout", "0.1", "--bidirectional", "--lr", "0.005",
                 "--batch-size", "16", "--set", "noise=0.05", "--epochs", "1", "--set", "n_points=120",
                 "--quiet", "--out", str(out)])
    assert code == 0
    config = json.loads((out / "record.json").read_text())["config"]
    assert (config["rnn"], config["layers"], config["bidirectional"]) == ("gru", 2, True)
    assert (config["lr"], config["batch_size"], config["noise"]) == (0.005, 16, 0.05)


def test_train_sentiment_with_data_dir(tmp_path):
    archive = synthetic.write_archive(tmp_path / "aclImdb_v1.tar.gz", 10)
    code = main(["train", "sentiment", "--backend", "reference", "--size", "tiny", "--epochs", "1",
                 "--data-dir", str(tmp_path), "--set", "max_len=20", "--quiet",
                 "--out", str(tmp_path / "run")])
    assert code == 0 and archive.exists()
    # --data with an aclImdb archive is the same as --data-dir: its own train/test split.
    code = main(["train", "sentiment", "--backend", "reference", "--size", "tiny", "--epochs", "1",
                 "--data", str(archive), "--set", "max_len=20", "--quiet",
                 "--out", str(tmp_path / "run2")])
    run = json.loads((tmp_path / "run2" / "record.json").read_text())
    assert code == 0 and run["config"]["data_dir"] == str(archive) and run["config"]["data"] is None
    assert run["final"]["metric"] == "val_accuracy"


@pytest.mark.parametrize("argv, message", [
    (["train", "sine", "--set", "colour=red"], "unknown option 'colour' for task 'sine'"),
    (["train", "sine", "--set", "noise"], "--set expects KEY=VALUE"),
    (["train", "sine", "--set", "epochs=many"], "option epochs: invalid literal"),
    (["train", "sine", "--backend", "triton", "--size", "tiny"], "triton"),
    (["train", "majority", "--bidirectional"], "bidirectional is not supported"),
    (["train", "sentiment", "--data-dir", "/nonexistent/aclImdb_v1.tar.gz"], "does not exist"),
    (["sweep", "sine", "--hidden", "8,x"], "--hidden: invalid literal"),
])
def test_bad_options_are_one_line_errors(argv, message, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.chdir(tmp_path)   # `train` writes to ./runs by default
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fastrnn {argv[0]}: error:") and message in err


def test_non_aclimdb_archive_from_the_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    other = synthetic.write_archive(tmp_path / "other.tar.gz", 2, prefix="reviews")
    assert main(["train", "sentiment", "--data-dir", str(other), "--quiet"]) == 2
    assert "does not have the aclImdb layout" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["train", "nope"], ["train", "sine", "--rnn", "cnn"],
                                  ["train", "sine", "--bogus"], ["sweep", "nope"]])
def test_unknown_task_or_flag_is_an_argparse_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err or "unrecognized arguments: --bogus" in err


def test_help_lists_every_task_and_its_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for name in ("majority", "majority-rnn", "sentiment", "sine", "dna", "memory"):
        assert f"  {name}: " in text
    assert "--plot-states" in text and "--data-dir" in text


def test_sweep_writes_table_json_and_plot(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", "majority-rnn", "--backend", "reference", "--size", "tiny", "--epochs",
                 "1", "--hidden", "4,8", "--lr", "1e-3,1e-2", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| hidden=4 lr=0.001 |" in printed and "(best)" in printed
    result = json.loads((out / "sweep.json").read_text())
    assert [row["settings"] for row in result["rows"]] == [
        {"hidden": 4, "lr": 0.001}, {"hidden": 4, "lr": 0.01},
        {"hidden": 8, "lr": 0.001}, {"hidden": 8, "lr": 0.01}]
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "sweep.md").read_text().startswith("| configuration |")
    assert (out / "run04" / "record.json").exists()


def test_sweep_over_cell_types_compares_speed_and_accuracy(tmp_path):
    code = main(["sweep", "sine", "--backend", "reference", "--size", "tiny", "--epochs", "1",
                 "--rnn", "lstm,gru,rnn", "--set", "n_points=120", "--quiet",
                 "--out", str(tmp_path)])
    assert code == 0
    rows = json.loads((tmp_path / "sweep.json").read_text())["rows"]
    assert [row["settings"]["rnn"] for row in rows] == ["lstm", "gru", "rnn"]
    assert all(row["seconds_per_epoch"] > 0 for row in rows)
