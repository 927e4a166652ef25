"""What every task shares: its settings (tutorial defaults, size presets, validation) and its run.

A task is a small class: data, model, metric, and any task-specific plots. `Task.run` trains one
model with the shared loop; tasks that train several models (memory) override it. Tasks with
`reads_files` also train on a file of the user's own data (the `data` option), split three ways.
"""

import abc
import os
from dataclasses import dataclass, field
from pathlib import Path

from fastrnn.tasks import loop, plots
from fastrnn.tasks.layers import RNN_KINDS
from fastrnn.tasks.metrics import classification_report, errors, predict

# Settings every task has. `None` passed by a caller means "the task's default".
COMMON = {
    "rnn": "lstm",          # cell type: lstm | gru | rnn
    "epochs": 10,
    "hidden": 32,
    "layers": 1,
    "bidirectional": False,
    "dropout": 0.0,         # between stacked layers (as torch.nn.LSTM) and on the recurrent output
    "lr": 1e-3,             # Adam learning rate
    "lr_schedule": "none",  # none | cosine | plateau (see loop.make_schedule)
    "batch_size": 32,
    "grad_clip": 0.0,       # max gradient norm; 0 disables clipping (the tutorials do not clip)
    "patience": 0,          # stop after this many epochs without a better validation metric; 0: never
    "restore_best": False,  # end with the weights of the best validation epoch, not the last
    "class_weights": False, # classification: weigh the loss by inverse class frequency
    "size": "full",         # 'full' = tutorial settings, 'tiny' = a seconds-long smoke run
    "plot_states": False,   # heatmap of hidden (and cell) states over time for one example
    "data": None,           # a file of the user's own data (tasks with reads_files)
}

# Settings of the tasks that read the user's files, and the loop settings a file run starts from:
# a file has no endless supply of fresh data, so it is held out three ways and the model that
# scores best on the validation part is the one tested and saved.
FILE_OPTIONS = {
    "split_column": "split",   # a column (or FASTA header field) naming each row's split
    "val_fraction": 0.1,       # of the rows (of the series, in time order, for sine)
    "test_fraction": 0.2,
}
FILE_DEFAULTS = {"patience": 10, "restore_best": True}


@dataclass
class Splits:
    """A task's data: `train` and `val` datasets (objects with .batches()/.num_batches()), an
    optional `test` dataset scored once after training, and anything else the task's plots,
    reports and saved preprocessing need in `extra` (file runs: 'classes', 'spec').

    target_scale: regression targets are stored divided by this (a z-score's standard
    deviation); metrics are reported times its square, in the data's own units.
    """

    train: object
    val: object
    extra: dict = field(default_factory=dict)
    test: object = None
    target_scale: float = 1.0


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
    """What a task's run hands back to the record: per-epoch rows, final metric, extras, plots;
    and, not in the record, the trained model and the preprocessing needed to use it again."""

    epochs: list
    value: float
    extras: dict = field(default_factory=dict)
    plots: list = field(default_factory=list)
    metric: str | None = None     # the final metric's name when it is not the task's `metric`
    model: object = None
    spec: dict = field(default_factory=dict)


