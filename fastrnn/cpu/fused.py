"""The fused step functions of fused_steps.c: built with the machine's C compiler on first use,
loaded with ctypes.

Dimensions: n rows of a step, H hidden size, X a buffer's row width.

A step's pointwise part (LSTM: three sigmoids, two tanh, the cell update; GRU likewise) is 5-8 ATen
ops, each a few microseconds of dispatch plus a pass over memory; at B=64, H=64 they took 43-65 us
of an LSTM step whose recurrent product took 18-41. fused_steps.c does it in one pass, one ctypes
call per step (about 2 us), the recurrent product staying ATen's BLAS call; a small LSTM's segment
is one call for all its steps, products included (whole_loop). The source is compiled once per
machine into a cache (FASTRNN_CACHE_DIR, else $XDG_CACHE_HOME/fastrnn, else ~/.cache/fastrnn),
keyed by the source, the compiler, its flags and the CPU, so a copy of the cache on another CPU
is never loaded.

Optional: without a C compiler (or with FASTRNN_CPU_FUSED=0) `steps(dtype)` is None and the cells
run the same formulas as ATen ops; `status()` says which and why (`fastrnn env` prints it).
Only float32 and float64 have fused steps (the CPU path computes float16 and bfloat16 in float32).
"""

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

SOURCE = Path(__file__).with_name("fused_steps.c")
# -fno-trapping-math lets the compiler evaluate both sides of the activations' selects (the loops
# vectorize); -fno-math-errno lets it inline floorf. Nothing here reads floating-point flags or errno.
FLAGS = ("-O3", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared")
# Tuned for this CPU where the compiler knows how, else generic code. With AVX-512, 512-bit vectors:
# the activations are compute-bound (an LSTM step at B=64 H=64: 23 against 31 us with gcc's default
# 256-bit preference on a Cascade Lake core).
ARCH_FLAGS = (("-march=native", "-mprefer-vector-width=512"), ("-march=native",), ())
ENV_SWITCH = "FASTRNN_CPU_FUSED"

_I64, _PTR = ctypes.c_int64, ctypes.c_void_p
# Argument kinds of each exported function, in fused_steps.c's order: n, H, then (pointer, row
# stride) pairs, one gather index pointer where a step reads gx's rows by index.
_SIGNATURES = {
    "lstm_forward": (_I64, _I64, _PTR, _I64, _PTR, _I64, _PTR, _PTR, _I64, _PTR, _I64, _PTR, _I64),
    "lstm_backward": (_I64, _I64, _PTR, _I64, _PTR, _I64, _PTR, _I64, _PTR, _PTR, _I64, _PTR, _I64),
    "gru_forward": (_I64, _I64, _PTR, _I64, _PTR, _I64, _PTR, _PTR, _I64, _PTR, _I64, _PTR, _I64,
                    _PTR, _I64),
    "gru_backward": (_I64, _I64, _PTR, _I64, _PTR, _I64, _PTR, _I64, _PTR, _I64, _PTR, _I64, _PTR,
                     _I64, _PTR, _I64),
    # Whole loops: steps, n, H, K, the weight, then per-step address and row-stride arrays.
    "lstm_forward_loop": (_I64, _I64, _I64, _I64, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR, _I64,
                          _PTR, _PTR, _PTR, _PTR, _PTR),
    # steps, n, H, I, K, W_ih^T and W_hh^T packed, the bias, then per-step arrays as above.
    "lstm_inference_loop": (_I64, _I64, _I64, _I64, _I64, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR,
                            _PTR, _I64, _PTR, _PTR, _PTR),
    "lstm_backward_loop": (_I64, _I64, _I64, _I64, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR,
                           _PTR, _PTR, _PTR, _PTR),
    # K, N, b, its strides (k, n), the packed copy.
    "pack_panels": (_I64, _I64, _PTR, _I64, _I64, _PTR),
    "sigmoid": (_I64, _PTR, _PTR),
    "tanh": (_I64, _PTR, _PTR),
}
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
# A segment of the LSTM (without projection) of at most LOOP_MAX_ROWS rows and a recurrent weight
# of at most LOOP_MAX_WEIGHT elements runs as one call of the whole loop, its recurrent product
# included (fused_steps.c's GEMM): there the library product's call (2-3 us of dispatch), the
# per-step ctypes call and Python cost more than the arithmetic. On a 2-core AVX-512 Xeon, T=100,
# one thread, speedup vs torch.nn with / without it (/tmp script alternating torch.nn and both
# settings twice per case): H=64 inference 0.51x / 0.31x at B=8, 0.60x / 0.50x at B=32, 0.61x /
# 0.57x at B=64 (fwd+bwd 0.67x / 0.46x, 0.85x / 0.73x, 0.87x / 0.80x); H=128 0.71x / 0.58x at B=8,
# within 3% at B=64; at H=256 (a 1 MiB weight) MKL's product wins (B=8 inference 0.76x against
# 0.83x), and at H=64 B=128 fwd+bwd too (0.80x against 1.11x). Those numbers predate the packed
# panels and whole-K blocks of the loop's GEMM, which is why inference (inference.py, lstm.py)
# has bounds of its own.
LOOP_MAX_ROWS = 64
LOOP_MAX_WEIGHT = 1 << 16  # elements: H = 128's (512, 128)
_lock = threading.Lock()


def _cache_dir():
    if os.environ.get("FASTRNN_CACHE_DIR"):
        return Path(os.environ["FASTRNN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fastrnn"


def _compiler():
    """The C compiler's command words: $CC (which may carry words of its own, 'ccache gcc'), else
    the first of cc, gcc, clang on the PATH; None without one."""
    if os.environ.get("CC"):
        words = shlex.split(os.environ["CC"])
        path = shutil.which(words[0]) if words else None
        return None if path is None else [path, *words[1:]]
    path = next((path for path in map(shutil.which, ("cc", "gcc", "clang")) if path), None)
    return None if path is None else [path]


def _cpu_identity():
    """What a build tuned with -march=native depends on: the CPU's model and feature flags."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        lines = cpuinfo.read_text(errors="replace").splitlines()
        return "\n".join(sorted({ln for ln in lines if ln.split(":")[0].strip() in
                                 ("model name", "flags", "Features", "CPU part")}))
    return f"{platform.machine()} {platform.processor()}"


def _build(compiler, cache):
    """Compile SOURCE into `cache`; returns (path, None) or (None, why it failed)."""
    source = SOURCE.read_bytes()
    errors = []
    for arch in ARCH_FLAGS:
        flags = (*FLAGS, *arch)
        key = hashlib.sha256(b"\0".join([source, " ".join(compiler).encode(), " ".join(flags).encode(),
                                         _cpu_identity().encode()])).hexdigest()[:16]
        target = cache / f"fused_steps-{key}.so"
        if target.exists():
            return target, None
        cache.mkdir(parents=True, exist_ok=True)
        # Built under a temporary name and renamed: concurrent processes (pytest-xdist, data loader
        # workers) never load a half-written file.
        fd, tmp = tempfile.mkstemp(dir=cache, suffix=".so.tmp")
        os.close(fd)
        try:
            done = subprocess.run([*compiler, *flags, str(SOURCE), "-o", tmp, "-lm"],
                                  capture_output=True, text=True, timeout=300)
            if done.returncode == 0:
                os.replace(tmp, target)
                return target, None
            errors.append(f"{' '.join(arch) or 'generic'}: {done.stderr.strip()[-300:]}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return None, "the C compiler failed: " + "; ".join(errors)


def _bind(path):
    lib = ctypes.CDLL(str(path))
    kernels = {}
    for dtype, suffix in _SUFFIX.items():
        table = {}
        for name, argtypes in _SIGNATURES.items():
            symbol = f"fastrnn_{name}_{suffix}"
            if not hasattr(lib, symbol):
                continue  # the activations exist for float32 only
            function = getattr(lib, symbol)
            function.argtypes, function.restype = argtypes, None
            table[name] = function
        kernels[dtype] = SimpleNamespace(**table)
    return kernels


@functools.cache
def _load():
    """({dtype: namespace of functions} or None, a line saying what was loaded or why not)."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return None, f"off ({ENV_SWITCH}=0): the CPU path's steps run as ATen ops"
    compiler = _compiler()
    if compiler is None:
        return None, "no C compiler found (cc, gcc, clang or $CC): the CPU path's steps run as ATen ops"
    with _lock:
        try:
            path, error = _build(compiler, _cache_dir())
        except (OSError, subprocess.SubprocessError) as exc:
            path, error = None, f"building failed: {exc}"
    if path is None:
        return None, f"{error}; the CPU path's steps run as ATen ops"
    try:
        return _bind(path), f"compiled by {' '.join(compiler)} into {path}"
    except OSError as exc:
        return None, f"loading {path} failed: {exc}; the CPU path's steps run as ATen ops"


def steps(dtype):
    """The fused step functions for `dtype` (a namespace: lstm_forward, lstm_backward, gru_forward,
    gru_backward; float32 also sigmoid and tanh), or None where they cannot run."""
    kernels = _load()[0]
    return None if kernels is None else kernels.get(dtype)


def status():
    """One line: whether the fused steps are in use, and where they were built or why not."""
    return _load()[1]


def rows(views):
    """([pointer], [row stride]) of per-step views (n, X) for a step function's (pointer, row
    stride) pairs. Each must have unit stride within a row (a view of one row may have any row
    stride: only its first row is read)."""
    pointers, strides = [], []
    for view in views:
        row_stride, unit = view.stride()
        if unit != 1 and view.shape[1] > 1:
            raise ValueError(f"a fused step needs rows of unit stride, got strides {view.stride()}")
        pointers.append(view.data_ptr())
        strides.append(row_stride)
    return pointers, strides


def whole_loop(rows, weight):
    """Whether a segment of `rows` rows with this recurrent weight runs as one whole-loop call."""
    return rows <= LOOP_MAX_ROWS and weight.numel() <= LOOP_MAX_WEIGHT


# Columns of a panel of fused_steps.c's GEMM operand: 256 bytes a row in either type.
PANEL_COLS = {torch.float32: 64, torch.float64: 32}


def pack_panels(b):
    """b (K, N) in the layout of fused_steps.c's GEMM operand: a new contiguous 1-D tensor holding
    the N // C panels of C = PANEL_COLS[dtype] columns, each (K, C) row-major, then the remaining
    (K, N % C) columns row-major. b may be any strided view (a transposed weight); its dtype needs
    compiled steps (fused.steps)."""
    k, n = b.shape
    packed = b.new_empty(k * n)
    steps(b.dtype).pack_panels(k, n, b.data_ptr(), *b.stride(), packed.data_ptr())
    return packed


def addresses(*columns):
    """Per-step arrays for a whole-loop function: an int64 (len(columns), steps) table of the
    columns (int64 (steps,) arrays of addresses or row strides; None: zeros, a null pointer) and
    the address of each of its rows. The table must stay alive until the call returns."""
    steps = next(len(column) for column in columns if column is not None)
    table = np.stack([np.zeros(steps, dtype=np.int64) if column is None else column
                      for column in columns])
    base, row_bytes = table.ctypes.data, table.strides[0]
    return table, [base + index * row_bytes for index in range(len(columns))]
