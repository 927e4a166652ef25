"""`fastrnn predict RUN_DIR --data FILE`: predictions of a saved run, as CSV.

Example:
    fastrnn predict runs/dna-20250101-120000 --data new.fasta --out predictions.csv
    fastrnn predict runs/sine-20250101-120000 --data sunspots.csv      # CSV on stdout
"""

import csv
import json
import os
import sys

from fastrnn.tasks.cli_train import USER_ERRORS
from fastrnn.tasks.options import add_threads, set_threads
from fastrnn.tasks.predict import predict_file


def add_arguments(parser):
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a directory `fastrnn train` wrote")
    parser.add_argument("--data", required=True, metavar="FILE",
                        help="the file to predict, in the format the run was trained on "
                             "(labels optional)")
    parser.add_argument("--out", default=None, metavar="FILE",
                        help="write the CSV here (default: standard output)")
    parser.add_argument("--column", default=None,
                        help="sine: the series column, when it differs from the training file's")
    parser.add_argument("--backend", default="auto", help="fastrnn backend (default: auto)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    add_threads(parser)


def run(args):
    try:
        set_threads(args.threads)
        result = predict_file(args.run_dir, args.data, backend=args.backend, device=args.device,
                              column=args.column)
    except USER_ERRORS as error:
        print(f"fastrnn predict: error: {error}", file=sys.stderr)
        return 2
    handle = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    try:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows(result.rows)
        handle.flush()
    except BrokenPipeError:
        # A reader such as `head` stopped early: not an error; keep Python from reporting it
        # again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        if args.out:
            handle.close()
    # The summary goes to stderr so that stdout stays a clean CSV.
    where = f" to {args.out}" if args.out else ""
    print(f"fastrnn predict: {len(result.rows)} predictions{where}; "
          f"{json.dumps(result.summary)}", file=sys.stderr)
    return 0
