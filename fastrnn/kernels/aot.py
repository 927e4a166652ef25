"""Compile the kernels ahead of time for a GPU target, without a GPU, and report their resources.

The interpreter is more permissive than the compiler (no tl.dot >= 16 rule, no type checks of
loop-carried values, no register or shared-memory limits). This compiles, for `--arch` (default
sm_90, H100/H200), the configurations the planner (forms.py) picks on an H100 for representative
sizes of every cell, pass and form, through Triton's real pipeline down to a cubin (ptxas ships
with triton), and prints registers, spills and shared memory per kernel. It needs triton's NVIDIA
backend but no driver and no GPU.

Each configuration compiles twice the way the runtime specialises a launch: `aligned`, with
16-byte-aligned pointers (torch's allocations always are) and sizes divisible by 16 (the benchmark
sizes), and `odd`, with aligned pointers but sizes that are not (H = 1000, say). Alignment turns
on vectorised and asynchronous copies, which changes registers and shared memory.

Run with TRITON_INTERPRET unset (under the interpreter `@triton.jit` builds interpreted functions):
    python -m fastrnn.kernels.aot [--arch 90] [--quick] [--ptx DIR]
Exit status 1 when a kernel fails to compile, needs more shared memory than an H100 block has, or
spills more than forms.SPILL_LIMIT bytes in a persistent or cooperative configuration (at run
time such a kernel makes the planner move that shape to the next form, launch.launch).
"""

import argparse
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

DTYPES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
# The H100/H200 opt-in shared memory per block.
SHARED_LIMIT = 227 * 1024
SCALARS = ("T", "B", "H", "H_OUT", "S0", "STEPS", "spin_limit")
# Scalars the runtime specialises when divisible by 16 (S0, STEPS, T, spin_limit are exempt: the
# kernels mark them do_not_specialize).
ALIGNED_SCALARS = ("B", "H", "H_OUT")
# Pointer arguments that hold fp32 whatever the I/O dtype, and those that do in stepwise launches
# (the carried state between launches).
FP32_POINTERS = {"dhr_ptr", "dex_ptr"}
STEPWISE_FP32_POINTERS = {"hin_ptr", "cin_ptr", "hn_ptr", "cn_ptr", "dhn_ptr", "dcn_ptr",
                          "dh0_ptr", "dc0_ptr"}


@dataclass(frozen=True)
class Config:
    """One kernel compile: the cell's kernel for `pass_name`, a planned shape and its constexprs."""

    cell: str
    pass_name: str  # 'fwd' or 'bwd'
    shape: object  # forms.Shape
    plan: object  # forms.Plan
    phases: tuple  # (PHASE_A, PHASE_B), or () for kernels without phases

    @property
    def label(self):
        phase = f" phase {'AB'[self.phases.index(True)]}" if sum(self.phases) == 1 else ""
        proj = f" P={self.shape.proj}" if self.shape.proj else ""
        return (f"{self.cell}_{self.pass_name} {self.plan.form:11s} {DTYPES[self.shape.dtype]} "
                f"H={self.shape.hidden}{proj} B={self.shape.batch}{phase}")


def h100_facts():
    from fastrnn.kernels import forms

    return forms.DeviceFacts("H100 (planned)", 132, SHARED_LIMIT, False)


def _shapes(quick):
    """(cell, hidden, proj, batch, dtype, form) of every configuration to compile."""
    bf16, fp16, fp32 = torch.bfloat16, torch.float16, torch.float32
    for cell in ("lstm", "gru", "rnn"):
        yield cell, 64, 0, 16, fp32, "persistent"
        yield cell, 128, 0, 16, bf16, "persistent"
        for hidden in ((256, 768) if quick else (256, 512, 768, 1024, 1536)):
            yield cell, hidden, 0, 16, bf16, "cooperative"
        yield cell, 1024, 0, 128, bf16, "cooperative"
        if not quick:
            yield cell, 512, 0, 64, fp16, "cooperative"
            yield cell, 768, 0, 16, fp32, "cooperative"
            yield cell, 1024, 0, 16, fp32, "stepwise"
        yield cell, 2048, 0, 16, bf16, "stepwise"
    yield "lstm", 96, 48, 16, bf16, "persistent"
    yield "lstm", 1024, 512, 16, bf16, "cooperative"
    yield "lstm", 2048, 1024, 16, bf16, "stepwise"


def configs(quick=False):
    """Every Config, planned for an H100 with the form forced."""
    from fastrnn.kernels import forms

    for cell, hidden, proj, batch, dtype, form in _shapes(quick):
        shape = forms.Shape(cell, hidden, proj, batch, dtype)
        with forms.use_form(form):
            plan = forms.plan(shape, None, facts=h100_facts())
        yield Config(cell, "fwd", shape, plan, () if cell != "lstm" else (True, True))
        yield Config(cell, "bwd", shape, plan, (True, True))
        if form == "stepwise":
            # Stepwise launches each phase on its own: compile the phase-A-only variants too.
            if cell == "lstm" and proj:
                yield Config(cell, "fwd", shape, plan, (True, False))
            yield Config(cell, "bwd", shape, plan, (True, False))


def _kernel(cell, pass_name):
    from fastrnn.kernels import gru, lstm, rnn

    module = {"lstm": lstm, "gru": gru, "rnn": rnn}[cell]
    return getattr(module, f"_{cell}_{pass_name}_kernel")


