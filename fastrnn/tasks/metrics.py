"""Metrics: each takes summed statistics so a split can be scored batch by batch.

Dimensions: B batch, C classes, N examples of a split.
"""

import math

import torch
import torch.nn.functional as F


def loss_for(kind, prediction, target, class_weights=None):
    """Mean training loss: cross entropy for 'classification' (logits (B, C), target (B,) int64,
    optional class_weights (C,) float), mean squared error for 'regression' ((B, 1) both)."""
    if kind == "classification":
        return F.cross_entropy(prediction, target, weight=class_weights)
    return F.mse_loss(prediction, target)


def batch_score(kind, prediction, target):
    """Sum over the batch of the per-example metric: correct predictions, or squared errors."""
    if kind == "classification":
        return (prediction.argmax(dim=-1) == target).sum().item()
    return F.mse_loss(prediction, target, reduction="sum").item()


@torch.no_grad()
def predict(model, dataset, batch_size, device):
    """The model's outputs on every example of `dataset`, in dataset order, on the CPU: (N, C)
    logits or (N, 1) predictions; and the targets (N,) or (N, 1)."""
    was_training = model.training
    model.eval()
    outputs, targets = [], []
    for batch in dataset.batches(batch_size, shuffle=False, ordered=True):
        batch = batch.to(device)
        outputs.append(model(batch.inputs).float().cpu())
        targets.append(batch.target.cpu())
    model.train(was_training)
    return torch.cat(outputs), torch.cat(targets)


@torch.no_grad()
def evaluate(model, dataset, kind, batch_size, device):
    """Accuracy (classification) or mean squared error (regression) of `model` on `dataset`."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in dataset.batches(batch_size, shuffle=False):
        batch = batch.to(device)
        total += batch_score(kind, model(batch.inputs), batch.target)
        count += batch.size
    model.train(was_training)
    return total / max(count, 1)


def balanced_weights(labels, n_classes):
    """Class weights N / (K * n_c) from training labels (N,) int64 -> (C,) float, K the number of
    classes present: every present class carries the same total weight (N / K) in the loss, and
    the weights sum to N over the examples. A class absent from `labels` gets weight 0."""
    counts = torch.bincount(labels, minlength=n_classes).float()
    present = int((counts > 0).sum())
    weights = len(labels) / (present * counts.clamp(min=1))
    return torch.where(counts > 0, weights, torch.zeros_like(weights))


def confusion(predicted, target, n_classes):
    """(C, C) int64 counts: rows are the true class, columns the predicted class."""
    index = target * n_classes + predicted
    return torch.bincount(index, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def mcc(matrix):
    """Matthews correlation coefficient of a (C, C) confusion matrix (Gorodkin's multiclass form;
    the usual MCC for C = 2). 0 when every prediction is one class; in [-1, 1]."""
    m = matrix.double()
    total, correct = m.sum(), m.diag().sum()
    true_counts, predicted_counts = m.sum(dim=1), m.sum(dim=0)
    numerator = correct * total - (true_counts * predicted_counts).sum()
    denominator = math.sqrt(float(total**2 - (predicted_counts**2).sum())) * math.sqrt(
        float(total**2 - (true_counts**2).sum()))
    return float(numerator) / denominator if denominator > 0 else 0.0


def classification_report(logits, target, classes):
    """Accuracy, per-class accuracy (recall), confusion matrix and MCC of logits (N, C) against
    target (N,). classes: the C label names, in index order. JSON-able dict."""
    matrix = confusion(logits.argmax(dim=-1), target, len(classes))
    support = matrix.sum(dim=1)
    per_class = {str(name): (float(matrix[k, k] / support[k]) if support[k] else None)
                 for k, name in enumerate(classes)}
    recalls = [v for v in per_class.values() if v is not None]
    return {
        "n": int(matrix.sum()),
        "accuracy": float(matrix.diag().sum() / matrix.sum().clamp(min=1)),
        "balanced_accuracy": sum(recalls) / len(recalls) if recalls else 0.0,
        "per_class_accuracy": per_class,
        "support": {str(name): int(support[k]) for k, name in enumerate(classes)},
        "confusion": {"classes": [str(c) for c in classes], "rows_true_columns_predicted":
                      matrix.tolist()},
        "mcc": mcc(matrix),
    }


def errors(prediction, target):
    """{'mse', 'mae'} of two (N,) or (N, 1) float tensors."""
    difference = (prediction.double() - target.double()).flatten()
    return {"mse": float((difference**2).mean()), "mae": float(difference.abs().mean())}
