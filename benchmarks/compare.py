"""The change between two result files, told so that a slower machine is not mistaken for a slower
fastrnn.

Raw times move with the machine: another CPU, another thread count or a busier machine makes
every row slower, fastrnn and torch alike. What a change to fastrnn moves is its speedup against
torch.nn measured in the same run, so rows are compared by that speedup (new / old: > 1 means
fastrnn gained on torch). torch's own times are summarised apart, as the measure of how much the
machine changed, and every difference in what the runs ran on is printed as a warning first.
"""

from benchmarks import formats
from benchmarks.cases import MODES, provider_order
from benchmarks.table import WIDTH, Column, render

# A provider or task is better or worse only past this change: run-to-run noise on a quiet
# machine is a few percent.
NOTABLE = 0.05
# Load averages per core further apart than this mean the runs competed with different amounts
# of other work (a quarter of the machine).
LOAD_GAP_PER_CORE = 0.25
_MODE_RANK = {mode: rank for rank, mode in enumerate(MODES)}


def _where(result):
    env = result["env"]
    if env.get("gpu_name"):
        capability = env.get("compute_capability")
        return env["gpu_name"] + (f" (sm {capability})" if capability else "")
    cores = f", {env['cpu_count']} cores" if env.get("cpu_count") else ""
    return f"{env.get('cpu_model') or 'unknown CPU'}{cores}"


def _load(result):
    """The highest 1-minute load average seen (start or end) per core, or None if unrecorded."""
    seen = [v for v in (result["env"].get("load_average_1min"),
                        result["settings"].get("load_average_1min_end")) if v is not None]
    if not seen:
        return None
    return max(seen) / max(result["env"].get("cpu_count") or 1, 1)


def warnings(old, new):
    """Each way the two runs differ in what they ran on, as 'what: old vs new' lines."""
    found = []
    if (old["device"], _where(old)) != (new["device"], _where(new)):
        found.append(f"device: {old['device']} {_where(old)} vs {new['device']} {_where(new)}")
    if old["settings"]["threads"] != new["settings"]["threads"]:
        found.append(f"threads: {old['settings']['threads']} vs {new['settings']['threads']}")
    loads = _load(old), _load(new)
    if None not in loads and abs(loads[0] - loads[1]) > LOAD_GAP_PER_CORE:
        found.append(f"load: {loads[0]:.2f} vs {loads[1]:.2f} per core (1-minute average, the "
                     f"higher of start and end)")
    for key, name in (("torch", "torch"), ("triton", "triton")):
        if old["env"].get(key) != new["env"].get(key):
            found.append(f"{name}: {old['env'].get(key)} vs {new['env'].get(key)}")
    for key in ("tf32", "tiny"):
        if old["settings"].get(key) != new["settings"].get(key):
            found.append(f"{key}: {old['settings'].get(key)} vs {new['settings'].get(key)}")
    return found


def _keyed(result):
    """{key: row} of micro rows and task rows; tasks are keyed ('tasks', task, 'epoch', backend)."""
    keyed = {(r["grid"], r["case"], r["mode"], r["provider"]): r for r in result["rows"]}
    for row in result["tasks"]:
        keyed[("tasks", row["task"], "epoch", row["backend"])] = row
    return keyed


def _time_ms(row):
    if "median_ms" in row:
        return row["median_ms"]
    return None if row["seconds_per_epoch"] is None else row["seconds_per_epoch"] * 1e3


def compare(old, new):
    """Rows timed in both runs, each {key, old_ms, new_ms, ratio (new/old time), old_speedup,
    new_speedup, change (new/old speedup vs torch, None where either run has no speedup)}.

    key = (grid, case, mode, provider); task rows are ('tasks', task, 'epoch', backend) and
    compare seconds per epoch.
    """
    before, after = _keyed(old), _keyed(new)
    changes = []
    for key, row in before.items():
        other = after.get(key)
        if other is None or _time_ms(row) is None or _time_ms(other) is None:
            continue
        old_speedup, new_speedup = row["speedup_vs_torch"], other["speedup_vs_torch"]
        change = (new_speedup / old_speedup if old_speedup is not None and new_speedup is not None
                  else None)
        changes.append({"key": key, "old_ms": _time_ms(row), "new_ms": _time_ms(other),
                        "ratio": _time_ms(other) / _time_ms(row), "old_speedup": old_speedup,
                        "new_speedup": new_speedup, "change": change})
    return changes


