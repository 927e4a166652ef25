"""Predictions of a saved run on a file: `fastrnn predict RUN_DIR --data FILE`.

    table = predict_file("runs/dna-20250101-120000", "new.fasta")
    table.columns    # ['id', 'predicted', 'p_EI', 'p_IE', 'p_N'] (+ 'label' when the file has one)
    table.rows       # one list per example, in file order
    table.summary    # {'n': ..., 'accuracy': ... (when labelled)}

The run's saved preprocessing (preprocessing.json) turns the file into model input exactly as
the training data was: the same classes, vocabulary, sequence length or normalisation.
"""

from dataclasses import dataclass

import torch

from fastrnn.tasks import artifacts, get_task
from fastrnn.tasks.base import Splits
from fastrnn.tasks.metrics import predict
from fastrnn.tasks.runtime import check_backend, resolve_device


@dataclass
class Predictions:
    """columns: header names; rows: lists of values; summary: JSON-able numbers."""

    columns: list
    rows: list
    summary: dict


def load_model(run_dir, backend="auto", device="cpu"):
    """-> (task, config, spec, model in eval mode on `device`) of a saved run."""
    name, config, spec, state = artifacts.load(run_dir)
    task = get_task(name)
    torch_device = resolve_device(device)
    requested, _, _ = check_backend(backend, config["rnn"], config["hidden"], torch_device)
    model = task.make_model(config, requested, Splits(None, None, {"spec": spec}))
    model.load_state_dict(state)
    return task, config, spec, model.to(torch_device).eval()


def predict_file(run_dir, data, *, backend="auto", device="cpu", column=None, batch_size=256):
    """Predict every example of file `data` with the model saved in `run_dir` -> Predictions.

    Classification: id, predicted class, one probability per class, and the file's label when
    it has one (the summary then gives the accuracy). Forecasting: for every window of the
    series the prediction of the value after it (id: its line; 'next' for the value after the
    end), the actual value where there is one; the summary gives MSE and MAE.
    """
    task, config, spec, model = load_model(run_dir, backend, device)
    if column is not None:
        config = {**config, "column": column}
    readable = task.prediction_data(data, config, spec)
    outputs, _ = predict(model, readable.dataset, batch_size, resolve_device(device))
    if task.kind == "classification":
        return _classes(outputs, readable, spec["classes"])
    return _forecasts(outputs, readable, spec)


def _classes(logits, readable, classes):
    probabilities = torch.softmax(logits, dim=-1)
    predicted = probabilities.argmax(dim=-1).tolist()
    columns = ["id", "predicted", *(f"p_{c}" for c in classes)]
    rows = [[name, classes[k], *(round(p, 6) for p in probs)]
            for name, k, probs in zip(readable.ids, predicted, probabilities.tolist())]
    summary = {"n": len(rows)}
    if readable.labels is not None:
        columns.append("label")
        for row, label in zip(rows, readable.labels):
            row.append(classes[label])
        correct = sum(p == t for p, t in zip(predicted, readable.labels))
        summary["accuracy"] = correct / len(rows)
    return Predictions(columns, rows, summary)


def _forecasts(outputs, readable, spec):
    values = (outputs.squeeze(-1).double() * spec["std"] + spec["mean"]).tolist()
    actual = readable.extra["actual"]
    rows = [[name, round(v, 6), a] for name, v, a in zip(readable.ids, values, actual)]
    pairs = [(v, a) for v, a in zip(values, actual) if a is not None]
    summary = {"n": len(rows)}
    if pairs:
        summary["mse"] = sum((v - a) ** 2 for v, a in pairs) / len(pairs)
        summary["mae"] = sum(abs(v - a) for v, a in pairs) / len(pairs)
    return Predictions(["id", "prediction", "actual"], rows, summary)
