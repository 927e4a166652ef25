"""Timing of one closure: triton.testing.do_bench on CUDA, torch.utils.benchmark on CPU.

Both report the median and the 20th/80th percentiles in milliseconds. The first calls (Triton
compilation, autotuning, cuDNN plan selection, allocator warm-up) happen before timing starts.
Peak memory: on CUDA max_memory_allocated over one call (everything resident counts); on the CPU,
where no allocator statistic covers torch's tensors (tracemalloc does not see them, and the
process's resident size misses allocations glibc serves from memory it already holds), the
profiler's record of every tensor allocation and free during one call, whose running sum peaks
at the most tensor memory the call added to what existed before it.
"""

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.benchmark import Timer


@dataclass(frozen=True)
class Settings:
    """How long to time. CPU: about min_repeats blocks, in at least min_run_time seconds and at
    most max_run_time seconds, except that a slow closure always gets 3 blocks (keeps a grid's
    budget). CUDA: do_bench's warm-up and repetition budgets in milliseconds."""

    threads: int = 1
    min_run_time: float = 0.3
    max_run_time: float = 1.5
    min_repeats: int = 5
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
    """do_bench's median and p20/p80 (it flushes L2 before every call), then one call for memory.

    do_bench sizes its repetitions from rep_ms; a closure slower than rep_ms / 3 gets its budget
    raised so the quantiles come from at least 3 calls.
    """
    import triton.testing

    fn()  # compile and autotune before anything is timed
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    estimate_ms = (time.perf_counter() - start) * 1e3
    rep_ms = max(settings.rep_ms, 3 * estimate_ms)
    median, p20, p80 = triton.testing.do_bench(fn, warmup=settings.warmup_ms, rep=rep_ms,
                                               quantiles=[0.5, 0.2, 0.8])
    torch.cuda.synchronize()
    # Peak of one call, counting what is resident then (inputs, weights, the module's buffers).
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    repeats = max(1, int(rep_ms / max(median, 1e-6)))  # do_bench's own count, from its estimate
    return Timing(median, p20, p80, repeats, "triton.testing.do_bench",
                  int(torch.cuda.max_memory_allocated()))


def time_cpu(fn, settings):
    """torch.utils.benchmark's blocked_autorange with the thread count fixed, asked for enough run
    time to collect about min_repeats blocks (at least 3 for a slow closure, whatever it costs).

    blocked_autorange sizes its blocks so timer overhead is negligible (its sizing run is a second
    warm-up) and does not re-warm between blocks, unlike Timer.timeit, which runs the statement
    twice more per call.
    """
    return time_cpu_rounds([fn], settings, rounds=1)[0]


def time_cpu_rounds(fns, settings, rounds=3):
    """Timings of several closures, each given time_cpu's budget split over `rounds` rounds that
    visit every closure in turn; each closure's quantiles come from all its blocks (at least 3).
    A slow closure (one call longer than its share of a round) still gets one block per round."""
    budgets = []
    for fn in fns:
        start = time.perf_counter()
        fn()  # warm-up: allocator, lazy init, first-call dispatch; also the cost estimate
        estimate = time.perf_counter() - start
        budgets.append(min(max(settings.min_repeats * estimate, settings.min_run_time),
                           max(settings.max_run_time, 3 * estimate)))
    timers = [Timer(stmt="fn()", globals={"fn": fn}, num_threads=settings.threads) for fn in fns]
    times = [[] for _ in fns]  # seconds per call, one entry per block
    for _ in range(rounds):
        for index, timer in enumerate(timers):
            times[index] += timer.blocked_autorange(min_run_time=budgets[index] / rounds).times
    for index, timer in enumerate(timers):
        # blocked_autorange sizes a block to about 50 ms, so a short budget can end at 2 blocks:
        # quantiles want at least 3.
        while len(times[index]) < 3:
            times[index] += timer.blocked_autorange(min_run_time=budgets[index] / rounds).times
    timings = []
    for fn, blocks in zip(fns, times):
        p20, median, p80 = np.quantile(np.array(blocks) * 1e3, [0.2, 0.5, 0.8])
        timings.append(Timing(float(median), float(p20), float(p80), len(blocks),
                              "torch.utils.benchmark.Timer.blocked_autorange", cpu_peak_bytes(fn)))
    return timings


def cpu_peak_bytes(fn):
    """The most tensor memory one call of `fn` holds at once beyond what existed before it (its
    inputs, the weights and gradient buffers of earlier calls), in bytes: the running sum of the
    profiler's allocation and free records (torch.profiler with profile_memory), in time order.
    None where this torch's profiler does not give them."""
    from torch.profiler import ProfilerActivity, profile

    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        records = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
        records.sort(key=lambda e: e.start_ns())
        held = peak = 0
        for record in records:
            held += record.nbytes()
            peak = max(peak, held)
    except (AttributeError, RuntimeError):  # a torch whose profiler records differ
        return None
    return int(peak)


def measure(fn, device, settings):
    """Timing of `fn` on `device` ('cpu' or 'cuda')."""
    if torch.device(device).type == "cuda":
        return time_cuda(fn, settings)
    return time_cpu(fn, settings)
