"""The named grids of docs/benchmarks.md as declared cases, comparable with the anchors.

Dimensions: T time (padded length for packed cases), B batch, I input size, H hidden size,
L layers, D directions. Every case runs as a module (input projection included).

A case belongs to one or more sweeps: the size it varies along with everything else fixed
(`H`, `B`, `T`, `layers`). Plots draw one line per sweep; a case outside any sweep is table-only.
"""

from dataclasses import dataclass, field, replace

from fastrnn.parity_cli import imdb_like_lengths

CELLS = ("LSTM", "GRU", "RNN")
MODES = ("infer", "fwd", "fwdbwd")
PROVIDERS = ("torch", "reference", "cpu", "triton", "cells")
DTYPE_SHORT = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64"}


def provider_order(name):
    """Sort key of a provider in tables and plots: torch first (the baseline), then torch in a fixed
    dtype, reference, cpu, triton, triton-<form>, cells; unknown names last, by name."""
    ranks = {"torch": 0, "reference": 2, "cpu": 3, "triton": 4, "cells": 6}
    if name in ranks:
        return ranks[name], name
    if name.startswith("torch-"):
        return 1, name
    if name.startswith("triton-"):
        return 5, name
    return 9, name


@dataclass(frozen=True)
class Case:
    """One shape to time. `packed`: variable lengths drawn from an IMDB-like distribution."""

    grid: str
    cell: str
    T: int
    B: int
    I: int  # noqa: E741  (I is the input size in every dimension legend of the project)
    H: int
    layers: int = 1
    bidirectional: bool = False
    packed: bool = False
    dtype: str = "float32"
    sweeps: tuple = field(default=(), compare=False)

    @property
    def id(self):
        """A stable, readable key, e.g. 'LSTM-T100-B64-I256-H256-L1-uni-fp32'."""
        direction = "bi" if self.bidirectional else "uni"
        packed = "-packed" if self.packed else ""
        return (f"{self.cell}-T{self.T}-B{self.B}-I{self.I}-H{self.H}-L{self.layers}-"
                f"{direction}{packed}-{DTYPE_SHORT[self.dtype]}")

    @property
    def lengths(self):
        """Per-sequence lengths (tuple of B ints) for packed cases, else None."""
        return imdb_like_lengths(self.B, self.T, seed=0) if self.packed else None

    @property
    def tokens(self):
        """Valid (sequence, step) pairs per call: B*T, or the sum of lengths when packed."""
        return sum(self.lengths) if self.packed else self.B * self.T

    def tiny(self):
        """The same case at smoke-test size (keeps cell, layers, directions, packing, dtype)."""
        return replace(self, T=min(self.T, 12), B=min(self.B, 3), I=min(self.I, 8),
                       H=min(self.H, 8), layers=min(self.layers, 2))


@dataclass(frozen=True)
class Grid:
    """A named set of cases, the device they are meant for, and the modes and providers timed."""

    name: str
    description: str
    device: str
    cases: tuple
    modes: tuple = MODES
    providers: tuple = PROVIDERS


def _dedupe(cases):
    """Merge cases declared by several sweeps into one case that lists all of them."""
    merged = {}
    for case in cases:
        if case in merged:
            sweeps = merged[case].sweeps + tuple(s for s in case.sweeps
                                                 if s not in merged[case].sweeps)
            merged[case] = replace(merged[case], sweeps=sweeps)
        else:
            merged[case] = case
    return tuple(merged.values())


def _cpu():
    cases = []
    # The H sweep and the two corners of the CPU targets (docs/benchmarks.md): H=512 at B=32 and
    # the small batch B=8 at H=64.
    for cell in ("LSTM", "GRU"):
        cases += [Case("cpu", cell, 100, 64, h, h, sweeps=("H",)) for h in (64, 128, 256)]
        cases += [Case("cpu", cell, 50, 32, 512, 512), Case("cpu", cell, 200, 8, 64, 64)]
    cases += [Case("cpu", "RNN", 100, 64, h, h, sweeps=("H",)) for h in (128, 256)]
    cases += [Case("cpu", cell, 400, 32, 128, 128, packed=True) for cell in ("LSTM", "GRU")]
    return Grid("cpu", "small CPU grid, cpu and reference vs torch (T=100, B=64, I=H; H=512 at B=32, "
                "B=8 at H=64; packed IMDB-like lengths at T<=400)", "cpu", _dedupe(cases))


def _flashrnn():
    cases = []
    for dtype in ("bfloat16", "float16"):
        for cell in CELLS:
            common = {"grid": "flashrnn", "cell": cell, "dtype": dtype}
            cases += [Case(T=1024, B=16, I=h, H=h, sweeps=("H",), **common)
                      for h in (128, 256, 512, 768)]
            cases += [Case(T=1024, B=b, I=768, H=768, sweeps=("B",), **common)
                      for b in (2, 8, 16, 32, 64, 128, 256)]
            cases += [Case(T=t, B=16, I=768, H=768, sweeps=("T",), **common)
                      for t in (256, 512, 1024, 2048)]
    return Grid("flashrnn", "FlashRNN's grid: B=16, T=1024, H sweep; B sweep and T sweep at H=768",
                "cuda", _dedupe(cases))


