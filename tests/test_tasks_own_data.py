"""`fastrnn train dna|sine|sentiment --data FILE` and `fastrnn predict`: files the tests write
train end to end, the run saves what predict needs, and predict reads the same formats."""

import json

import pytest
import torch
from test_tasks import one_torch_thread  # noqa: F401  (autouse fixture)

from fastrnn.cli import main
from fastrnn.tasks import TASKS, record, train
from fastrnn.tasks.data import examples
from fastrnn.tasks.predict import predict_file

# The torch backend: these tests are about files and records, and it trains the fastest on a CPU.
FAST = {"backend": "torch", "size": "tiny", "quiet": True, "hidden": 8}


@pytest.fixture(scope="module")
def splice(tmp_path_factory):
    return examples.write_splice(tmp_path_factory.mktemp("data") / "splice.csv", n=240)


def test_dna_file_run_reports_test_metrics_and_predicts(splice, tmp_path):
    out = tmp_path / "run"
    run = train("dna", data=splice, out=out, epochs=2, class_weights=True, **FAST)
    record.validate(run)
    final = run["final"]
    assert final["metric"] == "test_accuracy" and run["config"]["restore_best"] is True
    assert run["config"]["positional"] == "learned" and run["config"]["patience"] == 10
    assert TASKS["dna"].resolve({"data": "f.csv"})["epochs"] == 40
    assert TASKS["dna"].resolve({"data": "f.csv", "size": "tiny"})["epochs"] == 3
    report = final["extras"]["report"]
    assert report["split"] == "test" and final["value"] == report["accuracy"]
    assert report["confusion"]["classes"] == ["EI", "IE", "N"]
    assert sum(map(sum, report["confusion"]["rows_true_columns_predicted"])) == report["n"] == 48
    assert set(report) >= {"per_class_accuracy", "mcc", "balanced_accuracy", "support"}
    assert final["extras"]["rows"] == {"train": 168, "val": 24, "test": 48}
    assert 1 <= final["extras"]["training"]["best_epoch"] <= 2
    assert {"model.pt", "preprocessing.json", "record.json"} <= {p.name for p in out.iterdir()}

    fasta = examples.write_splice(tmp_path / "splice.fa", n=240)
    result = predict_file(out, fasta)
    assert result.columns == ["id", "predicted", "p_EI", "p_IE", "p_N", "label"]
    assert len(result.rows) == 240 and result.rows[0][0] == "s1"
    assert all(abs(sum(row[2:5]) - 1) < 1e-4 for row in result.rows)
    # The restored model scores the file's test rows as the run did: same preprocessing.
    test_rows = json.loads((out / "preprocessing.json").read_text())["spec"]
    assert test_rows["classes"] == ["EI", "IE", "N"] and test_rows["length"] == 60


def test_variable_lengths_ambiguity_codes_and_position_options(tmp_path):
    rows = [(f"{'ACGTN'[k % 5] * (4 + k % 7)}RYACGT", "ab"[k % 2]) for k in range(60)]
    path = examples.write_csv(tmp_path / "v.tsv", ["seq", "class"], rows)
    out = tmp_path / "run"
    run = train("dna", data=path, out=out, epochs=1, sequence_column="seq", label_column="class",
                positional="learned", readout="both", **FAST)
    assert run["final"]["extras"]["lengths"] == [10, 16]
    longer = examples.write_csv(tmp_path / "long.tsv", ["seq"], [("ACGT",), ("A" * 17,)])
    with pytest.raises(ValueError, match=r"long.tsv, line 3: a sequence of 17 letters is longer "
                                         "than the 16"):
        predict_file(out, longer)
    shorter = predict_file(out, examples.write_csv(tmp_path / "s.tsv", ["seq"], [("ACG",)]))
    assert shorter.columns == ["id", "predicted", "p_a", "p_b"] and shorter.summary == {"n": 1}