def _constexprs(config, fn, lengths):
    from fastrnn.kernels import forms

    meta = forms.plan_meta(config.shape, config.plan)
    values = {k: v for k, v in meta.items() if not k.startswith("num_")}
    values.update(HAS_LENGTHS=lengths, REVERSE=False, HAS_PROJ=bool(config.shape.proj),
                  STORE_ACTS=True, HAS_BIAS=True, RELU=False, DOT_FP32=False)
    if config.phases:
        values.update(PHASE_A=config.phases[0], PHASE_B=config.phases[1])
    return {k: v for k, v in values.items() if k in fn.arg_names}, meta["num_warps"]


def _signature(config, fn, constexprs):
    io = DTYPES[config.shape.dtype]
    stepwise = config.plan.form == "stepwise"
    signature = {}
    for arg in fn.arg_names:
        if arg in constexprs:
            signature[arg] = "constexpr"
        elif arg == "len_ptr":
            signature[arg] = "*i64"
        elif arg == "sync_ptr":
            signature[arg] = "*i32"
        elif arg.endswith("_ptr"):
            fp32 = arg in FP32_POINTERS or (stepwise and arg in STEPWISE_FP32_POINTERS)
            signature[arg] = "*fp32" if fp32 else f"*{io}"
        elif arg in SCALARS:
            signature[arg] = "i32"
        else:
            raise KeyError(f"{fn.__name__}: no type for argument {arg!r}")
    return signature


def _attrs(config, fn, signature, aligned_sizes):
    """The runtime's specialisation: 16-byte-aligned pointers, and (aligned_sizes) B, H, H_out
    divisible by 16 where the configuration's sizes are."""
    sizes = {"B": config.shape.batch, "H": config.shape.hidden, "H_OUT": config.shape.h_out}
    attrs = {}
    for index, arg in enumerate(fn.arg_names):
        kind = signature[arg]
        divisible = aligned_sizes and arg in ALIGNED_SCALARS and sizes[arg] % 16 == 0
        if kind != "constexpr" and (kind.startswith("*") or divisible):
            attrs[(index,)] = [["tt.divisibility", 16]]
    return attrs


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


def compile_config(config, arch=90, aligned=True, lengths=True):
    """Compile one configuration (`aligned` sizes, else odd ones; with or without variable
    lengths); returns (compiled kernel, registers, spill bytes)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    fn = _kernel(config.cell, config.pass_name)
    constexprs, warps = _constexprs(config, fn, lengths)
    signature = _signature(config, fn, constexprs)
    attrs = _attrs(config, fn, signature, aligned)
    source = ASTSource(fn=fn, signature=signature,
                       constexprs={(fn.arg_names.index(k),): v for k, v in constexprs.items()},
                       attrs=attrs)
    compiled = triton.compile(source, target=GPUTarget("cuda", arch, 32),
                              options={"num_warps": warps, "num_stages": 1})
    registers, spills = _ptxas_report(compiled.asm["ptx"], arch)
    return compiled, registers, spills


def check(config, registers, spills, shared):
    """The problems of one compiled configuration (empty when it is fine)."""
    problems = []
    if shared > SHARED_LIMIT:
        problems.append(f"shared {shared} B > {SHARED_LIMIT} B")
    from fastrnn.kernels import forms

    if config.plan.form != "stepwise" and spills > forms.SPILL_LIMIT:
        problems.append(f"spills {spills} B > {forms.SPILL_LIMIT} B")
    return problems


def compile_all(arch=90, quick=False, out=sys.stdout, only=None, ptx_dir=None):
    """Compile every configuration (or only the one at index `only`) in both variants;
    returns the number of failures."""
    failures = 0
    for index, config in enumerate(configs(quick)):
        if only is not None and index != only:
            continue
        fields = []
        bad = []
        # Two variants: aligned sizes with variable lengths, and without lengths (which compiles
        # other selects: the one that made LLVM abort on the fp32 LSTM backward) at odd sizes
        # where the plan's 16-row tiles can meet them (forms._aligned), else aligned.
        odd = config.plan.block_b == 16
        for variant, aligned, lengths in (("aligned", True, True),
                                          ("odd/no-len" if odd else "no-len", not odd, False)):
            try:
                compiled, registers, spills = compile_config(config, arch, aligned, lengths)
            except Exception as error:  # report every kernel, then fail once
                bad.append(f"{variant}: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
                continue
            shared = compiled.metadata.shared
            fields.append(f"{variant} regs={registers} spill={spills} shared={shared}")
            bad += [f"{variant}: {p}" for p in check(config, registers, spills, shared)]
            if ptx_dir is not None and variant == "aligned":
                Path(ptx_dir, f"{index:02d}.ptx").write_text(compiled.asm["ptx"])
        failures += bool(bad)
        status = "FAIL " if bad else "ok   "
        print(f"{status}{index:3d} {config.label:48s} warps={config.plan.num_warps} "
              f"{' | '.join(fields)}{'  ' + '; '.join(bad) if bad else ''}", file=out)
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, default=90, help="compute capability, e.g. 90, 80")
    parser.add_argument("--quick", action="store_true", help="fewer sizes")
    parser.add_argument("--index", type=int, help="compile only this configuration")
    parser.add_argument("--ptx", help="write each aligned configuration's PTX into this folder")
    args = parser.parse_args(argv)
    if args.index is not None:
        return 1 if compile_all(args.arch, args.quick, only=args.index, ptx_dir=args.ptx) else 0
    # One process per configuration: a compiler crash (an LLVM assertion aborts the process) is
    # then reported as that kernel's failure instead of ending the run.
    failures = 0
    for index in range(len(list(configs(args.quick)))):
        command = [sys.executable, "-m", "fastrnn.kernels.aot", "--arch", str(args.arch),
                   "--index", str(index)] + (["--quick"] if args.quick else [])
        command += ["--ptx", args.ptx] if args.ptx else []
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
