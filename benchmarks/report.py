"""Printed tables of a result: timings with speedups vs the torch provider, tasks, and the change
between two runs.

A row that failed its parity gate shows its time with 'FAIL' and never a speedup; an unavailable
provider shows its reason instead of a number. Rows of the Triton kernels end with the kernel form
that ran; results with fixed-dtype torch baselines (torch-fp16, torch-bf16) add their speedups.
"""

from benchmarks.cases import MODES, provider_order

_MODE_ORDER = {m: i for i, m in enumerate(MODES)}


def _sort_key(row):
    """Within a case: by mode, then provider (torch first, the baseline of the speedups)."""
    return (_MODE_ORDER.get(row["mode"], 9), provider_order(row["provider"]))


def _si(value):
    """1234567 -> '1.23M': compact throughput figures."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{suffix}"
    return f"{value:.0f}"


def _parity_text(row):
    gate = row["parity"]
    if gate is None:
        return "-"
    if gate["ok"]:
        return f"ok {gate['worst_rel_rms']:.0e}"
    return "FAIL " + ",".join(gate["failed"])[:18]


def _speedup_text(row, key="speedup_vs_torch"):
    return "-" if row.get(key) is None else f"{row[key]:.2f}x"


def _fixed_baselines(rows):
    """The fixed-dtype speedup keys that have a value in some row (shown as extra columns)."""
    return [key for key in ("speedup_vs_torch_fp16", "speedup_vs_torch_bf16")
            if any(r.get(key) is not None for r in rows)]


def _clip(text, width=100):
    return text if len(text) <= width else text[: width - 3] + "..."


def _timed_line(row, extra=()):
    band = f"{row['p20_ms']:.3g}..{row['p80_ms']:.3g}"
    memory = "-" if row["peak_mem_bytes"] is None else _si(row["peak_mem_bytes"]) + "B"
    line = (f"{row['median_ms']:>10.3f} {band:>19} {row['us_per_step']:>9.1f} "
            f"{_si(row['tokens_per_s']):>8} {memory:>9} {_parity_text(row):<12} "
            f"{_speedup_text(row):>8}")
    line += "".join(f" {_speedup_text(row, key):>8}" for key in extra)
    return line + (f" {row['form']}" if row.get("form") else "")


def _same_refusal(rows):
    """The one reason when every row is unavailable for the same reason, else None."""
    reasons = {(r["status"], r["reason"]) for r in rows}
    if len(reasons) == 1 and rows[0]["status"] == "unavailable":
        return rows[0]["reason"]
    return None


def _case_entries(case_rows, extra=()):
    """(mode, provider, text) lines of one case, unavailable providers folded into 'all'."""
    refusal = _same_refusal(case_rows)
    if refusal is not None:
        return [("all", "all", _clip(f"unavailable: {refusal}"))]
    by_provider = {}
    for row in case_rows:
        by_provider.setdefault(row["provider"], []).append(row)
    collapsed = {p: _same_refusal(rs) for p, rs in by_provider.items()}
    entries = []
    for row in case_rows:
        if collapsed[row["provider"]] is not None:
            continue
        if row["median_ms"] is None:
            text = _clip(f"{row['status']}: {row['reason'] or ''}")
        else:
            text = _timed_line(row, extra)
        entries.append((row["mode"], row["provider"], text))
    entries += [("all", p, _clip(f"unavailable: {reason}")) for p, reason in collapsed.items()
                if reason is not None]
    return entries


def format_rows(rows):
    """The timing table: one line per (case, mode, provider), grouped by case. A provider that is
    unavailable for every mode of a case, for one reason, gets a single 'all' line."""
    width = max([len(f"{r['grid']}:{r['case']}") for r in rows] + [4])
    named = max([len(r["provider"]) for r in rows] + [10])
    extra = _fixed_baselines(rows)
    header = (f"{'case':<{width}} {'mode':<6} {'provider':<{named}} {'median ms':>10} "
              f"{'p20..p80 ms':>19} {'us/step':>9} {'tok/s':>8} {'peak mem':>9} "
              f"{'parity':<12} {'vs torch':>8}")
    header += "".join(f" {'vs ' + key[-4:]:>8}" for key in extra)
    if any(r.get("form") for r in rows):
        header += " form"
    lines = [header, "-" * len(header)]
    cases = {}  # in the order the grid declares them
    for row in rows:
        cases.setdefault(f"{row['grid']}:{row['case']}", []).append(row)
    for label, case_rows in cases.items():
        case_rows = sorted(case_rows, key=_sort_key)
        for index, (mode, provider, text) in enumerate(_case_entries(case_rows, extra)):
            lines.append(f"{label if index == 0 else '':<{width}} {mode:<6} {provider:<{named}} "
                         f"{text}")
    return "\n".join(lines)


def format_tasks(tasks):
    """The tasks table: seconds per epoch, tokens/s and the final metric per backend."""
    header = (f"{'task':<14} {'backend':<10} {'s/epoch':>9} {'tok/s':>8} {'epochs':>6} "
              f"{'final metric':<26} {'vs torch':>8}")
    lines = [header, "-" * len(header)]
    for row in tasks:
        start = f"{row['task']:<14} {row['backend']:<10} "
        if row["status"] != "ok":
            lines.append(start + _clip(f"{row['status']}: {row['reason'] or ''}"))
            continue
        metric = f"{row['metric']} {row['final_metric']:.4f}"
        lines.append(start + f"{row['seconds_per_epoch']:>9.3f} {_si(row['tokens_per_s']):>8} "
                     f"{len(row['epochs']):>6} {metric:<26} {_speedup_text(row):>8}")
    return "\n".join(lines)


def format_result(result):
    """Header (device, threads, commit) and the tables of every grid in `result`."""
    env, settings = result["env"], result["settings"]
    where = env["gpu_name"] or env["cpu_model"]
    commit = (env["git_commit"] or "no git")[:10] + (" (dirty)" if env["git_dirty"] else "")
    parts = [f"fastrnn bench: grids {', '.join(result['grids'])} on {result['device']} ({where}), "
             f"threads {settings['threads']}, TF32 {'on' if settings['tf32'] else 'off'}, "
             f"commit {commit}"]
    if result["rows"]:
        parts.append(format_rows(result["rows"]))
    if result["tasks"]:
        parts.append(format_tasks(result["tasks"]))
    return "\n\n".join(parts)


def compare(old, new):
    """Rows present in both runs with old and new time and ratio new/old (< 1 is faster).

    Returns a list of dicts {key, old_ms, new_ms, ratio}; task rows compare seconds per epoch.
    """
    def timed(result):
        keyed = {}
        for row in result["rows"]:
            if row["median_ms"] is not None:
                keyed[(row["grid"], row["case"], row["mode"], row["provider"])] = row["median_ms"]
        for row in result["tasks"]:
            if row["seconds_per_epoch"] is not None:
                keyed[("tasks", row["task"], "epoch", row["backend"])] = (
                    row["seconds_per_epoch"] * 1e3)
        return keyed

    before, after = timed(old), timed(new)
    return [{"key": key, "old_ms": before[key], "new_ms": after[key],
             "ratio": after[key] / before[key]} for key in before if key in after]


def format_compare(changes, old_label, new_label):
    """The comparison table, with the geometric mean of the ratios."""
    if not changes:
        return f"no timed row in common between {old_label} and {new_label}"
    header = (f"{'grid:case':<48} {'mode':<6} {'provider':<10} {'old ms':>10} {'new ms':>10} "
              f"{'new/old':>8}")
    lines = [f"change from {old_label} to {new_label} (new/old < 1: faster)", header,
             "-" * len(header)]
    for change in changes:
        grid, case, mode, provider = change["key"]
        verdict = "faster" if change["ratio"] < 0.95 else "slower" if change["ratio"] > 1.05 else ""
        lines.append(f"{grid + ':' + case:<48} {mode:<6} {provider:<10} {change['old_ms']:>10.3f} "
                     f"{change['new_ms']:>10.3f} {change['ratio']:>7.2f}x {verdict}")
    product = 1.0
    for change in changes:
        product *= change["ratio"]
    lines.append(f"geometric mean new/old over {len(changes)} rows: "
                 f"{product ** (1 / len(changes)):.3f}")
    return "\n".join(lines)
