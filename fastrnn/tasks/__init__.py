"""The documented tasks: the classic PyTorch RNN tutorials, built on fastrnn's modules.

    import fastrnn.tasks
    record = fastrnn.tasks.train("sine", backend="reference", epochs=20, out="runs/sine")
    record["final"]          # {'metric': 'val_mse', 'value': ..., 'extras': {...}}
    fastrnn.tasks.train("dna", size="tiny", quiet=True)   # a seconds-long smoke run

`TASKS` maps each CLI name to its task object; `train` runs one and returns its JSON record.
"""

import time
from pathlib import Path

from fastrnn.tasks import plots, record
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
        out: directory for record.json and plots (created); None writes nothing.
        quiet: no progress bars or per-epoch lines.
        task_options: lr, batch_size, grad_clip, size ('full' | 'tiny'), plot_states, and the task's
            own options (see TASKS[name].settings()).
    Returns:
        the record: {schema, task, config, backend {requested, resolved, reason}, environment,
        seed, epochs [{epoch, loss, metric, seconds, tokens_per_s, ...}], final {metric, value,
        higher_is_better, extras}, total_seconds, created, plots}.
    Raises:
        ValueError for an unknown task/option/value; fastrnn.BackendUnavailableError when the
        requested backend cannot run here (checked before any data is built).
    """
    task = get_task(name)
    settings = {"rnn": rnn, "epochs": epochs, "hidden": hidden, "layers": layers,
                "bidirectional": bidirectional, "dropout": dropout, **task_options}
    config = task.resolve(settings)
    torch_device = resolve_device(device)
    for kind in task.model_rnn(config):
        requested, resolved, reason = check_backend(backend, kind, config["hidden"], torch_device)
    out = Path(out) if out is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    ctx = RunContext(torch_device, requested, seed, out, quiet)
    ctx.log(f"{name}: backend {resolved} ({reason}), device {torch_device}, seed {seed}")
    start = time.perf_counter()
    result = task.run(config, ctx)
    total = time.perf_counter() - start
    if out is not None:
        result.plots.insert(0, plots.curves(result.epochs, task.metric, out / "curves.png", name))
    run = record.build(task, config, {"requested": requested, "resolved": resolved,
                                      "reason": reason},
                       environment(torch_device), seed, result, total)
    record.validate(run)
    if out is not None:
        record.write(run, out / "record.json")
    ctx.log(f"{name}: final {task.metric} {result.value:.4f} in {total:.1f}s")
    return run
