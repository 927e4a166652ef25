"""The shared training loop: early stopping with the best weights restored, learning-rate
schedules, class weights, dropout on one-layer models, and the classification metrics."""

import pytest
import torch
from test_tasks import one_torch_thread  # noqa: F401  (autouse fixture)
from torch import nn

from fastrnn.tasks import loop
from fastrnn.tasks.base import RunContext, Splits
from fastrnn.tasks.batching import SequenceDataset
from fastrnn.tasks.metrics import balanced_weights, classification_report, evaluate, mcc


def _overfitting_problem():
    """y = 2x to train on, y = x to validate on: w walks from 0 towards 2 and passes the
    validation optimum w = 1 on the way, so the validation MSE falls, then rises."""
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    return model, Splits(SequenceDataset(x, 2 * x), SequenceDataset(x, x.clone()))


def _config(**changes):
    return {"epochs": 60, "lr": 0.05, "batch_size": 64, "grad_clip": 0.0, "patience": 0,
            "restore_best": False, "lr_schedule": "none", "class_weights": False, **changes}


CTX = RunContext(torch.device("cpu"), "reference", 0, None, True)


def test_early_stopping_restores_the_best_epoch():
    model, data = _overfitting_problem()
    history = loop.fit(model, data, "regression", "val_mse", _config(patience=3, restore_best=True),
                       CTX)
    values = [row["metric"] for row in history.rows]
    assert history.stopped_early and len(values) == history.best_epoch + 3 < 60
    assert history.best_value == min(values) == values[history.best_epoch - 1]
    assert all(v > history.best_value for v in values[history.best_epoch :])
    assert evaluate(model, data.val, "regression", 64, "cpu") == pytest.approx(history.best_value)
    assert [row["best"] for row in history.rows].count(True) >= 2
    assert history.summary()["restored_best"] is True

    model, data = _overfitting_problem()
    last = loop.fit(model, data, "regression", "val_mse", _config(patience=3), CTX)
    assert evaluate(model, data.val, "regression", 64, "cpu") == pytest.approx(last.rows[-1]["metric"])
    assert last.rows[-1]["metric"] > last.best_value


def test_learning_rate_schedules():
    model, data = _overfitting_problem()
    rows = loop.fit(model, data, "regression", "val_mse", _config(epochs=5, lr_schedule="cosine"),
                    CTX).rows
    lrs = [row["lr"] for row in rows]
    assert lrs[0] == 0.05 and all(a > b for a, b in zip(lrs, lrs[1:]))
    model, data = _overfitting_problem()
    rows = loop.fit(model, data, "regression", "val_mse", _config(lr_schedule="plateau"), CTX).rows
    assert rows[-1]["lr"] < 0.05 / 2   # halved at least twice once the metric stopped improving
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        loop.fit(model, data, "regression", "val_mse", _config(lr_schedule="step"), CTX)


def test_class_weights_balance_the_classes():
    labels = torch.tensor([0] * 6 + [1] * 2)
    weights = balanced_weights(labels, 3)
    assert torch.allclose(weights, torch.tensor([8 / 12, 8 / 4, 0.0]))
    assert float((weights[labels]).sum()) == pytest.approx(len(labels))
    data = Splits(SequenceDataset(torch.zeros(8, 1), labels), None, {"classes": ["a", "b", "c"]})
    assert loop.class_weight_tensor(data, "classification", {"class_weights": False}, "cpu") is None
    assert torch.equal(loop.class_weight_tensor(data, "classification", {"class_weights": True},
                                                "cpu"), weights)


def test_mcc_and_the_classification_report():
    # The binary MCC: (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)).
    tp, fn, fp, tn = 5, 3, 2, 10
    expected = (tp * tn - fp * fn) / ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) ** 0.5
    assert mcc(torch.tensor([[tn, fp], [fn, tp]])) == pytest.approx(expected)
    assert mcc(torch.tensor([[4, 0, 0], [0, 3, 0], [0, 0, 2]])) == pytest.approx(1.0)
    assert mcc(torch.tensor([[4, 0], [3, 0]])) == 0.0   # always the same class
    logits = torch.tensor([[2.0, 0, 0], [2.0, 0, 0], [0, 2.0, 0], [0, 0, 2.0]])
    report = classification_report(logits, torch.tensor([0, 1, 1, 2]), ["a", "b", "c"])
    assert report["accuracy"] == 0.75 and report["per_class_accuracy"] == {"a": 1.0, "b": 0.5,
                                                                           "c": 1.0}
    assert report["confusion"]["rows_true_columns_predicted"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert report["support"] == {"a": 1, "b": 2, "c": 1}


def _models():
    from fastrnn.tasks.dna_model import DNAClassifier
    from fastrnn.tasks.majority import CellClassifier
    from fastrnn.tasks.memory import LastStepClassifier
    from fastrnn.tasks.sentiment import PackedClassifier
    from fastrnn.tasks.sine import LastStepRegressor

    tokens = torch.randint(1, 4, (3, 7))
    return [
        (DNAClassifier("gru", 8, 1, 0.5, True, "reference", classes=3, length=7), tokens),
        (LastStepRegressor("lstm", 8, 1, 0.5, False, "reference"), torch.randn(3, 7, 1)),
        (PackedClassifier("lstm", 5, 4, 8, 1, 0.5, False, "reference"),
         (tokens, torch.tensor([7, 5, 2]))),
        (CellClassifier("lstm", 8, 1, 0.5, "reference"), torch.randn(3, 7, 1)),
        (LastStepClassifier("gru", 5, 2, 8, 1, 0.5, False, "reference"), tokens),
    ]


def test_dropout_acts_on_one_layer_models():
    for model, x in _models():
        model.train()
        assert not torch.equal(model(x), model(x)), type(model).__name__
        model.eval()
        assert torch.equal(model(x), model(x)), type(model).__name__
