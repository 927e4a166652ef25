"""Time boxes for `fastrnn gpu-run`: the run's budget split into per-section boxes, and a child
process that cannot outlive its box.

Each section runs as a child in its own process group (a new session), so a hung compile, a kernel
that never finishes or the workers of pytest-xdist all go down together: SIGINT first (pytest then
still prints its summary), SIGTERM, then SIGKILL at the box's end. The child's output (stdout and
stderr merged) streams into the log files with a cap per child, keeping its head and its tail, so
a child that prints gigabytes cannot fill the disk or the 16 MiB a returned file may have.
"""

import os
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

# Per child and per log file: the first HEAD_BYTES and the last TAIL_BYTES of its output.
HEAD_BYTES = 1536 * 1024
TAIL_BYTES = 512 * 1024
# A log file never grows past this (a returned file may have 16 MiB).
FILE_CAP_BYTES = 14 * 1024 * 1024
# What Outcome keeps in memory for the summary.
KEEP_BYTES = 16 * 1024
# Seconds to wait for a child that SIGKILL has not ended before leaving it behind.
ABANDON_S = 3.0


def process_age():
    """Seconds since this process started (Linux /proc), else 0: the interpreter start-up and the
    imports before the budget's clock starts count against the budget too."""
    try:
        stat = Path("/proc/self/stat").read_text()
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


class Budget:
    """The run's clock: `total` seconds, of which `reserve` are kept for the files written at the
    end (plot, summary), the rest shared by the sections in priority order.

    A section's box is its own share plus whatever the sections before it left unused, minus the
    shares the sections after it are still owed: a quick section hands its time on, a slow one is
    cut at its box, and the last section takes everything left.

        budget = Budget(540, {"doctor": 0.1, "tests": 0.3, "bench": 0.6})
        box = budget.box("tests")   # seconds, 0.0 when less than MIN_BOX are left
    """

    MIN_BOX = 3.0

    def __init__(self, total, shares, *, reserve=None, clock=time.monotonic, elapsed=0.0):
        self.total = float(total)
        self.shares = dict(shares)
        # 5% of the budget, between 3 and 25 s: a plot in a child (matplotlib's first import builds
        # its font cache) and writing the summary.
        self.reserve = min(25.0, max(3.0, 0.05 * self.total)) if reserve is None else reserve
        self.clock = clock
        self.start = clock() - elapsed

    def elapsed(self):
        return self.clock() - self.start

    def left(self):
        """Seconds to the end of the whole budget."""
        return self.total - self.elapsed()

    def remaining(self):
        """Seconds the sections may still use (the reserve excluded)."""
        return max(0.0, self.left() - self.reserve)

    def box(self, name):
        """Seconds for section `name` if it starts now (see the class docstring)."""
        names = list(self.shares)
        usable = max(0.0, self.total - self.reserve)
        owed_later = sum(self.shares[n] for n in names[names.index(name) + 1:]) * usable
        remaining = self.remaining()
        box = min(remaining, max(0.0, remaining - owed_later))
        return box if box >= self.MIN_BOX else 0.0


@dataclass
class Outcome:
    """How a child ended. status: 'passed' (exit 0), 'failed' (other exit), 'timeout' (killed at
    its box), 'killed' (stopped early by its watchdog, `reason` says why), 'error' (did not
    start). head/tail: the start and the end of its output, for the summary."""

    status: str
    returncode: int | None
    seconds: float
    reason: str | None = None
    head: str = ""
    tail: str = ""
    dropped_bytes: int = 0
    argv: list = field(default_factory=list)


