"""What a run saves besides its record, so that `fastrnn predict` can use the model again.

    RUN_DIR/model.pt            the trained weights (state_dict; the best validation epoch's
                                when the run restored them), loaded with weights_only=True
    RUN_DIR/preprocessing.json  the task, its resolved settings and its `spec`: what the data
                                was turned into (classes, vocabulary, sequence length, the
                                series' normalisation), everything needed to rebuild the model
"""

import json
from pathlib import Path

import torch

MODEL = "model.pt"
PREPROCESSING = "preprocessing.json"
SCHEMA = "fastrnn.tasks.preprocessing/1"


def save(out, task_name, config, result):
    """Write model.pt and preprocessing.json for a run's result into `out`; returns the paths."""
    out = Path(out)
    state = {k: v.detach().cpu() for k, v in result.model.state_dict().items()}
    torch.save(state, out / MODEL)
    meta = {"schema": SCHEMA, "task": task_name, "config": config, "spec": result.spec}
    (out / PREPROCESSING).write_text(json.dumps(meta, indent=1) + "\n")
    return [out / MODEL, out / PREPROCESSING]


def load(run_dir):
    """-> (task name, config, spec, state_dict) of a saved run. FileNotFoundError / ValueError
    with what is missing or wrong."""
    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    for name in (PREPROCESSING, MODEL):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir} has no {name}: give the directory a "
                                    "`fastrnn train` run wrote (its --out)")
    try:
        meta = json.loads((run_dir / PREPROCESSING).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{run_dir / PREPROCESSING} is not valid JSON ({error})") from error
    if meta.get("schema") != SCHEMA:
        raise ValueError(f"{run_dir / PREPROCESSING}: schema {meta.get('schema')!r}, expected "
                         f"{SCHEMA!r}")
    state = torch.load(run_dir / MODEL, map_location="cpu", weights_only=True)
    return meta["task"], meta["config"], meta["spec"], state
