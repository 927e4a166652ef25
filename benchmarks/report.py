"""The printed report of a result: a header line, a legend, the timing table grouped by case, the
tasks table, what was not timed and why, and a closing summary (summary.py).

The report fits in 120 columns. Rows that have no time (an unavailable provider, an error) leave
the table and are collapsed into one note per reason, printed in full once instead of cut off on
every case. A row that failed its parity gate keeps its time, shows 'FAIL' and never a speedup.
Columns that are empty in every row (peak memory on a CPU, the fixed-dtype baselines of a run
without them) are dropped, and the legend explains only the columns that are printed.
"""

import re

from benchmarks import formats, summary
from benchmarks.cases import MODES, provider_order
from benchmarks.table import WIDTH, Column, render

_MODE_ORDER = {m: i for i, m in enumerate(MODES)}
_NOT_TIMED = ("unavailable", "error")
_DIGITS = re.compile(r"\d+(\.\d+)?")


def _sort_key(row):
    """Within a case: by mode, then provider (torch first, the baseline of the speedups)."""
    return (_MODE_ORDER.get(row["mode"], 9), provider_order(row["provider"]))


def case_label(row):
    return f"{row['grid']}:{row['case']}"


def _spread(row):
    """Width of the p20-p80 band as a share of the median: how much the repeats scattered."""
    if row["median_ms"] is None or row["p20_ms"] is None or not row["median_ms"]:
        return None
    return (row["p80_ms"] - row["p20_ms"]) / row["median_ms"]


def _parity(row):
    gate = row["parity"]
    if gate is None:
        return formats.MISSING
    text = formats.error(gate["worst_rel_rms"])
    return text if gate["ok"] else f"FAIL {text}"


def _form(row):
    """The kernel form that ran, when the provider name does not already say it."""
    form = row.get("form")
    if not form or row["provider"] == f"triton-{form}":
        return ""
    return form


def _metric(row):
    return formats.MISSING if row["final_metric"] is None else (
        f"{row['final_metric']:.4f} {row['metric']}")


# (column, legend entry); the entry is printed only when the column is.
ROW_COLUMNS = (
    (Column("mode", lambda r: r["mode"], "<"), None),
    (Column("provider", lambda r: r["provider"], "<"), None),
    (Column("ms", lambda r: formats.sig3(r["median_ms"])), "median time per call, milliseconds"),
    (Column("spread", lambda r: formats.share(_spread(r))),
     "(p80 - p20) / median: how far the repeats scatter"),
    (Column("us/step", lambda r: formats.sig3(r["us_per_step"])), "median / T, microseconds"),
    (Column("tok/s", lambda r: formats.si(r["tokens_per_s"])), "valid tokens per second"),
    (Column("peak MiB", lambda r: formats.mib(r["peak_mem_bytes"])),
     "peak memory of one call (CUDA: all allocated; CPU: the tensor memory it adds)"),
    (Column("parity", _parity),
     "worst relative RMS error of any output, state or gradient against the float64 "
     "reference on the case cut to T={steps} steps (FAIL: above the dtype's tolerance, and no "
     "speedup)"),
    (Column("vs torch", lambda r: formats.speedup(r["speedup_vs_torch"])),
     "torch.nn's median / this median, same dtype (> 1: faster than torch)"),
    (Column("vs fp16", lambda r: formats.speedup(r.get("speedup_vs_torch_fp16"))),
     "the same against torch.nn in fp16"),
    (Column("vs bf16", lambda r: formats.speedup(r.get("speedup_vs_torch_bf16"))),
     "the same against torch.nn in bf16"),
    (Column("form", _form, "<"), "the kernel form that ran, where the provider does not name it"),
)

TASK_COLUMNS = (
    (Column("task", lambda r: r["task"], "<"), None),
    (Column("backend", lambda r: r["backend"], "<"), None),
    (Column("s/epoch", lambda r: formats.sig3(r["seconds_per_epoch"])),
     "median seconds per epoch after the first"),
    (Column("tok/s", lambda r: formats.si(r["tokens_per_s"])), "tokens per second"),
    (Column("epochs", lambda r: str(len(r["epochs"]))), None),
    (Column("final metric", _metric, "<"), "the task's validation metric after the last epoch"),
    (Column("vs torch", lambda r: formats.speedup(r["speedup_vs_torch"])),
     "torch's seconds per epoch / this backend's"),
)


def _legend(kept, declared, steps, extra=()):
    """'Columns:' and one line per printed column that needs explaining, then `extra` lines."""
    entries = [(column.header, entry.format(steps=steps)) for column, entry in declared
               if entry and column in kept]
    size = max([len(name) for name, _ in entries] + [0])
    lines = ["Columns:"]
    for name, entry in entries:
        lines += formats.wrap(f"  {name:<{size}}  {entry}", WIDTH, " " * (size + 4))
    for entry in extra:
        lines += formats.wrap(f"  {entry}", WIDTH, "    ")
    return lines


def _metric_directions(tasks):
    """'val_mse: lower is better; val_accuracy: higher is better' for the metrics shown."""
    seen = {}
    for row in tasks:
        if row["metric"] and row["higher_is_better"] is not None:
            seen.setdefault(row["metric"], row["higher_is_better"])
    higher = [m for m, up in seen.items() if up]
    lower = [m for m, up in seen.items() if not up]
    parts = ([f"{', '.join(higher)}: higher is better"] if higher else []) + (
        [f"{', '.join(lower)}: lower is better"] if lower else [])
    return ["; ".join(parts)] if parts else []


def _units(entries, kind):
    return {(unit, mode) for k, unit, mode in entries if k == kind}


