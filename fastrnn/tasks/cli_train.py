"""`fastrnn train <task>`: train one documented task, print a line per epoch, write a record.

Example:
    fastrnn train sine --backend reference --epochs 20 --out runs/sine
    fastrnn train sentiment --data-dir ~/data --set max_len=256 --out runs/imdb
    fastrnn train dna --data splice.csv --set positional=learned      # your own file
    fastrnn train sine --data sunspots.csv --column value --season 132

Files go to --out, by default runs/<task>-<YYYYmmdd-HHMMSS>/; the last line printed (even with
--quiet) says where.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from fastrnn.backends import BackendUnavailableError
from fastrnn.tasks import TASKS, get_task, train
from fastrnn.tasks.data.download import DownloadError
from fastrnn.tasks.data.imdb import ImdbFormatError
from fastrnn.tasks.deps import MissingDependency
from fastrnn.tasks.options import add_common, options_epilog, parse_sets, set_threads

# Errors that are the user's input or environment, reported as one line rather than a traceback.
# (FileFormatError, a malformed data file, is a ValueError.)
USER_ERRORS = (ValueError, FileNotFoundError, BackendUnavailableError, DownloadError,
               ImdbFormatError, MissingDependency)

# Flags that map to a task option of the same name (None = not given: the task's default).
OPTION_FLAGS = ("lr", "lr_schedule", "batch_size", "size", "plot_states", "patience",
                "class_weights", "column", "season", "data")


def add_arguments(parser):
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = options_epilog(TASKS)
    add_common(parser, TASKS)
    parser.add_argument("--rnn", choices=["lstm", "gru", "rnn"], default=None,
                        help="cell type (default: the task's; memory compares all three)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--hidden", type=int, default=None, help="hidden size")
    parser.add_argument("--layers", type=int, default=None, help="stacked recurrent layers")
    parser.add_argument("--bidirectional", action="store_true", default=None)
    parser.add_argument("--dropout", type=float, default=None,
                        help="dropout between layers and on the recurrent output")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate")
    parser.add_argument("--lr-schedule", choices=["none", "cosine", "plateau"], default=None,
                        help="learning-rate schedule (default none)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--patience", type=int, default=None,
                        help="stop after N epochs without a better validation metric (0: never; "
                             "default 0, with --data 10, sine 20)")
    parser.add_argument("--class-weights", action="store_true", default=None,
                        help="classification: weigh the loss by inverse class frequency")
    parser.add_argument("--column", default=None,
                        help="sine --data: the column holding the series (name, or number when "
                             "the file has no header)")
    parser.add_argument("--season", type=int, default=None,
                        help="sine --data: season length N for the seasonal naive baseline")
    parser.add_argument("--plot-states", action="store_true", default=None,
                        help="heatmap of hidden (and cell) states over time for one example")
    parser.add_argument("--out", default=None,
                        help="directory for record.json, plots, model.pt and preprocessing.json "
                             "(default: runs/<task>-<time>/)")


def task_options(args, task):
    """The keyword options `train` gets from parsed arguments (None = task default)."""
    options = parse_sets(args.set, task)
    for key in OPTION_FLAGS:
        if getattr(args, key, None) is not None:
            options[key] = getattr(args, key)
    if args.data_dir is not None:
        options["data_dir"] = args.data_dir
    return options


def default_out(task_name, root="runs"):
    """runs/<task>-<YYYYmmdd-HHMMSS>, with -2, -3, ... when two runs start in the same second."""
    base = Path(root) / f"{task_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, k = base, 2
    while path.exists():
        path, k = base.with_name(f"{base.name}-{k}"), k + 1
    return path


def run(args):
    try:
        set_threads(args.threads)
        task = get_task(args.task)
        out = Path(args.out) if args.out is not None else default_out(args.task)
        # train() checks every option and the backend before it creates `out`.
        record = train(args.task, backend=args.backend, rnn=args.rnn, epochs=args.epochs,
                       hidden=args.hidden, layers=args.layers, bidirectional=args.bidirectional,
                       dropout=args.dropout, device=args.device, seed=args.seed, out=out,
                       quiet=args.quiet, **task_options(args, task))
    except USER_ERRORS as error:
        print(f"fastrnn train: error: {error}", file=sys.stderr)
        return 2
    if not args.quiet:
        summary = {k: record[k] for k in ("task", "backend", "final", "total_seconds", "plots")}
        print(json.dumps(summary, indent=2))
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    print(f"fastrnn train: files in {out}/: {', '.join(files)}", flush=True)
    return 0
