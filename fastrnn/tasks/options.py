"""Command-line plumbing shared by `fastrnn train` and `fastrnn sweep`: task options as KEY=VALUE."""

import torch

from fastrnn.backends import BACKENDS


def parse_value(text, default):
    """Convert the string `text` to the type of the option's default (str when the default is None).

    'none' gives None; booleans accept true/false/1/0/yes/no.
    """
    if text.lower() == "none":
        return None
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean, got {text!r}")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if default is None:
        # Untyped options (limits that default to None) are integers when they look like one.
        return int(text) if text.lstrip("-").isdigit() else text
    return text


def parse_sets(pairs, task):
    """['key=value', ...] -> {key: typed value} using the task's defaults for types.

    Raises ValueError for a malformed pair or an option the task does not have.
    """
    settings = task.settings()
    parsed = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        if key not in settings:
            raise ValueError(f"unknown option {key!r} for task {task.name!r}; "
                             f"valid options: {', '.join(sorted(settings))}")
        try:
            parsed[key] = parse_value(value, settings[key])
        except ValueError as error:
            raise ValueError(f"option {key}: {error}") from error
    return parsed


def add_common(parser, tasks):
    """Arguments both commands take: the task, backend, device, seed, data and size options."""
    parser.add_argument("task", choices=list(tasks), help="which documented task")
    parser.add_argument("--backend", default="auto", choices=[*BACKENDS, "cudnn"],
                        help="fastrnn backend for every recurrent module (default: auto)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed for data, init and shuffling")
    parser.add_argument("--size", choices=["full", "tiny"], default=None,
                        help="'tiny' for a seconds-long smoke run (default: the tutorial's full size)")
    parser.add_argument("--data-dir", default=None,
                        help="sentiment: directory or archive holding aclImdb "
                             "(default: $FASTRNN_DATA, else ~/.cache/fastrnn)")
    parser.add_argument("--data", default=None, metavar="FILE",
                        help="dna, sentiment, sine: train on your own file (CSV/TSV, or FASTA for "
                             "dna; see docs/own-data.md)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any other task option, e.g. --set max_len=256 --set n_train=2000")
    add_threads(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")


def add_threads(parser):
    """--threads, with `fastrnn bench`'s default of one thread."""
    # The task models are small: extra intra-op threads mostly spin, and on a busy machine the
    # spinning made `train majority` take 15 minutes instead of 71 s. One thread, as bench.
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch (torch.set_num_threads; default 1, as "
                             "fastrnn bench)")


def set_threads(threads):
    """Apply --threads; ValueError for a count below 1."""
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)


def options_epilog(tasks):
    """Help text listing every task's settings and defaults."""
    from fastrnn.tasks.base import COMMON

    lines = ["task defaults (where they differ from the common ones) and task options;",
             "change with the flags above or --set KEY=VALUE:"]
    common = ", ".join(f"{k}={v}" for k, v in COMMON.items())
    lines.append(f"  common: {common}")
    for name, task in tasks.items():
        own = {k: v for k, v in task.settings().items()
               if k not in ("url", "sha256") and (k not in COMMON or v != COMMON[k])}
        lines.append(f"  {name}: " + ", ".join(f"{k}={v}" for k, v in own.items()))
        if task.reads_files:
            lines.append(f"  {name} --data FILE: " + ", ".join(
                f"{k}={v}" for k, v in task.file_defaults.items()))
    return "\n".join(lines)