def _scope(keys, everything):
    """'every case', 'cpu:A and cpu:B', '7 of 10 cases' per kind (case, task), with the modes
    when not all of them were affected."""
    texts = []
    for kind in ("case", "task"):
        mine, whole = _units(keys, kind), _units(everything, kind)
        if not mine:
            continue
        units = sorted({unit for unit, _ in mine})
        every = {unit for unit, _ in whole}
        if set(units) == every:
            text = f"every {kind}" if len(every) > 1 else f"the {kind}"
        elif len(units) <= 2:
            text = " and ".join(units)
        else:
            text = f"{len(units)} of {len(every)} {kind}s"
        modes = {mode for _, mode in mine}
        if kind == "case" and modes != {mode for _, mode in whole}:
            text += f" ({', '.join(m for m in MODES if m in modes)})"
        texts.append(text)
    return " and ".join(texts)


def _entries(rows, tasks):
    """(kind, unit, mode) keys and provider names of every row, micro and task alike."""
    for row in rows:
        yield ("case", case_label(row), row["mode"]), row["provider"], row
    for row in tasks:
        yield ("task", row["task"], None), row["backend"], row


def not_timed_notes(rows=(), tasks=()):
    """One line (wrapped to the width) per reason rows were not timed: the providers, where, and
    the reason in full. Providers refused in the same places for the same reason share a line."""
    everything = set()
    reasons = {}
    for key, provider, row in _entries(rows, tasks):
        everything.add(key)
        if row["status"] in _NOT_TIMED:
            reason = row["reason"] or "no reason given"
            # Messages that differ only in their numbers (an out-of-memory size) are one reason.
            group = reasons.setdefault((row["status"], _DIGITS.sub("#", reason)), ({}, []))
            group[0].setdefault(provider, set()).add(key)
            if reason not in group[1]:
                group[1].append(reason)
    lines = []
    for (status, _), (places, texts) in reasons.items():
        reason = texts[0] + (f" (one of {len(texts)} messages that differ only in their numbers)"
                             if len(texts) > 1 else "")
        by_scope = {}
        for provider, keys in places.items():
            by_scope.setdefault(frozenset(keys), []).append(provider)
        for keys, providers in by_scope.items():
            names = ", ".join(sorted(providers, key=provider_order))
            lines += formats.wrap(f"- {names}: {status} in {_scope(keys, everything)}: {reason}",
                                  WIDTH, "    ")
    return lines


def _with_notes(lines, notes):
    return lines + ([""] if lines else []) + ["Not timed:"] + notes if notes else lines


def format_rows(rows, steps=16, notes=True):
    """The timing table (rows grouped under their case) with its legend, and unless `notes` is
    False the notes on the rows that were not timed. `steps`: the parity gate's length."""
    timed = [r for r in rows if r["status"] not in _NOT_TIMED]
    items, cases = [], {}  # in the order the grid declares them
    for row in timed:
        cases.setdefault(case_label(row), []).append(row)
    for label, case_rows in cases.items():
        items += [label] + sorted(case_rows, key=_sort_key)
    lines = []
    if timed:
        table, kept = render([column for column, _ in ROW_COLUMNS], items)
        lines += _legend(kept, ROW_COLUMNS, steps,
                         ["cases are named cell-T-B-I-H-layers-directions[-packed]-dtype"])
        lines += [""] + table
    return "\n".join(_with_notes(lines, not_timed_notes(rows) if notes else []))


def format_tasks(tasks, notes=True):
    """The tasks table (seconds per epoch, tokens/s and the final metric per backend) with its
    legend, and unless `notes` is False the notes on the backends that did not run."""
    done = [r for r in tasks if r["status"] not in _NOT_TIMED]
    lines = []
    if done:
        table, kept = render([c for c, _ in TASK_COLUMNS], done, indent="")
        lines += _legend(kept, TASK_COLUMNS, None, _metric_directions(done)) + [""] + table
    return "\n".join(_with_notes(lines, not_timed_notes(tasks=tasks) if notes else []))


def _load(result):
    start = result["env"].get("load_average_1min")
    end = result["settings"].get("load_average_1min_end")
    if start is None and end is None:
        return None
    return "load " + "->".join(f"{v:.2f}" for v in (start, end) if v is not None)


def header(result):
    """What ran where: grids, device, threads, TF32, machine load, commit."""
    env, settings = result["env"], result["settings"]
    where = env["gpu_name"] or env["cpu_model"] or "unknown"
    if not env["gpu_name"] and env.get("cpu_count"):
        where += f", {env['cpu_count']} cores"
    commit = (env["git_commit"] or "no git")[:10] + (" (dirty)" if env["git_dirty"] else "")
    facts = [f"threads {settings['threads']}", f"TF32 {'on' if settings['tf32'] else 'off'}",
             _load(result), f"commit {commit}"]
    text = (f"fastrnn bench: grids {', '.join(result['grids'])} on {result['device']} ({where}), "
            + ", ".join(f for f in facts if f))
    return formats.wrap(text, WIDTH)


def format_result(result):
    """The whole report of `result`: header, tables with legends and notes, summary."""
    parts = ["\n".join(header(result))]
    if any(r["status"] not in _NOT_TIMED for r in result["rows"]):
        parts.append(format_rows(result["rows"], result["settings"].get("parity_steps", 16),
                                 notes=False))
    if any(r["status"] not in _NOT_TIMED for r in result["tasks"]):
        parts.append(format_tasks(result["tasks"], notes=False))
    # One list for both tables: a provider missing from every case and every task for one
    # reason (triton on a CPU) is one line.
    notes = not_timed_notes(result["rows"], result["tasks"])
    if notes:
        parts.append("\n".join(["Not timed:"] + notes))
    closing = summary.format_summary(result)
    if closing:
        parts.append(closing)
    return "\n\n".join(parts)
