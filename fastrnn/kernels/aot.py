"""Compile every kernel ahead of time for a GPU target, without a GPU, and report its resources.

The interpreter is more permissive than the compiler (no tl.dot >= 16 rule, no type checks of
loop-carried values, no register or shared-memory limits). This compiles each kernel with the
constexpr combinations the launchers use, for `--arch` (default sm_90, H100/H200), through
Triton's real pipeline down to a cubin (ptxas ships with triton), and prints registers, spills and
shared memory per kernel. It needs triton's NVIDIA backend but no driver and no GPU.

Run with TRITON_INTERPRET unset (under the interpreter `@triton.jit` builds interpreted functions):
    python -m fastrnn.kernels.aot [--arch 90] [--quick]
Exit status 1 when a kernel fails to compile or spills more than SPILL_LIMIT bytes in a persistent
configuration that select_form would pick.
"""

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

DTYPES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
# Spill bytes per thread tolerated in a default persistent configuration: a few hundred bytes stay
# in L1; kilobytes mean the form is past its size limit.
SPILL_LIMIT = 1024
SCALARS = ("t", "t_prev", "T", "B", "H", "H_OUT", "M", "N", "K", "stride_bk", "stride_bn")


def _kernels():
    """(kernel, names of the pointer arguments that are fp32 state buffers) for every kernel."""
    from fastrnn.kernels import common, gru, lstm, rnn

    return {
        "matmul": (common._matmul_kernel, {"a_ptr", "c_ptr", "old_ptr", "e_ptr"}),
        "lstm_fwd_persistent": (lstm._lstm_fwd_persistent_kernel, set()),
        "lstm_bwd_persistent": (lstm._lstm_bwd_persistent_kernel, {"dhr_ptr"}),
        "lstm_fwd_step": (lstm._lstm_fwd_step_kernel, {"gh_ptr", "c_ptr", "h_ptr", "hn_ptr"}),
        "lstm_bwd_step": (lstm._lstm_bwd_step_kernel, {"dh_ptr", "dhp_ptr", "dc_ptr"}),
        "gru_fwd_persistent": (gru._gru_fwd_persistent_kernel, set()),
        "gru_bwd_persistent": (gru._gru_bwd_persistent_kernel, set()),
        "gru_fwd_step": (gru._gru_fwd_step_kernel, {"gh_ptr", "h_ptr", "hn_ptr"}),
        "gru_bwd_step": (gru._gru_bwd_step_kernel, {"dh_ptr", "e_ptr"}),
        "rnn_fwd_persistent": (rnn._rnn_fwd_persistent_kernel, set()),
        "rnn_bwd_persistent": (rnn._rnn_bwd_persistent_kernel, set()),
        "rnn_fwd_step": (rnn._rnn_fwd_step_kernel, {"gh_ptr", "h_ptr", "hn_ptr"}),
        "rnn_bwd_step": (rnn._rnn_bwd_step_kernel, {"dh_ptr"}),
    }


