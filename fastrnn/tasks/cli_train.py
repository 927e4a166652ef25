"""`fastrnn train <task>`: train one documented task, print a line per epoch, write a record.

Example:
    fastrnn train sine --backend reference --epochs 20 --out runs/sine
    fastrnn train sentiment --data-dir ~/data --set max_len=256 --out runs/imdb
"""

import argparse
import json
import sys

from fastrnn.backends import BackendUnavailableError
from fastrnn.tasks import TASKS, get_task, train
from fastrnn.tasks.data.download import DownloadError
from fastrnn.tasks.data.imdb import ImdbFormatError
from fastrnn.tasks.options import add_common, options_epilog, parse_sets

# Errors that are the user's input or environment, reported as one line rather than a traceback.
USER_ERRORS = (ValueError, FileNotFoundError, BackendUnavailableError, DownloadError,
               ImdbFormatError)


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
    parser.add_argument("--dropout", type=float, default=None, help="dropout between layers")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--plot-states", action="store_true", default=None,
                        help="heatmap of hidden (and cell) states over time for one example")
    parser.add_argument("--out", default=None, help="directory for record.json and plots")


def task_options(args, task):
    """The keyword options `train` gets from parsed arguments (None = task default)."""
    options = parse_sets(args.set, task)
    for key in ("lr", "batch_size", "size", "plot_states"):
        if getattr(args, key, None) is not None:
            options[key] = getattr(args, key)
    if args.data_dir is not None:
        options["data_dir"] = args.data_dir
    return options


def run(args):
    try:
        task = get_task(args.task)
        record = train(args.task, backend=args.backend, rnn=args.rnn, epochs=args.epochs,
                       hidden=args.hidden, layers=args.layers, bidirectional=args.bidirectional,
                       dropout=args.dropout, device=args.device, seed=args.seed, out=args.out,
                       quiet=args.quiet, **task_options(args, task))
    except USER_ERRORS as error:
        print(f"fastrnn train: error: {error}", file=sys.stderr)
        return 2
    if not args.quiet:
        summary = {k: record[k] for k in ("task", "backend", "final", "total_seconds", "plots")}
        print(json.dumps(summary, indent=2))
    return 0