def is_baseline(change):
    """torch's own rows: their speedup is 1 by definition; their time says how the machine moved."""
    return change["key"][3] == "torch"


def _verdict(change):
    if change["change"] is None:
        return ""
    if change["change"] > 1 + NOTABLE:
        return "gained"
    return "lost" if change["change"] < 1 - NOTABLE else ""


_COLUMNS = [Column("mode", lambda c: c["key"][2], "<"),
            Column("provider", lambda c: c["key"][3], "<"),
            Column("old vs torch", lambda c: formats.speedup(c["old_speedup"])),
            Column("new vs torch", lambda c: formats.speedup(c["new_speedup"])),
            Column("change", lambda c: formats.speedup(c["change"])),
            Column("", _verdict, "<"),
            Column("new/old ms", lambda c: formats.speedup(c["ratio"]))]


def _baseline_lines(changes):
    """How torch's own times moved, per mode: the machine's change, not fastrnn's."""
    torch_rows = [c for c in changes if is_baseline(c)]
    if not torch_rows:
        return ["torch was timed in no common row: no speedup to compare."]
    modes = [m for m in (*MODES, "epoch") if any(c["key"][2] == m for c in torch_rows)]
    parts = []
    for mode in modes:
        ratios = [c["ratio"] for c in torch_rows if c["key"][2] == mode]
        parts.append(f"{'tasks' if mode == 'epoch' else mode} "
                     f"{formats.speedup(formats.geomean(ratios))}")
    return formats.wrap("torch's own time, new/old (geometric mean per mode; the machine's change, "
                        "not fastrnn's): " + ", ".join(parts), WIDTH)


def _summary_lines(changes):
    scored = [c for c in changes if c["change"] is not None and not is_baseline(c)]
    if not scored:
        return ["No row has a speedup vs torch in both runs."]
    providers = sorted({c["key"][3] for c in scored}, key=provider_order)
    modes = [m for m in (*MODES, "epoch") if any(c["key"][2] == m for c in scored)]

    def cell(mode):
        def text(item):
            found = [c["change"] for c in scored if c["key"][3] == item["provider"]
                     and c["key"][2] == mode]
            return (f"{formats.speedup(formats.geomean(found))} ({len(found)})" if found
                    else formats.MISSING)
        return Column("tasks" if mode == "epoch" else mode, text)

    table, _ = render([Column("provider", lambda item: item["provider"], "<"),
                       *(cell(m) for m in modes)], [{"provider": p} for p in providers], indent="")
    gained = sum(_verdict(c) == "gained" for c in scored)
    lost = sum(_verdict(c) == "lost" for c in scored)
    return (["Change of the speedup vs torch, new/old: geometric mean per provider and mode "
             "over (n) rows; > 1: gained on torch", *table] +
            formats.wrap(f"{gained} of {len(scored)} rows gained more than {NOTABLE:.0%}, "
                         f"{lost} lost more than {NOTABLE:.0%}.", WIDTH))


def format_compare(old, new, old_label, new_label, changes=None):
    """The comparison text: warnings, torch's own change, the table grouped by case, summary."""
    changes = compare(old, new) if changes is None else changes
    lines = formats.wrap(f"Change from {old_label} (old) to {new_label} (new), compared by each "
                         f"row's speedup vs torch in its own run.", WIDTH)
    differences = warnings(old, new)
    if differences:
        lines += ["", "WARNING: the runs differ in what they ran on; raw times are not comparable "
                      "(the speedups vs torch are):"]
        lines += [line for text in differences for line in formats.wrap(f"  {text}", WIDTH, "    ")]
    if not changes:
        return "\n".join(lines + ["", "No timed row in common."])
    lines += [""] + _baseline_lines(changes)
    items, cases = [], {}
    for change in changes:
        if not is_baseline(change):
            grid, case, _, _ = change["key"]
            cases.setdefault(f"{grid}:{case}", []).append(change)
    for label, case_changes in cases.items():
        items += [label] + sorted(case_changes, key=lambda c: (_MODE_RANK.get(c["key"][2], 9),
                                                                provider_order(c["key"][3])))
    if items:
        table, _ = render(_COLUMNS, items)
        lines += ["", *table]
    return "\n".join(lines + [""] + _summary_lines(changes))
