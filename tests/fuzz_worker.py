"""Run fuzzer calls in a worker process, so a crash (abort, segfault) fails a call, not the run.

The worker is a one-process pool started with 'spawn' (a clean interpreter, the parent's
environment: TRITON_INTERPRET reaches it). When a call kills it, the side that was running is read
from a progress file, the call gets the verdict 'crash', and a fresh worker takes the next call.
"""

import concurrent.futures
import multiprocessing
import os
import tempfile

from fuzz_runner import Verdict, progress_to_file, run_call

_progress_path = None


def _initialise(path):
    global _progress_path
    _progress_path = path
    # Fresh Triton outputs are NaN-poisoned, so an element a kernel never writes is a mismatch.
    os.environ["FASTRNN_POISON"] = "1"


def _run_in_worker(call, torch_side):
    return run_call(call, progress_to_file(_progress_path), torch_side)


class Worker:
    """`worker.run(call)` -> Verdict, with crashes contained. Use as a context manager."""

    def __init__(self, timeout=300):
        self.timeout = timeout
        handle, self.progress_path = tempfile.mkstemp(prefix="fastrnn-fuzz-", suffix=".side")
        os.close(handle)
        self.pool = None

    def _start(self):
        context = multiprocessing.get_context("spawn")
        self.pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=context, initializer=_initialise,
            initargs=(self.progress_path,))

    def run(self, call):
        verdict = self._submit(call, torch_side=True)
        if verdict.category == "crash" and verdict.torch_error == ("crash",):
            # torch.nn itself crashed: fastrnn must still not, and says what it does instead.
            verdict = self._submit(call, torch_side=False)
        return verdict

    def _submit(self, call, torch_side):
        if self.pool is None:
            self._start()
        open(self.progress_path, "w").close()  # a crash before either side ran reads as setup
        future = self.pool.submit(_run_in_worker, call, torch_side)
        try:
            return future.result(timeout=self.timeout)
        except concurrent.futures.process.BrokenProcessPool:
            with open(self.progress_path) as handle:
                side = handle.read().strip() or "setup"
            self.close()
            return Verdict("crash", f"the process died while {side} ran the call",
                           ("crash",) if side == "torch" else None,
                           ("crash",) if side == "fastrnn" else None)
        except concurrent.futures.TimeoutError:
            self.close(kill=True)
            return Verdict("hang", f"no result after {self.timeout} s")

    def close(self, kill=False):
        if self.pool is not None:
            if kill:
                for process in list(getattr(self.pool, "_processes", {}).values()):
                    process.kill()
            self.pool.shutdown(wait=not kill, cancel_futures=True)
            self.pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        os.unlink(self.progress_path)
