"""summary.md of `fastrnn gpu-run`: the verdict per section, the headline table, then the details.

It is the first file someone opens after a GPU run, and the caller of the run sees only the last
12,000 characters of its output: the verdict comes first, and `for_stdout` cuts the text to fit.
"""

from collections import defaultdict

STDOUT_CHARS = 11000
BASELINES = {"torch-fp16": "fp16", "torch-bf16": "bf16"}


def _mib(value):
    return "-" if value is None else f"{value / 2**20:.0f}"


def _x(value):
    return "-" if value is None else f"{value:.2f}x"


def _torch_dtype(row):
    """'fp16'/'bf16'/... for a torch.nn row (the provider's fixed dtype or the case's), else None."""
    short = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32"}
    if row["provider"] == "torch":
        return short.get(row["dtype"], row["dtype"])
    return BASELINES.get(row["provider"])


def headline_tables(result):
    """Markdown lines: the kernels' rows (form that ran, µs/step, speedups vs cuDNN fp16 and bf16,
    peak MiB), then the cuDNN baselines per (cell, H, mode)."""
    rows = result.get("rows", [])
    if not rows:
        return ["(no headline row was run)"]
    shape = sorted({(r["B"], r["T"]) for r in rows})
    lines = [f"B, T = {', '.join(f'{b}, {t}' for b, t in shape)}; I = H. µs/step: median per "
             f"time step; vs cuDNN: the cuDNN time / this time (> 1: fastrnn is faster). "
             f"form: the kernel form forced, and the one fastrnn.kernels recorded in an untimed "
             f"call where they differ (forced → ran).", "",
             "| cell | H | dtype | mode | form | µs/step | vs cuDNN fp16 | vs cuDNN bf16 "
             "| peak MiB | status |",
             "|---|---:|---|---|---|---:|---:|---:|---:|---|"]
    short = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32"}
    for row in sorted(rows, key=_order):
        if not row["provider"].startswith("triton"):
            continue
        status = row["status"] if row["status"] == "ok" else (
            f"{row['status']}: {(row['reason'] or '')[:60]}")
        lines.append(f"| {row['cell']} | {row['H']} | {short.get(row['dtype'], row['dtype'])} | "
                     f"{row['mode']} | {_form(row)} | {_step(row)} | "
                     f"{_x(row['speedup_vs_torch_fp16'])} | {_x(row['speedup_vs_torch_bf16'])} | "
                     f"{_mib(row['peak_mem_bytes'])} | {status} |")
    baselines = defaultdict(dict)
    for row in sorted(rows, key=_order):
        dtype = _torch_dtype(row)
        if dtype and row["us_per_step"] is not None:
            baselines[(row["cell"], row["H"], row["mode"])][dtype] = row
    if baselines:
        lines += ["", "cuDNN baselines (torch.nn), µs/step and peak MiB:", "",
                  "| cell | H | mode | fp16 µs/step | bf16 µs/step | fp16 MiB | bf16 MiB |",
                  "|---|---:|---|---:|---:|---:|---:|"]
        for (cell, h, mode), found in baselines.items():
            fp16, bf16 = found.get("fp16"), found.get("bf16")
            lines.append(f"| {cell} | {h} | {mode} | {_step(fp16)} | {_step(bf16)} | "
                         f"{_mib(fp16 and fp16['peak_mem_bytes'])} | "
                         f"{_mib(bf16 and bf16['peak_mem_bytes'])} |")
    return lines


def _form(row):
    """'persistent' when the forced form ran, 'persistent → stepwise' when another one did,
    'auto → <ran>' for the plain triton provider, '?' when no call was recorded."""
    forced = row["provider"][len("triton-"):] if row["provider"].startswith("triton-") else "auto"
    ran = row["form"]
    if ran is None:
        return forced if row["us_per_step"] is None else f"{forced} → ?"
    return forced if ran == forced else f"{forced} → {ran}"


def _order(row):
    """Table order: cell (LSTM first), dtype (bf16 first, the run's order), H, mode, provider."""
    return (row["cell"] != "LSTM", row["cell"], row["dtype"] != "bfloat16", row["dtype"], row["H"],
            row["mode"], row["provider"])


def _step(row):
    return "-" if row is None or row["us_per_step"] is None else f"{row['us_per_step']:.1f}"


def verdict_table(sections):
    lines = ["| section | status | seconds | box s | key numbers |", "|---|---|---:|---:|---|"]
    for s in sections:
        mark = "PASS" if s.status == "passed" else s.status.upper()
        lines.append(f"| {s.name} | {mark} | {s.seconds:.0f} | {s.box:.0f} | "
                     f"{s.summary.replace('|', '/')} |")
    return lines


def render(info, sections, headline, files):
    """The whole summary.md. info: dry_run, budget, elapsed, command, env (dict or None);
    headline: the headline result dict or None; files: [(name, bytes)] under the output folder."""
    passed = sum(s.status == "passed" for s in sections)
    verdict = "PASS" if sections and passed == len(sections) else "FAIL"
    title = "fastrnn gpu-run" + (" — DRY RUN (CPU, Triton interpreter, tiny sizes: numbers "
                                 "mean nothing)" if info["dry_run"] else "")
    env = info.get("env") or {}
    where = env.get("gpu_name") or env.get("cpu_model") or "unknown device"
    commit = (env.get("git_commit") or "no git")[:10] + (" (dirty)" if env.get("git_dirty") else "")
    lines = [f"# {title}: {verdict} ({passed} of {len(sections)} sections passed)", "",
             f"{where}; torch {env.get('torch')}, triton {env.get('triton')}, CUDA "
             f"{env.get('cuda')}, cuDNN {env.get('cudnn')}; commit {commit}; budget "
             f"{info['budget']:.0f} s, used {info['elapsed']:.0f} s. Exit status "
             f"{0 if verdict == 'PASS' else 1}: 0 only when every section passed (a skipped "
             f"one did not).", "",
             *verdict_table(sections), ""]
    lines += ["## Headline", ""]
    lines += headline_tables(headline) if headline else ["(no headline.json)"]
    for section in sections:
        if section.details:
            lines += ["", f"## {section.name}: {section.status}", "", *section.details]
    lines += ["", "## Files", "", ", ".join(f"{name} ({size // 1024} KiB)" for name, size in files)]
    if info.get("notes"):
        lines += ["", *info["notes"]]
    return "\n".join(lines) + "\n"


def for_stdout(text, limit=STDOUT_CHARS):
    """`text` cut to `limit` characters at a line end, with a note where it was cut."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit - 200)
    return text[:cut] + "\n\n[... cut here for the terminal; the rest is in summary.md]\n"