def test_sine_file_run_is_normalised_split_in_time_and_beside_the_baselines(tmp_path):
    path = examples.write_sunspots(tmp_path / "sun.csv", n_months=300)
    out = tmp_path / "run"
    run = train("sine", data=path, out=out, window=12, season=12, epochs=3, patience=1, **FAST)
    extras = run["final"]["extras"]
    report = extras["report"]
    assert run["final"]["metric"] == "test_mse" and run["final"]["value"] == report["mse"]
    assert set(report) >= {"mae", "naive_mse", "naive_mae", "seasonal_naive_mse",
                           "seasonal_naive_mae", "skill_vs_naive"}
    assert extras["rows"] == {"train": 198, "val": 30, "test": 60}
    values = examples.sunspot_like(300, torch.Generator().manual_seed(0))
    assert extras["normalisation"]["mean"] == pytest.approx(float(values[:210].mean()), abs=0.05)
    result = predict_file(out, path)
    assert len(result.rows) == 300 - 12 + 1 and result.rows[-1][0] == "next"
    assert result.rows[-1][2] is None and set(result.summary) == {"n", "mse", "mae"}


def test_sentiment_reads_a_table_of_texts(tmp_path):
    path = examples.write_reviews(tmp_path / "reviews.csv", n_per_class=40)
    out = tmp_path / "run"
    run = train("sentiment", data=path, out=out, epochs=1, **FAST)
    assert run["final"]["metric"] == "test_accuracy"
    assert run["final"]["extras"]["report"]["confusion"]["classes"] == ["neg", "pos"]
    assert (run["final"]["extras"]["n_train"], run["final"]["extras"]["n_test"]) == (56, 16)
    assert predict_file(out, path).summary["n"] == 80


def test_cli_writes_runs_by_default_and_always_says_where(splice, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "dna", "--data", str(splice), "--size", "tiny", "--epochs", "1",
                 "--hidden", "8", "--backend", "torch", "--quiet", "--threads", "1"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("dna-")
    assert printed == [f"fastrnn train: files in runs/{run_dir.name}/: curves.png, dna_attention.png, "
                       "model.pt, preprocessing.json, record.json"]
    assert torch.get_num_threads() == 1
    csv_out = tmp_path / "p.csv"
    assert main(["predict", str(run_dir), "--data", str(splice), "--out", str(csv_out)]) == 0
    assert "240 predictions to" in capsys.readouterr().err
    assert csv_out.read_text().splitlines()[0] == "id,predicted,p_EI,p_IE,p_N,label"


def test_a_sweep_on_a_file_chooses_by_validation(splice, tmp_path):
    from fastrnn.tasks.sweep import run_sweep, table

    result = run_sweep("dna", {"hidden": [4, 8]}, log=lambda line: None, data=splice, epochs=1,
                       backend="torch", size="tiny", positional="none")
    rows = result["rows"]
    assert [r["metric_name"] for r in rows] == ["test_accuracy"] * 2
    best = max(rows, key=lambda r: r["val_metric"])
    assert result["best"] == best["label"]
    assert table(result).splitlines()[0] == ("| configuration | best val_accuracy | test_accuracy | "
                                             "s/epoch |")


@pytest.mark.parametrize("argv, content, message", [
    (["train", "dna"], "sequence,label\nACGT,a\nAXGT,b\n",
     "line 3: letter 'X' at position 2 is not a nucleotide or IUPAC code"),
    (["train", "dna", "--set", "label_column=kind"], "sequence,label\nACGT,a\n",
     "no column 'kind' (columns: sequence, label)"),
    (["train", "sine", "--set", "window=30"], "value\n" + "1\n2\n" * 10,
     "a series of 20 values is too short for window 30 with val_fraction 0.1 and "
     "test_fraction 0.2: no training targets left; it needs at least 44 values"),
    (["train", "sine"], "value\n" + "3\n" * 60, "the training part of column 'value' is constant"),
    (["train", "majority"], "x\n1\n", "task 'majority' generates its data and reads no file"),
    (["train", "dna", "--column", "x"], "x\n1\n", "unknown option(s) for task 'dna': column"),
    (["train", "dna", "--threads", "0"], "x\n1\n", "--threads must be at least 1"),
    (["train", "dna", "--set", "val_fraction=0"], "x\n1\n", "val_fraction must be in (0, 1)"),
    (["predict", "nowhere"], "x\n1\n", "run directory nowhere does not exist"),
])
def test_cli_file_errors_are_one_line(argv, content, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text(content)
    assert main([*argv, "--data", "data.csv"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fastrnn {argv[0]}: error:") and message in err
    assert err.count("\n") == 1 and not list(tmp_path.glob("runs/*"))


def test_a_missing_matplotlib_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    assert main(["train", "majority", "--size", "tiny", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err == ("fastrnn train: error: the plots need matplotlib, which is not installed: "
                   "pip install 'fastrnn[bench]' (or pip install matplotlib)\n")
    assert not (tmp_path / "run").exists()
