"""Metrics: each takes summed statistics so a split can be scored batch by batch."""

import torch
import torch.nn.functional as F


def loss_for(kind, prediction, target):
    """Mean training loss: cross entropy for 'classification' (logits (B, C), target (B,) int64),
    mean squared error for 'regression' (prediction and target (B, 1))."""
    if kind == "classification":
        return F.cross_entropy(prediction, target)
    return F.mse_loss(prediction, target)


def batch_score(kind, prediction, target):
    """Sum over the batch of the per-example metric: correct predictions, or squared errors."""
    if kind == "classification":
        return (prediction.argmax(dim=-1) == target).sum().item()
    return F.mse_loss(prediction, target, reduction="sum").item()


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
