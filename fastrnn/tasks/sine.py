"""`sine`: one-step-ahead forecasting of a noisy sine wave.

Tutorial model: 2-layer LSTM(1, 50), Linear(50, 1) on the last step; Adam 1e-3, batch 32,
200 epochs. Data: 1000 points of sin over 10 periods + N(0, 0.1) noise, windows of 30 predicting
the next value. The last `tail` fraction of the series is held out (the forecast region); the bar
is a train MSE near the noise floor (0.1^2 = 0.01), and the held-out tail MSE is reported too.
"""

import math

import torch
from torch import nn

from fastrnn.tasks import plots
from fastrnn.tasks.base import Splits, Task
from fastrnn.tasks.batching import SequenceDataset
from fastrnn.tasks.layers import recurrent, sequence_states
from fastrnn.tasks.metrics import evaluate


def noisy_sine(n_points, periods, noise, generator):
    """(time (N,), noisy values (N,), clean values (N,)) of sin over `periods` periods."""
    time_axis = torch.linspace(0, 2 * math.pi * periods, n_points)
    clean = torch.sin(time_axis)
    return time_axis, clean + noise * torch.randn(n_points, generator=generator), clean


def windows(series, window):
    """Sliding windows: inputs (N - window, window, 1) and next values (N - window, 1)."""
    inputs = series.unfold(0, window, 1)[:-1].unsqueeze(-1)
    return inputs.contiguous(), series[window:].unsqueeze(-1).clone()


class LastStepRegressor(nn.Module):
    """Recurrent stack, linear head on the last step's output.

    forward(x: (B, T, 1)) -> (B, 1).
    """

    def __init__(self, kind, hidden, layers, dropout, bidirectional, backend):
        super().__init__()
        self.rnn = recurrent(kind, 1, hidden, layers=layers, dropout=dropout,
                             bidirectional=bidirectional, backend=backend)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), 1)

    def forward(self, x):
        output, _ = self.rnn(x)
        return self.head(output[:, -1])


class Sine(Task):
    name = "sine"
    summary = "forecast the next value of a noisy sine wave"
    kind = "regression"
    metric = "val_mse"
    higher_is_better = False
    defaults = {"epochs": 200, "hidden": 50, "layers": 2, "lr": 1e-3, "batch_size": 32,
                "n_points": 1000, "periods": 10, "noise": 0.1, "window": 30, "tail": 0.2}
    sizes = {"tiny": {"epochs": 6, "lr": 1e-2, "hidden": 16, "n_points": 300, "periods": 3, "window": 15}}

    def make_data(self, config, generator, ctx):
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
                 "all_inputs": inputs}
        return Splits(train, val, extra)

    def make_model(self, config, backend, data):
        return LastStepRegressor(config["rnn"], config["hidden"], config["layers"],
                                 config["dropout"], config["bidirectional"], backend)

    def extras(self, model, data, config, ctx):
        train_mse = evaluate(model, data.train, "regression", config["batch_size"], ctx.device)
        targets = data.val.target
        return {
            "train_mse": train_mse,
            "noise_floor": config["noise"] ** 2,
            # The MSE of always predicting the tail's mean: what "learned nothing" scores.
            "chance": float(((targets - targets.mean()) ** 2).mean()),
        }

    @torch.no_grad()
    def plots(self, model, data, config, ctx):
        model.eval()
        prediction = model(data.extra["all_inputs"].to(ctx.device)).squeeze(-1).cpu()
        window = config["window"]
        time_axis = data.extra["time"][window:].numpy()
        split_time = float(data.extra["time"][data.extra["split_at"]])
        return [plots.prediction_vs_truth(time_axis, data.extra["series"][window:].numpy(),
                                          prediction.numpy(), split_time,
                                          ctx.out / "sine_prediction.png")]

    def states(self, model, data, ctx):
        return sequence_states(model.rnn, data.val.inputs[:1].to(ctx.device))
