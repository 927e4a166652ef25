"""The `tasks` grid: each documented task trained per backend; seconds per epoch and final metric.

The check that gates these timings is the task's own metric, recorded next to the time: a backend
that trains faster to a worse model shows it in the same row. Tasks run in the 'tiny' preset by
default (seconds each, the main job's short configuration); `size='full'` gives tutorial settings.

The harness never downloads: the IMDB task runs only where the data is already on disk
($FASTRNN_DATA, the data-dir option, or fastrnn's cache) and is recorded unavailable otherwise.
"""

import statistics
import traceback

from tqdm.auto import tqdm

from fastrnn.backends import BackendUnavailableError, triton_interpreter_enabled

# The task names of docs/tasks.md, used to report them unavailable when fastrnn.tasks is missing.
DOCUMENTED = ("majority", "majority-rnn", "sentiment", "sine", "dna", "memory")
NEEDS_IMDB = ("sentiment",)


def _row(name, backend, device, size, status, reason=None, record=None):
    row = {"grid": "tasks", "task": name, "backend": backend, "device": str(device),
           "size": size, "status": status, "reason": reason, "resolved_backend": None,
           "metric": None, "final_metric": None, "higher_is_better": None, "epochs": [],
           "seconds_per_epoch": None, "tokens_per_s": None, "total_seconds": None,
           "speedup_vs_torch": None}
    if record is not None:
        epochs = [{key: e[key] for key in ("epoch", "loss", "metric", "seconds", "tokens_per_s")}
                  for e in record["epochs"]]
        # The first epoch carries one-off costs (allocator, kernel compilation); leave it out
        # of the per-epoch figure when there are later epochs to use.
        steady = epochs[1:] or epochs
        row.update(resolved_backend=record["backend"]["resolved"],
                   metric=record["final"]["metric"], final_metric=record["final"]["value"],
                   higher_is_better=record["final"]["higher_is_better"], epochs=epochs,
                   seconds_per_epoch=statistics.median(e["seconds"] for e in steady),
                   tokens_per_s=statistics.median(e["tokens_per_s"] for e in steady),
                   total_seconds=record["total_seconds"])
    return row


def _imdb_refusal(data_dir):
    """None when the IMDB data is on disk, else why the task cannot run without a download."""
    from fastrnn.tasks.data import imdb

    root = imdb.data_dir(data_dir)
    if imdb.find(root) is None:
        return (f"IMDB data not found in {root} (set FASTRNN_DATA or --data-dir; the benchmark "
                "harness never downloads)")
    return None


def run_one(name, backend, device, size, data_dir=None, seed=0):
    """One row: train task `name` on `backend` and record its epochs and final metric."""
    import fastrnn.tasks

    options = {"size": size}
    if backend == "triton" and str(device).startswith("cpu") and triton_interpreter_enabled():
        return _row(name, backend, device, size, "unavailable",
                    "the Triton interpreter (TRITON_INTERPRET=1) is never timed")
    if name in NEEDS_IMDB:
        refusal = _imdb_refusal(data_dir)
        if refusal is not None:
            return _row(name, backend, device, size, "unavailable", refusal)
        options["data_dir"] = data_dir
    try:
        record = fastrnn.tasks.train(name, backend=backend, device=str(device), seed=seed,
                                     quiet=True, **options)
    except BackendUnavailableError as error:
        return _row(name, backend, device, size, "unavailable", str(error))
    except Exception as error:  # a failing task is a result to record, not a crashed grid
        traceback.print_exc()
        return _row(name, backend, device, size, "error", f"{type(error).__name__}: {error}")
    return _row(name, backend, device, size, "ok", record=record)


def add_speedups(rows):
    """speedup_vs_torch = torch's seconds per epoch / this row's, for the same task."""
    baseline = {r["task"]: r["seconds_per_epoch"] for r in rows
                if r["backend"] == "torch" and r["status"] == "ok"}
    for row in rows:
        base = baseline.get(row["task"])
        if row["status"] == "ok" and base is not None and row["seconds_per_epoch"]:
            row["speedup_vs_torch"] = base / row["seconds_per_epoch"]
    return rows


def run_tasks(backends, device, size="tiny", names=None, data_dir=None, progress=True):
    """Rows for every task x backend; unavailable rows for all when fastrnn.tasks is missing."""
    try:
        from fastrnn.tasks import TASKS
    except ImportError as error:
        return [_row(name, backend, device, size, "unavailable",
                     f"fastrnn.tasks cannot be imported ({error})")
                for name in names or DOCUMENTED for backend in backends]
    names = list(names or TASKS)
    rows = []
    with tqdm(total=len(names) * len(backends), disable=not progress, unit="run",
              dynamic_ncols=True) as bar:
        for name in names:
            for backend in backends:
                bar.set_description(f"tasks {name} {backend}")
                rows.append(run_one(name, backend, device, size, data_dir))
                bar.update()
    return add_speedups(rows)
