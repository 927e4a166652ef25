"""Timing of one closure: triton.testing.do_bench on CUDA, torch.utils.benchmark on CPU.

Both report the median and the 20th/80th percentiles in milliseconds. The first calls (Triton
compilation, autotuning, cuDNN plan selection, allocator warm-up) happen before timing starts.
Peak memory is CUDA's max_memory_allocated over one call; on CPU there is no allocator statistic
that covers torch's tensors (tracemalloc does not see them), so it is None rather than a guess.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.benchmark import Timer


@dataclass(frozen=True)
class Settings:
    """How long to time. CPU: at least min_repeats timed blocks and min_run_time seconds, but a
    slow closure stops at 3 blocks once max_run_time seconds are spent (keeps a grid's budget).
    CUDA: do_bench's warm-up and repetition budgets in milliseconds."""

    threads: int = 1
    min_run_time: float = 0.3
    max_run_time: float = 1.5
    min_repeats: int = 5
    max_repeats: int = 50
    warmup_ms: float = 25.0
    rep_ms: float = 100.0


@dataclass(frozen=True)
class Timing:
    median_ms: float
    p20_ms: float
    p80_ms: float
    repeats: int | None
    timer: str
    peak_mem_bytes: int | None


def time_cuda(fn, settings):
    """do_bench's median and p20/p80 (it flushes L2 between calls), then one call for memory."""
    import triton.testing

    fn()  # compile and autotune before do_bench's own warm-up estimate
    torch.cuda.synchronize()
    median, p20, p80 = triton.testing.do_bench(fn, warmup=settings.warmup_ms, rep=settings.rep_ms,
                                               quantiles=[0.5, 0.2, 0.8])
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return Timing(median, p20, p80, None, "triton.testing.do_bench",
                  int(torch.cuda.max_memory_allocated()))


def time_cpu(fn, settings):
    """Blocks of `number` calls (>= ~10 ms each) through torch.utils.benchmark.Timer, with the
    thread count fixed, until both min_repeats blocks and min_run_time seconds are reached."""
    fn()  # warm-up: allocator, lazy init, first-call dispatch
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=settings.threads)
    first = timer.timeit(1).mean
    number = max(1, int(0.01 / max(first, 1e-9)))
    # A call of >= 10 ms is its own block, so the sizing call already counts as one.
    times = [first] if number == 1 else []
    elapsed = first

    def more():
        if len(times) >= settings.max_repeats:
            return False
        if len(times) >= 3 and elapsed >= settings.max_run_time:
            return False
        return len(times) < settings.min_repeats or elapsed < settings.min_run_time

    while more():
        block = timer.timeit(number).mean
        times.append(block)
        elapsed += block * number
    p20, median, p80 = np.quantile(np.array(times) * 1e3, [0.2, 0.5, 0.8])
    return Timing(float(median), float(p20), float(p80), len(times),
                  "torch.utils.benchmark.Timer", None)


def measure(fn, device, settings):
    """Timing of `fn` on `device` ('cpu' or 'cuda')."""
    if torch.device(device).type == "cuda":
        return time_cuda(fn, settings)
    return time_cpu(fn, settings)
