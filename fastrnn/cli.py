"""The `fastrnn` command line: `fastrnn bench | train | sweep | predict | parity | env`.

Each command lives with the code it drives; this file only wires the sub-commands together.
Command modules expose `add_arguments(parser)` and `run(args) -> int`.
"""

import argparse
import importlib
import sys

# name -> (module, one-line help); modules are imported only when their command runs.
COMMANDS = {
    "bench": ("fastrnn.bench_cli", "run a benchmark grid and write result files"),
    "train": ("fastrnn.tasks.cli_train", "train a documented task on a backend"),
    "sweep": ("fastrnn.tasks.cli_sweep", "hyperparameter sweep over a documented task"),
    "predict": ("fastrnn.tasks.cli_predict", "predictions of a saved `train` run on a file"),
    "parity": ("fastrnn.parity_cli", "check a backend against the float64 reference"),
    "env": ("fastrnn.environment", "print the environment block used in result files"),
    "doctor": ("fastrnn.doctor", "check that this install works: environment, backend choice, parity, timing"),  # noqa: E501
    "gpu-run": ("fastrnn.gpu_run", "the prepared GPU check: doctor, gpu tests, compute-sanitizer, headline benchmark"),  # noqa: E501
}


def build_parser():
    parser = argparse.ArgumentParser(prog="fastrnn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    # Two passes: the sub-command's own options come from its module, imported on demand.
    known, _ = parser.parse_known_args(argv[:1] or ["--help"])
    module = importlib.import_module(COMMANDS[known.command][0])
    command_parser = argparse.ArgumentParser(prog=f"fastrnn {known.command}",
                                             description=COMMANDS[known.command][1])
    module.add_arguments(command_parser)
    args = command_parser.parse_args(argv[1:])
    return module.run(args)


if __name__ == "__main__":
    sys.exit(main())
