"""The shared training loop: seeded shuffling, a tqdm bar per epoch, one line per epoch."""

import time

import torch
from tqdm import tqdm

from fastrnn.tasks.metrics import batch_score, evaluate, loss_for

EVAL_BATCH = 256


def generator(seed):
    """A torch.Generator for data generation and shuffling, independent of the global RNG."""
    return torch.Generator().manual_seed(seed)


def format_epoch(row, epochs, metric, label=""):
    """One human-readable line per epoch: loss, metric, time, tokens/s."""
    prefix = f"{label} " if label else ""
    return (f"{prefix}epoch {row['epoch']:>{len(str(epochs))}}/{epochs}  loss {row['loss']:.4f}  "
            f"{metric} {row['metric']:.4f}  {row['seconds']:.1f}s  "
            f"{row['tokens_per_s']:,.0f} tok/s")


def fit(model, data, kind, metric, config, ctx, label=""):
    """Train `model` on data.train with Adam for config['epochs'] epochs, scoring data.val each epoch.

    Args:
        model: forward(batch.inputs) -> (B, C) logits or (B, 1) predictions.
        data: Splits with train/val datasets. kind: 'classification' | 'regression'.
        metric: name printed for the validation score. config: resolved task settings.
        ctx: RunContext (device, seed, quiet). label: prefix for the per-epoch lines.
    Returns:
        list of per-epoch dicts {epoch, loss, train_score, metric, seconds, eval_seconds, tokens,
        tokens_per_s}; `seconds` is training time only, evaluation is timed separately.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=float(config["lr"]))
    shuffle = generator(ctx.seed + 1)
    batch_size = config["batch_size"]
    rows = []
    for epoch in range(1, config["epochs"] + 1):
        model.train()
        total_loss, score, count, tokens = 0.0, 0.0, 0, 0
        start = time.perf_counter()
        bar = tqdm(data.train.batches(batch_size, shuffle=True, generator=shuffle),
                   total=data.train.num_batches(batch_size), disable=ctx.quiet, leave=False,
                   desc=f"{label + ' ' if label else ''}epoch {epoch}/{config['epochs']}",
                   unit="batch")
        for batch in bar:
            batch = batch.to(ctx.device)
            optimizer.zero_grad(set_to_none=True)
            prediction = model(batch.inputs)
            loss = loss_for(kind, prediction, batch.target)
            loss.backward()
            if config["grad_clip"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(config["grad_clip"]))
            optimizer.step()
            total_loss += loss.item() * batch.size
            score += batch_score(kind, prediction.detach(), batch.target)
            count += batch.size
            tokens += batch.tokens
            bar.set_postfix(loss=f"{total_loss / count:.4f}", refresh=False)
        seconds = time.perf_counter() - start
        eval_start = time.perf_counter()
        # Evaluation batch size does not change the metric; a larger one is just faster.
        value = evaluate(model, data.val, kind, max(batch_size, EVAL_BATCH), ctx.device)
        row = {
            "epoch": epoch,
            "loss": total_loss / max(count, 1),
            "train_score": score / max(count, 1),
            "metric": value,
            "seconds": seconds,
            "eval_seconds": time.perf_counter() - eval_start,
            "tokens": tokens,
            "tokens_per_s": tokens / seconds if seconds > 0 else 0.0,
        }
        rows.append(row)
        ctx.log(format_epoch(row, config["epochs"], metric, label))
    return rows
