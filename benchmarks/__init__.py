"""fastrnn's benchmark harness (a source-checkout folder, not part of the wheel).

    cases.py      the named grids of docs/benchmarks.md as declared cases
    providers.py  what is timed: torch.nn, fastrnn modules per backend, a hand-unrolled cell loop
    workload.py   inputs, upstream gradients and the timed closure of one (case, provider, mode)
    timing.py     do_bench on CUDA, torch.utils.benchmark on CPU; peak memory
    parity.py     the parity gate every timed configuration passes first
    runner.py     runs a micro grid into result rows (progress bar)
    tasks_grid.py times the documented tasks per backend
    results.py    result files: JSON (validated by schema.py), CSV, paths
    report.py     the printed report: legend, tables, what was not timed (summary.py: the close)
    table.py      fixed-width tables; formats.py: the number formats
    compare.py    two runs compared by speedup vs torch; compare_plot.py: its figure
    plots.py      figures drawn from result files (figures.py: saving, ticks)

Entry point: `fastrnn bench` (fastrnn/bench_cli.py); `pytest benchmarks/ --benchmark-only` times the
`cpu` grid through pytest-benchmark.
"""
