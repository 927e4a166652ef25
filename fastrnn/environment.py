"""The environment block of a benchmark result file; `fastrnn env` prints it.

A timing means little without the machine and software that produced it, so every result file
carries this block: GPU name, compute capability, driver, CUDA, cuDNN, torch, triton, numpy,
fastrnn version, git commit and dirty flag, TF32 flags, thread count and CPU model. A value that
cannot be found is None, never a guess.
"""

import datetime
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

import torch

import fastrnn


def repository_root():
    """The source checkout that holds the imported fastrnn package, or None for a plain install."""
    root = Path(fastrnn.__file__).resolve().parent.parent
    return root if (root / ".git").exists() else None


def _command_output(args, cwd=None):
    """stdout of a short command, stripped; None when it is missing or fails."""
    if shutil.which(args[0]) is None:
        return None
    try:
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=10,
                              check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def git_state():
    """(commit sha, dirty flag) of the checkout, or (None, None) outside one."""
    root = repository_root()
    if root is None:
        return None, None
    commit = _command_output(["git", "rev-parse", "HEAD"], cwd=root)
    # Untracked sources count: a run of new, uncommitted files is not reproducible from the sha.
    status = _command_output(["git", "status", "--porcelain"], cwd=root)
    return commit, None if status is None else bool(status)


def cpu_model():
    """The CPU's marketing name (Linux /proc/cpuinfo, else platform.processor())."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def _module_version(name):
    try:
        module = __import__(name)
    except ImportError:
        return None
    return getattr(module, "__version__", None)


def _gpu_block():
    """GPU fields; all None without CUDA so the keys are the same on every machine."""
    if not torch.cuda.is_available():
        return {"gpu_name": None, "gpu_count": 0, "compute_capability": None,
                "gpu_memory_bytes": None, "driver": None}
    index = torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    # torch has no driver-version API; nvidia-smi is present wherever the driver is.
    driver = _command_output(["nvidia-smi", f"--id={index}", "--query-gpu=driver_version",
                              "--format=csv,noheader"])
    return {
        "gpu_name": props.name,
        "gpu_count": torch.cuda.device_count(),
        "compute_capability": f"{props.major}.{props.minor}",
        "gpu_memory_bytes": int(props.total_memory),
        "driver": driver,
    }


def collect():
    """The environment block (a flat dict of JSON scalars) for the current process."""
    commit, dirty = git_state()
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    block = {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "fastrnn": fastrnn.__version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "triton": _module_version("triton"),
        "numpy": _module_version("numpy"),
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        **_gpu_block(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        # Whether the CPU path's steps ran compiled (fastrnn/cpu/fused.py) or as ATen ops.
        "cpu_fused_steps": _cpu_fused_status(),
        # Other processes on the machine skew CPU timings; the 1-minute load says how busy it was.
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        "triton_interpret": os.environ.get("TRITON_INTERPRET"),
        "fastrnn_backend_env": os.environ.get("FASTRNN_BACKEND"),
    }
    return block


def _cpu_fused_status():
    from fastrnn.cpu import fused

    return fused.status()


def device_slug(env):
    """A folder name for results of this machine: the GPU name, or 'cpu'."""
    name = env.get("gpu_name")
    if not name:
        return "cpu"
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def add_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print the block as JSON")


def run(args):
    block = collect()
    if args.json:
        print(json.dumps(block, indent=2))
        return 0
    width = max(len(key) for key in block)
    for key, value in block.items():
        print(f"{key:<{width}}  {value}")
    return 0
