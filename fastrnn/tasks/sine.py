"""`sine`: one-step-ahead forecasting of a noisy sine wave, or of the user's own series.

Tutorial model: 2-layer LSTM(1, 50), Linear(50, 1) on the last step; Adam 1e-3, batch 32,
200 epochs. Data: 1000 points of sin over 10 periods + N(0, 0.1) noise, windows of 30 predicting
the next value. The last `tail` fraction of the series is held out (the forecast region); the bar
is a train MSE near the noise floor (0.1^2 = 0.01), and the held-out tail MSE is reported too.

With `data=FILE` (`fastrnn train sine --data FILE --column NAME`): one column of a CSV/TSV file
(data/series.py), split in time order into train / validation / test targets, z-scored with the
mean and standard deviation of the training part only, trained with early stopping on the
validation MSE; the record reports the test MSE and MAE in the series' own units beside those of
the naive forecast (the last value) and, with `season` N, the seasonal naive one (N steps back).
"""

import math

import torch
from torch import nn

from fastrnn.tasks import plots
from fastrnn.tasks.base import Predictable, Splits, Task
from fastrnn.tasks.batching import SequenceDataset
from fastrnn.tasks.data.files import FileFormatError
from fastrnn.tasks.data.series import by_split_column, chronological, naive_errors, read_series
from fastrnn.tasks.layers import recurrent, sequence_states
from fastrnn.tasks.metrics import errors, evaluate, predict


def noisy_sine(n_points, periods, noise, generator):
    """(time (N,), noisy values (N,), clean values (N,)) of sin over `periods` periods."""
    time_axis = torch.linspace(0, 2 * math.pi * periods, n_points)
    clean = torch.sin(time_axis)
    return time_axis, clean + noise * torch.randn(n_points, generator=generator), clean


def windows(series, window):
    """Sliding windows: inputs (N - window, window, 1) and next values (N - window, 1)."""
    inputs = series.unfold(0, window, 1)[:-1].unsqueeze(-1)
    return inputs.contiguous(), series[window:].unsqueeze(-1).clone()


def windows_at(series, targets, window):
    """Inputs (len(targets), window, 1) of the `window` values before each target index, and the
    targets (len(targets), 1). series: (N,) float32."""
    index = torch.tensor(targets).unsqueeze(1) + torch.arange(-window, 0).unsqueeze(0)
    return series[index].unsqueeze(-1), series[torch.tensor(targets)].unsqueeze(-1)


class LastStepRegressor(nn.Module):
    """Recurrent stack, dropout, linear head on the last step's output.

    forward(x: (B, T, 1)) -> (B, 1).
    """

    def __init__(self, kind, hidden, layers, dropout, bidirectional, backend):
        super().__init__()
        self.rnn = recurrent(kind, 1, hidden, layers=layers, dropout=dropout,
                             bidirectional=bidirectional, backend=backend)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        output, _ = self.rnn(x)
        return self.head(self.drop(output[:, -1]))


