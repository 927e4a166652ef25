"""The shared training loop: seeded shuffling, a progress bar and one line per epoch, the
validation metric after every epoch, early stopping, best-weights restore, a learning-rate
schedule and class weighting."""

import copy
import math
import time
from dataclasses import dataclass

import torch

from fastrnn.tasks.metrics import balanced_weights, batch_score, evaluate, loss_for
from fastrnn.tasks.progress import bar as progress_bar

EVAL_BATCH = 256
SCHEDULES = ("none", "cosine", "plateau")


def generator(seed):
    """A torch.Generator for data generation and shuffling, independent of the global RNG."""
    return torch.Generator().manual_seed(seed)


def format_epoch(row, epochs, metric, label=""):
    """One human-readable line per epoch: loss, metric, time, tokens/s."""
    prefix = f"{label} " if label else ""
    mark = "  *" if row.get("best") else ""
    return (f"{prefix}epoch {row['epoch']:>{len(str(epochs))}}/{epochs}  loss {row['loss']:.4f}  "
            f"{metric} {row['metric']:.4f}  {row['seconds']:.1f}s  "
            f"{row['tokens_per_s']:,.0f} tok/s{mark}")


@dataclass
class History:
    """What `fit` hands back.

    rows: one dict per epoch run. best_epoch: the epoch with the best validation metric (1-based).
    best_value: that metric. stopped_early: training ended before config['epochs'] because the
    metric had not improved for `patience` epochs. restored: the model now holds the weights of
    best_epoch (config['restore_best']); otherwise those of the last epoch.
    """

    rows: list
    best_epoch: int
    best_value: float
    stopped_early: bool
    restored: bool

    def summary(self):
        """The JSON-able part for the record."""
        return {"best_epoch": self.best_epoch, "best_val": self.best_value,
                "epochs_run": len(self.rows), "stopped_early": self.stopped_early,
                "restored_best": self.restored}


def _improved(value, best, higher_is_better):
    if best is None:
        return True
    return value > best if higher_is_better else value < best


def make_schedule(name, optimizer, epochs, higher_is_better):
    """The learning-rate scheduler for `name` in SCHEDULES (None for 'none').

    cosine: from lr down to lr/100 over the epochs (per epoch). plateau: halve the lr when the
    validation metric has not improved for 2 epochs.
    """
    if name == "none":
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(epochs, 1), eta_min=optimizer.param_groups[0]["lr"] / 100)
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max" if higher_is_better else "min", factor=0.5, patience=2)
    raise ValueError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, got {name!r}")


def class_weight_tensor(data, kind, config, device):
    """Balanced class weights (C,) from the training labels when config['class_weights'], else None.

    The number of classes comes from data.extra['classes'] (file data) or the labels seen."""
    if kind != "classification" or not config.get("class_weights"):
        return None
    labels = data.train.target if hasattr(data.train, "target") else data.train.labels
    n_classes = len(data.extra.get("classes") or []) or int(labels.max()) + 1
    return balanced_weights(labels, n_classes).to(device)


def fit(model, data, kind, metric, config, ctx, label="", higher_is_better=None):
    """Train `model` on data.train with Adam, scoring data.val after every epoch.

    Args:
        model: forward(batch.inputs) -> (B, C) logits or (B, 1) predictions.
        data: Splits with train/val datasets (and data.target_scale for regression: the metric
            is reported in the data's original units). kind: 'classification' | 'regression'.
        metric: name printed for the validation score. config: resolved task settings; uses
            epochs, lr, batch_size, grad_clip and, when present, patience (stop after that many
            epochs without improvement; 0 never stops), restore_best, lr_schedule, class_weights.
        ctx: RunContext (device, seed, quiet). label: prefix for the per-epoch lines.
        higher_is_better: direction of the metric (default: accuracy up, MSE down).
    Returns:
        History. rows: per-epoch dicts {epoch, loss, train_score, metric, lr, best, seconds,
        eval_seconds, tokens, tokens_per_s}; `seconds` is training time only.
    """
    if higher_is_better is None:
        higher_is_better = kind == "classification"
    epochs = config["epochs"]
    optimizer = torch.optim.Adam(model.parameters(), lr=float(config["lr"]))
    schedule = make_schedule(config.get("lr_schedule", "none"), optimizer, epochs, higher_is_better)
    weights = class_weight_tensor(data, kind, config, ctx.device)
    scale = float(getattr(data, "target_scale", 1.0)) ** 2 if kind == "regression" else 1.0
    patience = int(config.get("patience", 0) or 0)
    restore = bool(config.get("restore_best", False))
    shuffle = generator(ctx.seed + 1)
    batch_size = config["batch_size"]
    rows, best, best_epoch, best_state, waited = [], None, 0, None, 0
    for epoch in range(1, epochs + 1):
        model.train()
        total_loss, score, count, tokens = 0.0, 0.0, 0, 0
        lr = optimizer.param_groups[0]["lr"]
        start = time.perf_counter()
        batches = progress_bar(data.train.batches(batch_size, shuffle=True, generator=shuffle),
                               total=data.train.num_batches(batch_size), disable=ctx.quiet,
                               leave=False, unit="batch",
                               desc=f"{label + ' ' if label else ''}epoch {epoch}/{epochs}")
        for batch in batches:
            batch = batch.to(ctx.device)
            optimizer.zero_grad(set_to_none=True)
            prediction = model(batch.inputs)
            loss = loss_for(kind, prediction, batch.target, weights)
            loss.backward()
            if config["grad_clip"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(config["grad_clip"]))
            optimizer.step()
            total_loss += loss.item() * batch.size
            score += batch_score(kind, prediction.detach(), batch.target)
            count += batch.size
            tokens += batch.tokens
            batches.set_postfix(loss=f"{total_loss / count:.4f}", refresh=False)
        seconds = time.perf_counter() - start
        eval_start = time.perf_counter()
        # Evaluation batch size does not change the metric; a larger one is just faster.
        value = evaluate(model, data.val, kind, max(batch_size, EVAL_BATCH), ctx.device) * scale
        if not math.isfinite(value):
            raise ValueError(f"epoch {epoch}: the validation {metric} is {value}; "
                                     "the training diverged (try a smaller lr or grad_clip)")
        improved = _improved(value, best, higher_is_better)
        if improved:
            best, best_epoch, waited = value, epoch, 0
            if restore:
                best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
        row = {
            "epoch": epoch,
            "loss": total_loss / max(count, 1),
            "train_score": score / max(count, 1) * (scale if kind == "regression" else 1.0),
            "metric": value,
            "lr": lr,
            "best": improved,
            "seconds": seconds,
            "eval_seconds": time.perf_counter() - eval_start,
            "tokens": tokens,
            "tokens_per_s": tokens / seconds if seconds > 0 else 0.0,
        }
        rows.append(row)
        ctx.log(format_epoch(row, epochs, metric, label))
        if isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
            schedule.step(value)
        elif schedule is not None:
            schedule.step()
        if patience and waited >= patience and epoch < epochs:
            ctx.log(f"{label + ' ' if label else ''}early stop: no better {metric} for {patience} "
                    f"epochs; best epoch {best_epoch}")
            break
    stopped = len(rows) < epochs
    if restore and best_state is not None:
        model.load_state_dict(best_state)
    return History(rows, best_epoch, best, stopped, restore)
