"""The `fastrnn bench`, `fastrnn parity` and `fastrnn env` commands end to end, on tiny shapes."""

import json

import fastrnn
from benchmarks import cases, results, schema
from fastrnn import cli


def test_bench_tiny_run_writes_json_csv_and_plots(tmp_path, capsys):
    out = tmp_path / "run.json"
    code = cli.main(["bench", "cpu", "tasks", "--tiny", "--limit", "2", "--providers", "torch",
                     "reference", "triton", "--modes", "fwd", "--min-run-time", "0.01",
                     "--max-run-time", "0.05", "--tasks", "majority-rnn", "--task-backends",
                     "torch", "triton", "--quiet", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    result = results.load(out)
    assert result["grids"] == ["cpu", "tasks"] and result["settings"]["threads"] == 1
    assert {r["status"] for r in result["rows"] if r["provider"] == "triton"} == {"unavailable"}
    torch_task, triton_task = result["tasks"]
    assert torch_task["status"] == "ok" and torch_task["final_metric"] is not None
    assert torch_task["epochs"] and torch_task["speedup_vs_torch"] == 1.0
    assert triton_task["status"] == "unavailable" and "triton" in triton_task["reason"].lower()
    assert "vs torch" in printed and f"result: {out}" in printed
    assert (tmp_path / "run.csv").exists() and (tmp_path / "run-tasks.csv").exists()
    plot_lines = [line for line in printed.splitlines() if line.startswith("plot: ")]
    assert plot_lines
    for line in plot_lines:
        assert open(line[len("plot: "):], "rb").read(4) == b"\x89PNG"

    # --compare of two files prints the change and draws it without running anything.
    code = cli.main(["bench", "--compare", str(out), str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "compared by each row's speedup vs torch" in printed
    assert "WARNING" not in printed and "1.00x" in printed
    assert (tmp_path / "run-vs-run.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_on_cpu_records_cuda_grids_as_unavailable(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    code = cli.main(["bench", "fastrnns", "--tiny", "--limit", "1", "--quiet", "--no-plots",
                     "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    rows = results.load(out)["rows"]
    assert rows and all(r["status"] == "unavailable" for r in rows)
    assert all(r["reason"] == "no CUDA device in this process" for r in rows)
    # One line for every provider of every case, the reason in full.
    names = ", ".join(sorted({r["provider"] for r in rows}, key=cases.provider_order))
    assert f"- {names}: unavailable in the case: no CUDA device in this process" in printed


def test_bench_without_harness_folder_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fastrnn, "__file__", str(tmp_path / "fastrnn" / "__init__.py"))
    assert cli.main(["bench", "cpu"]) == 2
    assert "needs the benchmarks/ folder of a source checkout" in capsys.readouterr().err


def test_bench_unknown_grid_is_an_error(capsys):
    assert cli.main(["bench", "nosuchgrid"]) == 2
    assert "unknown grid" in capsys.readouterr().err


def test_parity_command_prints_every_tensor(capsys):
    code = cli.main(["parity", "--mode", "lstm", "--backend", "reference", "--packed", "--T", "9",
                     "--layers", "2", "--bidirectional"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    for name in ("output", "h_n", "c_n", "grad_input", "grad_h0", "grad_c0",
                 "grad_weight_hh_l1_reverse", "grad_bias_ih_l0"):
        assert f"  {name}: rel_rms=" in printed
    assert printed.rstrip().endswith("ok: 22 tensors")


def test_env_command_prints_the_result_env_block(capsys):
    assert cli.main(["env", "--json"]) == 0
    block = json.loads(capsys.readouterr().out)
    assert set(schema.ENV_KEYS) <= set(block)
    assert block["fastrnn"] == fastrnn.__version__