# Headline hidden sizes in the order they run (rows are saved one by one and a run may stop early):
# 256, the largest size a single-program persistent kernel can still hope to hold and where cuDNN's
# fp16 persistent kernels are strongest; 768, FlashRNN's headline size, where only a kernel spread
# over many SMs can win; then 128 and 512 complete the sweep.
HEADLINE_H = (256, 768, 128, 512)


def _headline():
    """FlashRNN's headline: LSTM and GRU at B=16, T=1024, I=H, each kernel form forced, against
    torch.nn in fp16 and in bf16. bf16 cases come first: each carries both cuDNN baselines (torch in
    bf16, torch-fp16 for cuDNN's fp16-only persistent kernels), so a run cut short after the bf16
    half has already answered the question; the fp16 half repeats it at the other precision."""
    cases = [Case("headline", cell, 1024, 16, h, h, dtype=dtype, sweeps=("H",))
             for dtype in ("bfloat16", "float16") for h in HEADLINE_H for cell in ("LSTM", "GRU")]
    return Grid("headline", "LSTM/GRU at B=16, T=1024, I=H in {128,256,512,768}, bf16/fp16: each "
                "kernel form vs cuDNN in fp16 and bf16", "cuda", _dedupe(cases),
                modes=("fwd", "fwdbwd"), providers=("torch", "torch-fp16", "torch-bf16",
                                                    "triton-forms"))


def _deepbench():
    cases = [Case("deepbench", "LSTM", 25, b, h, h, dtype="float16", sweeps=(f"B@H{h}",))
             for h in (512, 1024, 2048) for b in (16, 32, 64, 128)]
    cases += [Case("deepbench", "LSTM", 150, b, 256, 256, dtype="float16", sweeps=("B@H256",))
              for b in (16, 32, 64)]
    cases += [Case("deepbench", "GRU", t, 32, h, h, dtype="float16", sweeps=(f"T@H{h}",))
              for h in (1024, 1536, 2048) for t in (187, 375, 750)]
    return Grid("deepbench", "Baidu DeepBench RNN training shapes (fp16)", "cuda", _dedupe(cases))


def _haste():
    cases = [Case("haste", cell, 50, b, 256, h, sweeps=(f"H@B{b}",))
             for cell in CELLS for b in (1, 16, 32, 64, 128) for h in (128, 256, 512, 1024, 2048)]
    return Grid("haste", "haste's grid: fp32, T=50, input 256, B x H", "cuda", _dedupe(cases))


def _fastrnns():
    cases = []
    for cell in CELLS:
        cases += [Case("fastrnns", cell, 100, 64, 512, 512, layers=n, sweeps=("layers",))
                  for n in (1, 2, 4)]
        cases += [Case("fastrnns", cell, 100, 64, 512, 512, bidirectional=True)]
        # The fastrnns suite's variable-length variant, with IMDB-like lengths up to 1024 steps.
        cases += [Case("fastrnns", cell, 1024, 64, 512, 512, packed=True)]
    return Grid("fastrnns", "PyTorch's fastrnns default: T=100, B=64, I=H=512, fp32; 1/2/4 layers, "
                "bidirectional, packed", "cuda", _dedupe(cases))


def _small():
    shapes = ((3047, 6, 104, 40, 1), (2721, 6, 128, 72, 1), (3854, 16, 112, 128, 1),
              (1314, 20, 344, 32, 3), (2058, 62, 16, 168, 1))
    cases = [Case("small", cell, t, b, i, h, layers=n) for cell in CELLS
             for (t, b, i, h, n) in shapes]
    return Grid("small", "cuDNN small-hidden persistent cases (fp32)", "cuda", _dedupe(cases))


GRIDS = {grid.name: grid for grid in (_cpu(), _flashrnn(), _deepbench(), _haste(), _fastrnns(),
                                     _small(), _headline())}
# Not a micro grid: the documented tasks, timed per backend by tasks_grid.py.
TASKS_GRID = "tasks"
ALL_GRIDS = (*GRIDS, TASKS_GRID)
MAIN_JOB = {"cpu": ("cpu", TASKS_GRID), "cuda": ("flashrnn", "fastrnns", TASKS_GRID)}


def select(grid, *, cells=None, dtypes=None, tiny=False, limit=None):
    """The grid's cases for `cells`, re-declared in `dtypes` (default: the grid's own dtypes),
    optionally shrunk to smoke-test size and truncated to `limit` cases."""
    cases = [c for c in grid.cases if not cells or c.cell in cells]
    if dtypes:
        cases = [replace(c, dtype=d) for c in cases for d in dtypes]
    if tiny:
        cases = [c.tiny() for c in cases]
    cases = list(_dedupe(cases))
    return cases[:limit] if limit else cases
