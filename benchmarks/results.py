"""Result files: one JSON per run (validated against schema.py) plus flat CSV exports.

Scratch runs go to benchmarks/scratch/<device>/ (git-ignored); curated runs, the ones committed,
go to benchmarks/results/<device>/<date>-<sha>.json.
"""

import csv
import datetime
import json
from pathlib import Path

from benchmarks import schema

HERE = Path(__file__).resolve().parent
SCRATCH = HERE / "scratch"
CURATED = HERE / "results"

# Columns of the CSV exports: every scalar of a row, in schema order (parity flattened).
ROW_COLUMNS = [key for key in schema.ROW["required"] if key not in ("parity", "sweeps")]
ROW_COLUMNS += ["parity_ok", "parity_T", "parity_worst", "parity_worst_rel_rms", "parity_failed"]
TASK_COLUMNS = [key for key in schema.TASK_ROW["required"] if key != "epochs"] + ["n_epochs"]


def build(*, command, device, grids, settings, env, providers, rows, tasks):
    """Assemble the result dict of a run."""
    from fastrnn.environment import device_slug

    return {
        "schema": schema.SCHEMA_ID,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "device": device,
        "device_slug": device_slug(env),
        "grids": list(grids),
        "settings": settings,
        "env": env,
        "providers": providers,
        "rows": rows,
        "tasks": tasks,
    }


def default_path(result, out_dir=None, curated=False):
    """<out_dir or scratch/<device> or results/<device>>/<date>-<sha>.json; curated runs use the
    day, scratch runs the second so several runs a day do not overwrite each other."""
    env = result["env"]
    sha = (env.get("git_commit") or "nogit")[:7] + ("-dirty" if env.get("git_dirty") else "")
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y-%m-%d") if curated else now.strftime("%Y-%m-%dT%H%M%S")
    folder = Path(out_dir) if out_dir else (CURATED if curated else SCRATCH) / result["device_slug"]
    return folder / f"{stamp}-{sha}.json"


def _flat_row(row):
    flat = {key: row[key] for key in ROW_COLUMNS if key in row}
    gate = row["parity"]
    flat.update(parity_ok=None if gate is None else gate["ok"],
                parity_T=None if gate is None else gate["T"],
                parity_worst=None if gate is None else gate["worst"],
                parity_worst_rel_rms=None if gate is None else gate["worst_rel_rms"],
                parity_failed=None if gate is None else ";".join(gate["failed"]))
    return flat


def _write_csv(path, columns, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def write(result, path):
    """Validate and write `result` to `path` (JSON) and its CSV exports beside it.

    Returns the written paths: [json, rows csv] plus the tasks csv when the run has task rows.
    """
    schema.validate(result)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    written = [path, path.with_suffix(".csv")]
    _write_csv(written[1], ROW_COLUMNS,
               [_flat_row(r) for r in result["rows"]])
    if result["tasks"]:
        written.append(path.with_name(path.stem + "-tasks.csv"))
        _write_csv(written[2], TASK_COLUMNS,
                   [{**{k: r[k] for k in TASK_COLUMNS[:-1]}, "n_epochs": len(r["epochs"])}
                    for r in result["tasks"]])
    return written


def load(path):
    """Read and validate a result file (files of an earlier schema version are upgraded first)."""
    result = schema.upgrade(json.loads(Path(path).read_text()))
    schema.validate(result)
    return result