def _configs(quick, arch=90):
    """(kernel name, dtype, constexprs, num_warps, is a default persistent choice) to compile."""
    from fastrnn.kernels import common

    flags = [dict(HAS_LENGTHS=True, REVERSE=True), dict(HAS_LENGTHS=False, REVERSE=False)]
    for dtype in DTYPES:
        dot = common.dot_meta(dtype) | {"DOT_FP32": False}
        # The largest padded hidden size select_form runs persistent, per cell and dtype.
        for cell, gates in (("lstm", 4), ("gru", 3), ("rnn", 1)):
            hidden = max(h for h in (16, 32, 64, 128, 256, 512)
                         if common.select_form(gates, h, h, 0, dtype, (arch // 10, arch % 10), 16)
                         == "persistent")
            warps = common.persistent_warps(gates * hidden * hidden, dtype)
            for flag in flags[:1] if quick else flags:
                extra = {"STORE_ACTS": True} if cell != "rnn" else {"RELU": False}
                if cell == "lstm":
                    extra["HAS_PROJ"] = False
                    sizes = {"BLOCK_B": 16, "BLOCK_H": hidden, "BLOCK_K": hidden}
                else:
                    sizes = {"BLOCK_B": 16, "BLOCK_H": hidden}
                if cell == "gru":
                    extra["HAS_BIAS"] = True
                fwd = {**flag, **extra, **dot, **sizes}
                yield f"{cell}_fwd_persistent", dtype, fwd, warps, True
                bwd = {k: v for k, v in fwd.items() if k not in ("STORE_ACTS", "HAS_BIAS")}
                yield f"{cell}_bwd_persistent", dtype, bwd, warps, True
            if cell == "lstm":
                proj = {"HAS_LENGTHS": True, "REVERSE": False, "HAS_PROJ": True, **dot,
                        "BLOCK_B": 16, "BLOCK_H": 32, "BLOCK_K": 16}
                warps = common.persistent_warps(5 * 32 * 16, dtype)
                yield "lstm_fwd_persistent", dtype, {**proj, "STORE_ACTS": True}, warps, True
                yield "lstm_bwd_persistent", dtype, proj, warps, True
        step = {"BLOCK_B": 16, "BLOCK_H": 64, "HAS_LENGTHS": True}
        yield "matmul", dtype, {"HAS_OLD": True, "HAS_E": True, "HAS_Y": True, "HAS_LENGTHS": True,
                                **dot, "BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32}, 4, False
        yield "lstm_fwd_step", dtype, {**step, "HAS_PROJ": False, "STORE_ACTS": True}, 4, False
        yield "lstm_bwd_step", dtype, {**step, "HAS_PROJ": True}, 4, False
        yield "gru_fwd_step", dtype, {**step, "HAS_BIAS": True, "STORE_ACTS": True}, 4, False
        yield "gru_bwd_step", dtype, step, 4, False
        yield "rnn_fwd_step", dtype, {**step, "RELU": True}, 4, False
        yield "rnn_bwd_step", dtype, {**step, "RELU": False}, 4, False


def _ptxas_report(ptx, arch):
    """(registers, spill bytes) from `ptxas -v` on the kernel's PTX."""
    from triton.backends.nvidia.compiler import get_ptxas

    ptxas = get_ptxas(arch).path
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kernel.ptx"
        path.write_text(ptx)
        suffix = "a" if arch >= 90 else ""
        run = subprocess.run([ptxas, "-v", f"--gpu-name=sm_{arch}{suffix}", str(path), "-o",
                              str(Path(tmp) / "kernel.cubin")], capture_output=True, text=True,
                             check=True)
    text = run.stderr + run.stdout
    registers = int(re.search(r"Used (\d+) registers", text).group(1))
    spills = sum(int(n) for n in re.findall(r"(\d+) bytes spill (?:stores|loads)", text))
    return registers, spills


def compile_all(arch=90, quick=False, out=sys.stdout, only=None):
    """Compile every configuration (or only the one at index `only`); returns the failures."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    target = GPUTarget("cuda", arch, 32)
    kernels = _kernels()
    failures = 0
    for index, (name, dtype, constexprs, warps, persistent) in enumerate(_configs(quick, arch)):
        if only is not None and index != only:
            continue
        fn, fp32_args = kernels[name]
        signature = {}
        for arg in fn.arg_names:
            if arg in constexprs:
                signature[arg] = "constexpr"
            elif arg == "len_ptr":
                signature[arg] = "*i64"
            elif arg.endswith("_ptr"):
                signature[arg] = "*fp32" if arg in fp32_args else f"*{DTYPES[dtype]}"
            elif arg in SCALARS:
                signature[arg] = "i32"
            else:
                raise KeyError(f"{name}: no type for argument {arg!r}")
        source = ASTSource(fn=fn, signature=signature,
                           constexprs={(fn.arg_names.index(k),): v for k, v in constexprs.items()})
        label = f"{name:22s} {DTYPES[dtype]} warps={warps} " + " ".join(
            f"{k}={v}" for k, v in constexprs.items() if k.startswith("BLOCK"))
        try:
            compiled = triton.compile(source, target=target, options={"num_warps": warps})
            registers, spills = _ptxas_report(compiled.asm["ptx"], arch)
        except Exception as error:  # report every kernel, then fail once
            failures += 1
            print(f"FAIL {label}: {type(error).__name__}: {error}", file=out)
            continue
        bad = persistent and spills > SPILL_LIMIT
        failures += bad
        print(f"{'SPILL' if bad else 'ok   '} {label} regs={registers} spill_bytes={spills} "
              f"shared={compiled.metadata.shared}", file=out)
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, default=90, help="compute capability, e.g. 90, 80")
    parser.add_argument("--quick", action="store_true", help="one flag combination per kernel")
    parser.add_argument("--index", type=int, help="compile only this configuration")
    args = parser.parse_args(argv)
    if args.index is not None:
        return 1 if compile_all(args.arch, args.quick, only=args.index) else 0
    # One process per configuration: a compiler crash (an LLVM assertion aborts the process) is
    # then reported as that kernel's failure instead of ending the run.
    failures = 0
    for index in range(len(list(_configs(args.quick, args.arch)))):
        command = [sys.executable, "-m", "fastrnn.kernels.aot", "--arch", str(args.arch),
                   "--index", str(index)] + (["--quick"] if args.quick else [])
        run = subprocess.run(command, capture_output=True, text=True)
        lines = [line for line in run.stdout.splitlines() if line.strip()]
        if run.returncode != 0 and not lines:
            crash = (run.stderr.strip().splitlines() or ["no output"])[-1]
            lines = [f"CRASH configuration {index}: {crash[:300]}"]
        print("\n".join(lines), flush=True)
        failures += run.returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
