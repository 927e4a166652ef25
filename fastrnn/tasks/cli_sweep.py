"""`fastrnn sweep <task>`: a grid over comma-separated values, with a results table and plot.

Example:
    fastrnn sweep majority --hidden 16,32 --layers 1,2 --lr 1e-3,1e-2 --out runs/sweep
    fastrnn sweep sine --rnn lstm,gru,rnn --epochs 20 --out runs/speed   # speed vs accuracy
    fastrnn sweep dna --data splice.csv --hidden 16,32 --set positional=learned

With --data the best configuration is the one with the best validation metric; the test metric
is shown beside it, never used to choose.
"""

import argparse
import sys

from fastrnn.tasks import TASKS, get_task
from fastrnn.tasks.cli_train import USER_ERRORS
from fastrnn.tasks.options import add_common, options_epilog, parse_sets, set_threads
from fastrnn.tasks.sweep import AXES, parse_axis, run_sweep, table


def add_arguments(parser):
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = options_epilog(TASKS)
    add_common(parser, TASKS)
    for name in AXES:
        parser.add_argument(f"--{name.replace('_', '-')}", default=None, metavar="V1,V2,...",
                            help=f"comma-separated values of {name} to sweep")
    parser.add_argument("--epochs", type=int, default=None, help="epochs for every run")
    parser.add_argument("--bidirectional", action="store_true", default=None)
    parser.add_argument("--out", default=None,
                        help="directory for sweep.json, sweep.md, sweep.png and each run")


def run(args):
    try:
        set_threads(args.threads)
        task = get_task(args.task)
        axes = {name: parse_axis(name, getattr(args, name)) for name in AXES
                if getattr(args, name) is not None}
        fixed = parse_sets(args.set, task)
        for key in ("size", "epochs", "bidirectional"):
            if getattr(args, key) is not None:
                fixed[key] = getattr(args, key)
        for key in ("data_dir", "data"):
            if getattr(args, key) is not None:
                fixed[key] = getattr(args, key)
        log = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
        result = run_sweep(args.task, axes, out=args.out, log=log, backend=args.backend,
                           device=args.device, seed=args.seed, **fixed)
    except USER_ERRORS as error:
        print(f"fastrnn sweep: error: {error}", file=sys.stderr)
        return 2
    print(table(result))
    return 0