class Task(abc.ABC):
    """Base class. Subclasses set the class attributes and implement make_data/make_model."""

    name = ""
    summary = ""
    kind = "classification"       # or 'regression'
    metric = "val_accuracy"
    higher_is_better = True
    rnn_choices = RNN_KINDS
    bidirectional_ok = True
    reads_files = False           # True: `data` may name a file of the user's own data
    defaults = {}                 # overrides of COMMON plus task-specific options
    file_defaults = FILE_DEFAULTS  # applied when `data` is given, before explicit settings
    sizes = {}                    # size name -> overrides ('tiny' must exist)

    def settings(self):
        """All settings with their tutorial defaults."""
        return {**COMMON, **(FILE_OPTIONS if self.reads_files else {}), **self.defaults}

    def resolve(self, requested):
        """Merge defaults, the file-run defaults (when `data` is given), the size preset, then
        explicit (non-None) settings; validate them.

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
        if requested.get("data") is not None:
            config.update(self.file_defaults)
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
        if config["lr_schedule"] not in loop.SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(loop.SCHEDULES)}, "
                             f"got {config['lr_schedule']!r}")
        if not isinstance(config["patience"], int) or config["patience"] < 0:
            raise ValueError(f"patience must be a non-negative integer, got {config['patience']!r}")
        if config["class_weights"] and self.kind != "classification":
            raise ValueError(f"class_weights applies to classification; {self.name!r} is a "
                             f"{self.kind} task")
        if config["data"] is not None and not self.reads_files:
            raise ValueError(f"task {self.name!r} generates its data and reads no file; --data "
                             "works with dna, sentiment and sine")
        if self.reads_files:
            # Early stopping and restore_best need validation rows; a test split is optional.
            if not 0.0 < float(config["val_fraction"]) < 1.0:
                raise ValueError(f"val_fraction must be in (0, 1), got {config['val_fraction']!r}")
            if not 0.0 <= float(config["test_fraction"]) < 1.0:
                raise ValueError(f"test_fraction must be in [0, 1), got {config['test_fraction']!r}")
            if float(config["val_fraction"]) + float(config["test_fraction"]) >= 1.0:
                raise ValueError("val_fraction + test_fraction must leave rows to train on, got "
                                 f"{config['val_fraction']} + {config['test_fraction']}")

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
        predictions (B, 1). Tasks that save and predict build it from data.extra['spec'] alone."""

    def plots(self, model, data, config, ctx):
        """Task-specific plots written to ctx.out; returns their paths."""
        return []

    @abc.abstractmethod
    def states(self, model, data, ctx):
        """{name: (units, T)} hidden/cell states of one validation example (for plot_states)."""

    def extras(self, model, data, config, ctx):
        """Extra final numbers for the record (e.g. train MSE)."""
        return {}

    def report(self, model, data, split, config, ctx):
        """The scores of the final model on `split` ('val' or 'test', a dataset of `data`).

        Classification: accuracy, per-class accuracy, confusion matrix, MCC (metrics.
        classification_report); regression: MSE and MAE in the data's units. Tasks add baselines.
        """
        outputs, targets = predict(model, getattr(data, split), loop.EVAL_BATCH, ctx.device)
        if self.kind == "classification":
            classes = data.extra.get("classes") or list(range(outputs.shape[-1]))
            return classification_report(outputs, targets, classes)
        return errors(outputs * data.target_scale, targets * data.target_scale)

    def prediction_data(self, path, config, spec):
        """For `fastrnn predict`: read `path` with a saved run's config and spec -> Predictable."""
        raise ValueError(f"task {self.name!r} generates its data; predict works with runs of "
                         "dna, sentiment and sine")

    # --- the shared run ------------------------------------------------------------------------
    def run(self, config, ctx):
        """Build data and model, train with the shared loop, test once, report, plot. -> RunResult.

        With a test split (file data) the final metric is the test metric of the model that
        `fit` leaves (the best validation epoch's when restore_best), computed once, after
        training; without one it is that model's validation metric.
        """
        data = self.make_data(config, loop.generator(ctx.seed), ctx)
        model = self.make_model(config, ctx.backend, data).to(ctx.device)
        history = loop.fit(model, data, self.kind, self.metric, config, ctx,
                           higher_is_better=self.higher_is_better)
        tested = data.test is not None
        report = self.report(model, data, "test" if tested else "val", config, ctx)
        if tested:
            # The one look at the test split: its score is the run's result.
            value = report["accuracy"] if self.kind == "classification" else report["mse"]
        else:
            value = history.best_value if history.restored else history.rows[-1]["metric"]
        extras = {**self.extras(model, data, config, ctx), "training": history.summary(),
                  "report": {"split": "test" if tested else "val", **report}}
        metric = self.metric.replace("val_", "test_", 1) if tested else None
        result = RunResult(history.rows, value, extras, metric=metric, model=model,
                           spec=data.extra.get("spec", {}))
        if ctx.out is not None:
            result.plots += self.plots(model, data, config, ctx)
            if config["plot_states"]:
                result.plots.append(plots.states_heatmap(self.states(model, data, ctx),
                                                         ctx.out / "states.png", self.name))
        return result


@dataclass
class Predictable:
    """A file read for prediction: `dataset` (targets may be placeholders), one id per example
    (`ids`: a FASTA name, an id column's value, or the file line), the labels the file gives
    (`labels`: class indices, or None), and `extra` for the task's output columns."""

    dataset: object
    ids: list
    labels: list | None = None
    extra: dict = field(default_factory=dict)