class Sine(Task):
    name = "sine"
    summary = "forecast the next value of a noisy sine wave"
    kind = "regression"
    metric = "val_mse"
    higher_is_better = False
    reads_files = True
    defaults = {"epochs": 200, "hidden": 50, "layers": 2, "lr": 1e-3, "batch_size": 32,
                "n_points": 1000, "periods": 10, "noise": 0.1, "window": 30, "tail": 0.2,
                "column": None, "season": 0}
    file_defaults = {"patience": 20, "restore_best": True}
    sizes = {"tiny": {"epochs": 6, "lr": 1e-2, "hidden": 16, "n_points": 300, "periods": 3, "window": 15}}

    def validate(self, config):
        super().validate(config)
        for key in ("window", "season"):
            if not isinstance(config[key], int) or config[key] < (1 if key == "window" else 0):
                raise ValueError(f"{key} must be a {'positive' if key == 'window' else 'non-negative'}"
                                 f" integer, got {config[key]!r}")

    def make_data(self, config, generator, ctx):
        if config["data"] is not None:
            return self._file_data(config)
        time_axis, series, clean = noisy_sine(config["n_points"], config["periods"],
                                              config["noise"], generator)
        inputs, targets = windows(series, config["window"])
        # A window belongs to the tail when the value it predicts lies in the held-out tail.
        split_at = int(round(config["n_points"] * (1 - config["tail"])))
        n_train = split_at - config["window"]
        if n_train < 1 or n_train >= len(targets):
            raise ValueError("sine: n_points, window and tail leave no train or no tail windows")
        train = SequenceDataset(inputs[:n_train], targets[:n_train])
        val = SequenceDataset(inputs[n_train:], targets[n_train:])
        extra = {"time": time_axis, "series": series, "clean": clean, "split_at": split_at,
                 "all_inputs": inputs, "targets": {"val": list(range(split_at, len(series)))},
                 "spec": {"window": config["window"], "mean": 0.0, "std": 1.0}}
        return Splits(train, val, extra)

    def _file_data(self, config):
        series = read_series(config["data"], config["column"], config["split_column"])
        window = config["window"]
        if series.splits is None:
            parts = chronological(len(series.values), window, float(config["val_fraction"]),
                                  float(config["test_fraction"]), series.path)
            fitted = series.values[: parts.pop("train_end")]
        else:
            parts = by_split_column(series, window)
            fitted = series.values[[k for k, s in enumerate(series.splits) if s == "train"]]
        mean, std = float(fitted.mean()), float(fitted.std())
        if not std > 0:
            raise FileFormatError(f"{series.path}: the training part of column {series.column!r} "
                                  "is constant; there is nothing to forecast")
        scaled = ((series.values - mean) / std).float()
        datasets = {name: SequenceDataset(*windows_at(scaled, index, window))
                    for name, index in parts.items() if index}
        time_axis = torch.arange(len(series.values), dtype=torch.float32)
        spec = {"window": window, "mean": mean, "std": std, "column": series.column}
        extra = {"time": time_axis, "series": series.values.float(), "raw": series.values,
                 "split_at": parts["val"][0], "targets": parts, "spec": spec,
                 "all_inputs": windows(scaled, window)[0], "source": str(config["data"]),
                 "rows": {name: len(index) for name, index in parts.items()}}
        return Splits(datasets["train"], datasets["val"], extra, test=datasets.get("test"),
                      target_scale=std)

    def make_model(self, config, backend, data):
        return LastStepRegressor(config["rnn"], config["hidden"], config["layers"],
                                 config["dropout"], config["bidirectional"], backend)

    def extras(self, model, data, config, ctx):
        train_mse = evaluate(model, data.train, "regression", config["batch_size"], ctx.device)
        if config["data"] is not None:
            return {"train_mse": train_mse * data.target_scale**2, "rows": data.extra["rows"],
                    "normalisation": {"mean": data.extra["spec"]["mean"],
                                      "std": data.extra["spec"]["std"]},
                    "column": data.extra["spec"]["column"], "source": data.extra["source"]}
        targets = data.val.target
        return {
            "train_mse": train_mse,
            "noise_floor": config["noise"] ** 2,
            # The MSE of always predicting the tail's mean: what "learned nothing" scores.
            "chance": float(((targets - targets.mean()) ** 2).mean()),
        }

    def report(self, model, data, split, config, ctx):
        """MSE and MAE in the series' units, beside the naive and seasonal naive forecasts'."""
        outputs, targets = predict(model, getattr(data, split), 256, ctx.device)
        scale, raw = data.target_scale, data.extra.get("raw", data.extra["series"].double())
        mean = data.extra["spec"]["mean"]
        result = errors(outputs * scale + mean, targets * scale + mean)
        baselines = naive_errors(raw, data.extra["targets"][split], config["season"])
        result.update(baselines)
        # Above 0: better than repeating the last value; below 0: worse.
        naive = baselines["naive_mse"]
        result["skill_vs_naive"] = 1.0 - result["mse"] / naive if naive > 0 else None
        return result

    def prediction_data(self, path, config, spec):
        series = read_series(path, config["column"] or spec["column"], config["split_column"])
        window = spec["window"]
        if len(series.values) < window:
            raise FileFormatError(f"{path}: {len(series.values)} values, fewer than the window of "
                                  f"{window} the model reads")
        scaled = ((series.values - spec["mean"]) / spec["std"]).float()
        # Every window of the file, the last one included: it forecasts the value after the end.
        inputs = scaled.unfold(0, window, 1).unsqueeze(-1).contiguous()
        targets = torch.cat([scaled[window:], torch.full((1,), float("nan"))]).unsqueeze(-1)
        ids = [f"line {n}" for n in series.lines[window:]] + ["next"]
        actual = series.values[window:].tolist() + [None]
        return Predictable(SequenceDataset(inputs, targets), ids, None, {"actual": actual})

    @torch.no_grad()
    def plots(self, model, data, config, ctx):
        model.eval()
        prediction = model(data.extra["all_inputs"].to(ctx.device)).squeeze(-1).cpu()
        spec, window = data.extra["spec"], config["window"]
        prediction = prediction * spec["std"] + spec["mean"]   # back to the series' units
        time_axis = data.extra["time"][window:].numpy()
        split_time = float(data.extra["time"][data.extra["split_at"]])
        title = ("sine: prediction vs truth" if config["data"] is None
                 else f"{spec['column']}: one-step-ahead forecast vs truth")
        return [plots.prediction_vs_truth(time_axis, data.extra["series"][window:].numpy(),
                                          prediction.numpy(), split_time,
                                          ctx.out / "sine_prediction.png", title=title)]

    def states(self, model, data, ctx):
        return sequence_states(model.rnn, data.val.inputs[:1].to(ctx.device))
