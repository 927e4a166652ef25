"""The closing summary of a report: what the table says, in a few lines.

    speedups  per provider and mode, the geometric mean of its speedups vs torch over the cases
              (speedups multiply, so they average geometrically), the number of cases, and the
              provider's worst parity error; one block per baseline (the case's dtype, and fp16 /
              bf16 where the run has those baselines)
    extremes  the best and the worst single speedup
    parity    the worst error of any provider, with its tolerance, and the rows that failed
    tasks     per backend, the geometric-mean speedup in seconds per epoch, and how many final
              metrics agree with torch's
"""

import torch

from benchmarks import formats
from benchmarks.cases import MODES, provider_order
from benchmarks.table import WIDTH, Column, render
from fastrnn.testing import TOLERANCES

# (row key, what the baseline is, the providers that are that baseline: their 1.00x says nothing)
BASELINES = (("speedup_vs_torch", "torch.nn in the case's dtype", {"torch"}),
             ("speedup_vs_torch_fp16", "torch.nn in fp16", {"torch", "torch-fp16"}),
             ("speedup_vs_torch_bf16", "torch.nn in bf16", {"torch", "torch-bf16"}))
# Final metrics closer than this (relative) count as the same model: the tasks are seeded, so the
# backends should train alike, up to floating-point order.
METRIC_AGREEMENT = 0.01


def _label(row):
    return f"{row['grid']}:{row['case']} {row['mode']}"


def _gates(rows, provider):
    """(worst_rel_rms, tensor, row) of each gated row of `provider`."""
    return [(r["parity"]["worst_rel_rms"], r["parity"]["worst"], r) for r in rows
            if r["provider"] == provider and r["parity"] is not None]


def _speedup_block(rows, key, what, baselines):
    values = [r for r in rows if r.get(key) is not None and r["provider"] not in baselines]
    if not values:
        return []
    providers = sorted({r["provider"] for r in values}, key=provider_order)
    modes = [m for m in MODES if any(r["mode"] == m for r in values)]

    def cell(mode):
        def text(item):
            provider = item["provider"]
            found = [r[key] for r in values if r["provider"] == provider and r["mode"] == mode]
            return (f"{formats.speedup(formats.geomean(found))} ({len(found)})" if found
                    else formats.MISSING)
        return Column(mode, text)

    def worst(item):
        gates = _gates(rows, item["provider"])
        if not gates:
            return formats.MISSING
        error, tensor, _ = max(gates, key=lambda g: g[0])
        return f"{formats.error(error)} {tensor}"

    columns = [Column("provider", lambda item: item["provider"], "<"), *(cell(m) for m in modes),
               Column("worst parity", worst, "<")]
    table, _ = render(columns, [{"provider": p} for p in providers], indent="")
    best = max(values, key=lambda r: r[key])
    low = min(values, key=lambda r: r[key])
    lines = [f"Speedup vs {what}: geometric mean per provider and mode over (n) cases; "
             f"> 1: faster", *table]
    lines += formats.wrap(f"best {formats.speedup(best[key])} {best['provider']} on {_label(best)}; "
                          f"worst {formats.speedup(low[key])} {low['provider']} on {_label(low)}",
                          WIDTH)
    return lines


def _parity_lines(rows):
    gated = [r for r in rows if r["parity"] is not None]
    if not gated:
        return []
    worst = max(gated, key=lambda r: r["parity"]["worst_rel_rms"])
    gate = worst["parity"]
    tolerance = TOLERANCES[getattr(torch, worst["dtype"])].rel_rms
    lines = formats.wrap(
        f"Worst parity: {formats.error(gate['worst_rel_rms'])} relative RMS ({gate['worst']}) "
        f"of {worst['provider']} on {worst['grid']}:{worst['case']} (tolerance "
        f"{formats.error(tolerance)} for {worst['dtype']}).", WIDTH)
    failed = {}
    for row in gated:
        if not row["parity"]["ok"]:
            entry = failed.setdefault(row["provider"], [set(), set()])
            entry[0].add(row["case"])
            entry[1].update(row["parity"]["failed"])
    for provider in sorted(failed, key=provider_order):
        cases, tensors = failed[provider]
        lines += formats.wrap(f"Parity FAILED: {provider} in {len(cases)} case(s), on "
                              f"{', '.join(sorted(tensors))}; these rows get no speedup.",
                              WIDTH, "    ")
    return lines


def _agrees(row, reference):
    if row["final_metric"] is None or reference is None or reference["final_metric"] is None:
        return False
    scale = max(abs(reference["final_metric"]), 1e-12)
    return abs(row["final_metric"] - reference["final_metric"]) <= METRIC_AGREEMENT * scale


def _task_lines(tasks):
    torch_rows = {r["task"]: r for r in tasks if r["backend"] == "torch"}
    lines = []
    backends = sorted({r["backend"] for r in tasks if r["backend"] != "torch"
                       and r["speedup_vs_torch"] is not None}, key=provider_order)
    for backend in backends:
        done = [r for r in tasks if r["backend"] == backend and r["speedup_vs_torch"] is not None]
        agree = sum(_agrees(r, torch_rows.get(r["task"])) for r in done)
        lines += formats.wrap(
            f"Tasks, {backend}: {formats.speedup(formats.geomean(r['speedup_vs_torch'] for r in done))} "
            f"vs torch in seconds per epoch (geometric mean over {len(done)} tasks); final metric "
            f"within {METRIC_AGREEMENT:.0%} of torch's in {agree} of {len(done)}.", WIDTH)
    return lines


def format_summary(result):
    """The summary text of `result` ('' when nothing was timed)."""
    rows = result["rows"]
    blocks = [_speedup_block(rows, key, what, providers) for key, what, providers in BASELINES]
    blocks += [_parity_lines(rows), _task_lines(result["tasks"])]
    blocks = [block for block in blocks if block]
    if not blocks:
        return ""
    return "Summary\n\n" + "\n\n".join("\n".join(block) for block in blocks)
