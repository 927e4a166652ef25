"""What every task shares: its settings (tutorial defaults, size presets, validation) and its run.

A task is a small class: data, model, metric, and any task-specific plots. `Task.run` trains one
model with the shared loop; tasks that train several models (memory) override it.
"""

import abc
import os
from dataclasses import dataclass, field
from pathlib import Path

from fastrnn.tasks import loop, plots
from fastrnn.tasks.layers import RNN_KINDS

# Settings every task has. `None` passed by a caller means "the task's default".
COMMON = {
    "rnn": "lstm",          # cell type: lstm | gru | rnn
    "epochs": 10,
    "hidden": 32,
    "layers": 1,
    "bidirectional": False,
    "dropout": 0.0,         # between stacked layers, as torch.nn.LSTM(dropout=...)
    "lr": 1e-3,             # Adam learning rate
    "batch_size": 32,
    "grad_clip": 0.0,       # max gradient norm; 0 disables clipping (the tutorials do not clip)
    "size": "full",         # 'full' = tutorial settings, 'tiny' = a seconds-long smoke run
    "plot_states": False,   # heatmap of hidden (and cell) states over time for one example
}


@dataclass
class Splits:
    """A task's data: `train` and `val` datasets (objects with .batches()/.num_batches()) and
    anything else the task's plots need in `extra`."""

    train: object
    val: object
    extra: dict = field(default_factory=dict)


@dataclass
class RunContext:
    """Where and how a run happens; built by `fastrnn.tasks.train`."""

    device: object
    backend: str
    seed: int
    out: Path | None
    quiet: bool

    def log(self, line):
        if not self.quiet:
            print(line, flush=True)


@dataclass
class RunResult:
    """What a task's run hands back to the record: per-epoch rows, final metric, extras, plots."""

    epochs: list
    value: float
    extras: dict = field(default_factory=dict)
    plots: list = field(default_factory=list)


class Task(abc.ABC):
    """Base class. Subclasses set the class attributes and implement make_data/make_model."""

    name = ""
    summary = ""
    kind = "classification"       # or 'regression'
    metric = "val_accuracy"
    higher_is_better = True
    rnn_choices = RNN_KINDS
    bidirectional_ok = True
    defaults = {}                 # overrides of COMMON plus task-specific options
    sizes = {}                    # size name -> overrides ('tiny' must exist)

    def settings(self):
        """All settings with their tutorial defaults."""
        return {**COMMON, **self.defaults}

    def resolve(self, requested):
        """Merge defaults, the size preset, then explicit (non-None) settings; validate them.

        Raises ValueError naming the bad option and listing the valid ones.
        """
        config = self.settings()
        unknown = sorted(set(requested) - set(config))
        if unknown:
            raise ValueError(f"unknown option(s) for task {self.name!r}: {', '.join(unknown)}; "
                             f"valid options: {', '.join(sorted(config))}")
        size = requested.get("size") or config["size"]
        if size != "full" and size not in self.sizes:
            raise ValueError(f"unknown size {size!r} for task {self.name!r}; "
                             f"choose from full, {', '.join(self.sizes)}")
        config.update(self.sizes.get(size, {}))
        # Paths become strings so the config goes into the JSON record as given.
        config.update({k: os.fspath(v) if isinstance(v, os.PathLike) else v
                       for k, v in requested.items() if v is not None})
        self.validate(config)
        return config

    def validate(self, config):
        """Check settings that would otherwise fail deep inside training."""
        if config["rnn"] not in self.rnn_choices:
            raise ValueError(f"task {self.name!r} supports rnn in {{{', '.join(self.rnn_choices)}}}, "
                             f"got {config['rnn']!r}")
        if config["bidirectional"] and not self.bidirectional_ok:
            raise ValueError(f"task {self.name!r} steps a cell forward in time; "
                             "bidirectional is not supported")
        for key in ("epochs", "hidden", "layers", "batch_size"):
            if not isinstance(config[key], int) or config[key] < 1:
                raise ValueError(f"{key} must be a positive integer, got {config[key]!r}")
        if not 0.0 <= float(config["dropout"]) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {config['dropout']!r}")
        if float(config["lr"]) <= 0:
            raise ValueError(f"lr must be positive, got {config['lr']!r}")

    def model_rnn(self, config):
        """The cell type(s) whose backend is checked before training."""
        return [config["rnn"]]

    # --- implemented by each task -------------------------------------------------------------
    @abc.abstractmethod
    def make_data(self, config, generator, ctx):
        """Build the datasets (seeded by `generator`, a torch.Generator; ctx: RunContext) -> Splits."""

    @abc.abstractmethod
    def make_model(self, config, backend, data):
        """Build the model for `data` (Splits); forward(batch.inputs) -> logits (B, C) or
        predictions (B, 1)."""

    def plots(self, model, data, config, ctx):
        """Task-specific plots written to ctx.out; returns their paths."""
        return []

    @abc.abstractmethod
    def states(self, model, data, ctx):
        """{name: (units, T)} hidden/cell states of one validation example (for plot_states)."""

    def extras(self, model, data, config, ctx):
        """Extra final numbers for the record (e.g. train MSE)."""
        return {}

    # --- the shared run ------------------------------------------------------------------------
    def run(self, config, ctx):
        """Build data and model, train with the shared loop, evaluate, plot. -> RunResult."""
        data = self.make_data(config, loop.generator(ctx.seed), ctx)
        model = self.make_model(config, ctx.backend, data).to(ctx.device)
        epochs = loop.fit(model, data, self.kind, self.metric, config, ctx)
        result = RunResult(epochs, epochs[-1]["metric"], self.extras(model, data, config, ctx))
        if ctx.out is not None:
            result.plots += self.plots(model, data, config, ctx)
            if config["plot_states"]:
                result.plots.append(plots.states_heatmap(self.states(model, data, ctx),
                                                         ctx.out / "states.png", self.name))
        return result