class LogFile:
    """An append-only log with a size cap; later writes past the cap are dropped with one note."""

    def __init__(self, path, cap=FILE_CAP_BYTES):
        self.path, self.cap = Path(path), cap
        self.lock = threading.Lock()
        self.size = self.path.stat().st_size if self.path.exists() else 0
        self.full = False

    def write(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8", "replace")
        with self.lock:
            if self.full:
                return
            if self.size + len(data) > self.cap:
                data = data[: max(0, self.cap - self.size)]
                data += b"\n[log cap reached: the rest of this run's output is not in this file]\n"
                self.full = True
            with open(self.path, "ab") as handle:
                handle.write(data)
            self.size += len(data)


class _Capture:
    """Reads a child's output in a thread: the first HEAD_BYTES go to the logs as they come, the
    last TAIL_BYTES are held back and written when the child ends (with a note of what was
    dropped in between). `first` and `last` keep KEEP_BYTES of each end for the summary."""

    def __init__(self, stream, logs):
        self.stream, self.logs = stream, logs
        self.head_left = HEAD_BYTES
        self.tail = deque()
        self.tail_size = 0
        self.dropped = 0
        self.first = bytearray()
        self.last = bytearray()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for chunk in iter(lambda: self.stream.read1(65536), b""):
            if len(self.first) < KEEP_BYTES:
                self.first += chunk[: KEEP_BYTES - len(self.first)]
            self.last += chunk
            del self.last[:-KEEP_BYTES]
            if self.head_left > 0:
                part, chunk = chunk[: self.head_left], chunk[self.head_left:]
                self.head_left -= len(part)
                for log in self.logs:
                    log.write(part)
            if chunk:
                self.tail.append(chunk)
                self.tail_size += len(chunk)
                while self.tail_size - len(self.tail[0]) >= TAIL_BYTES:
                    self.dropped += len(self.tail[0])
                    self.tail_size -= len(self.tail.popleft())

    def finish(self, wait):
        """Flush the held-back tail to the logs; returns (first text, last text, dropped bytes)."""
        self.thread.join(wait)
        tail = b"".join(self.tail)
        extra = max(0, len(tail) - TAIL_BYTES)  # the deque holds whole chunks: trim to the byte
        tail, self.dropped = tail[extra:], self.dropped + extra
        if self.dropped:
            note = f"\n[... {self.dropped} bytes of output dropped here ...]\n".encode()
            for log in self.logs:
                log.write(note)
        for log in self.logs:
            log.write(tail)
        return (bytes(self.first).decode("utf-8", "replace"),
                bytes(self.last).decode("utf-8", "replace"), self.dropped)


def _signal_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_boxed(argv, timeout, *, logs=(), env=None, cwd=None, watchdog=None, poll=0.2,
              grace=None):
    """Run `argv` in its own process group for at most `timeout` seconds, output into `logs`.

    watchdog: optional callable() -> None or a reason; a reason stops the child early ('killed').
    grace: seconds before the end of the box at which SIGINT goes out (default: 10% of the box,
    between 0.2 and 4 s), SIGTERM halfway from there, SIGKILL at the end; the whole group ends
    within the box (plus a fraction of a second to reap it).
    """
    logs = list(logs)
    start = time.monotonic()
    try:
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                 start_new_session=True)
    except OSError as error:
        message = f"could not start {argv[0]}: {error}\n"
        for log in logs:
            log.write(message)
        return Outcome("error", None, 0.0, message.strip(), argv=list(argv))
    capture = _Capture(child.stdout, logs)
    grace = min(4.0, max(0.2, 0.1 * timeout)) if grace is None else grace
    try:
        status, stage, reason = _supervise(child, start, timeout, grace, watchdog, poll)
    except BaseException:  # Ctrl-C or SIGTERM of this process: the child's group goes down too
        _signal_group(child.pid, signal.SIGKILL)
        raise
    # The leader is gone; take down anything it left in its group (a stray worker).
    _signal_group(child.pid, signal.SIGKILL)
    returncode = child.poll()
    head, tail, dropped = capture.finish(wait=2.0)
    seconds = time.monotonic() - start
    if status is None:
        status = "passed" if returncode == 0 else "failed"
    if status == "timeout":
        reason = f"killed at its time box of {timeout:.0f} s" + (reason or "")
    return Outcome(status, returncode, seconds, reason, head, tail, dropped, list(argv))


def _supervise(child, start, timeout, grace, watchdog, poll):
    """Wait for `child`, stopping it by its watchdog or at the end of its box; returns
    (status or None when it ended by itself, escalation stage, watchdog reason)."""
    deadline = start + timeout
    stage, reason, status = 0, None, None
    while child.poll() is None:
        now = time.monotonic()
        if status is None and watchdog is not None:
            reason = watchdog()
            if reason:
                status, stage = "killed", 1
                _signal_group(child.pid, signal.SIGTERM)
                deadline = min(deadline, now + 2.0)  # a hung row gets 2 s, not the whole box
        if status is None and now >= deadline - grace:
            status = "timeout"
        if status is not None:
            # Escalate: SIGINT, SIGTERM halfway to the deadline, SIGKILL at it.
            if stage == 0:
                _signal_group(child.pid, signal.SIGINT)
                stage = 1
            elif stage == 1 and now >= deadline - grace / 2:
                _signal_group(child.pid, signal.SIGTERM)
                stage = 2
            elif stage == 2 and now >= deadline:
                _signal_group(child.pid, signal.SIGKILL)
                stage = 3
            elif stage == 3 and now >= deadline + ABANDON_S:
                # Still alive after SIGKILL: stuck in the kernel (a GPU driver call, say). Leave
                # it rather than overrun the budget waiting for it.
                reason = (reason or "") + f" (still alive {ABANDON_S:.0f} s after SIGKILL: left)"
                break
        time.sleep(poll if stage == 0 else min(poll, 0.05))
    return status, stage, reason
