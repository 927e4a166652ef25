"""The documented tasks: the classic PyTorch RNN tutorials, built on fastrnn's modules.

    import fastrnn.tasks
    record = fastrnn.tasks.train("sine", backend="reference", epochs=20, out="runs/sine")
    record["final"]          # {'metric': 'val_mse', 'value': ..., 'extras': {...}}
    fastrnn.tasks.train("dna", size="tiny", quiet=True)   # a seconds-long smoke run
    fastrnn.tasks.train("dna", data="splice.csv", out="runs/splice")   # the user's own file

`TASKS` maps each CLI name to its task object; `train` runs one and returns its JSON record.
"""

import time
from pathlib import Path

from fastrnn.tasks import artifacts, plots, record
from fastrnn.tasks.base import RunContext
from fastrnn.tasks.dna import DNA
from fastrnn.tasks.majority import Majority
from fastrnn.tasks.majority_rnn import MajorityRNN
from fastrnn.tasks.memory import Memory
from fastrnn.tasks.runtime import check_backend, environment, resolve_device, seed_everything
from fastrnn.tasks.sentiment import Sentiment
from fastrnn.tasks.sine import Sine

TASKS = {task.name: task for task in (Majority(), MajorityRNN(), Sentiment(), Sine(), DNA(),
                                      Memory())}

__all__ = ["TASKS", "get_task", "train"]


def get_task(name):
    """The task registered under `name`; ValueError listing the valid names otherwise."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]


def train(name, *, backend="auto", rnn=None, epochs=None, hidden=None, layers=None,
          bidirectional=None, dropout=None, device="cpu", seed=0, out=None, quiet=False,
          **task_options):
    """Train task `name` and return its run record (a JSON-able dict).

    Args:
        name: a key of TASKS ('majority', 'majority-rnn', 'sentiment', 'sine', 'dna', 'memory').
        backend: 'auto' | 'reference' | 'triton' | 'torch' for every recurrent module.
        rnn, epochs, hidden, layers, bidirectional, dropout: model/training settings; None means the
            task's tutorial default.
        device: 'cpu' or 'cuda'. seed: seeds data, initialisation and shuffling.
        out: directory for record.json, plots, model.pt and preprocessing.json (created); None
            writes nothing.
        quiet: no progress bars or per-epoch lines.
        task_options: lr, lr_schedule, batch_size, grad_clip, patience, restore_best,
            class_weights, size ('full' | 'tiny'), plot_states, data (a file of your own for
            dna, sentiment, sine) and the task's own options (see TASKS[name].settings()).
    Returns:
        the record: {schema, task, config, backend {requested, resolved, reason}, environment,
        seed, epochs [{epoch, loss, metric, seconds, tokens_per_s, ...}], final {metric, value,
        higher_is_better, extras}, total_seconds, created, plots}.
    Raises:
        ValueError for an unknown task/option/value or a malformed data file (FileFormatError,
        naming the line); fastrnn.BackendUnavailableError when the requested backend cannot run
        here; MissingDependency when `out` is given and matplotlib is not installed (both
        checked before any data is built).
    """
    task = get_task(name)
    settings = {"rnn": rnn, "epochs": epochs, "hidden": hidden, "layers": layers,
                "bidirectional": bidirectional, "dropout": dropout, **task_options}
    config = task.resolve(settings)
    torch_device = resolve_device(device)
    for kind in task.model_rnn(config):
        requested, resolved, reason = check_backend(backend, kind, config["hidden"], torch_device)
    out = Path(out) if out is not None else None
    created = out is not None and not out.exists()
    if out is not None:
        plots.available()
        out.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    ctx = RunContext(torch_device, requested, seed, out, quiet)
    ctx.log(f"{name}: backend {resolved} ({reason}), device {torch_device}, seed {seed}")
    start = time.perf_counter()
    try:
        result = task.run(config, ctx)
    except BaseException:
        # A data file that fails to read leaves no empty run directory behind.
        if created and not any(out.iterdir()):
            out.rmdir()
        raise
    total = time.perf_counter() - start
    if out is not None:
        result.plots.insert(0, plots.curves(result.epochs, task.metric, out / "curves.png", name))
    run = record.build(task, config, {"requested": requested, "resolved": resolved,
                                      "reason": reason},
                       environment(torch_device), seed, result, total)
    record.validate(run)
    if out is not None:
        record.write(run, out / "record.json")
        if result.model is not None:
            artifacts.save(out, name, config, result)
    ctx.log(f"{name}: final {run['final']['metric']} {result.value:.4f} in {total:.1f}s")
    return run
