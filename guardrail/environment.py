"""What a result depends on besides config, data and weights: hardware, platform and source.

Example:
    >>> hw = hardware()
    >>> hw["cpu_count"] > 0 and isinstance(hw["gpus"], list)
    True
    >>> "torch" in platform_info()["packages"]
    True

"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

#: CPU flags that decide which vectorised kernels torch and numpy run.
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni",
             "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The :data:`CPU_FLAGS` this CPU has (empty where ``/proc/cpuinfo`` is not readable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    match = re.search(r"^(?:flags|Features)\s*:(.*)$", text, re.MULTILINE)
    have = set(match.group(1).split()) if match else set()
    return [f for f in CPU_FLAGS if f in have]


def hardware() -> dict[str, Any]:
    """The machine: CPU, its kernel capability and vector flags, memory, GPUs, CUDA, driver.

    ``cpu_capability`` is the instruction set torch dispatches its CPU kernels on (``AVX2``,
    ``AVX512``); ``cpu_flags`` the :data:`CPU_FLAGS` the CPU has.
    """
    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpus.append({"name": props.name, "memory_gb": round(props.total_memory / 2**30, 2),
                         "capability": f"{props.major}.{props.minor}"})
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 2)
    except (ValueError, OSError, AttributeError):
        memory_gb = None
    return {
        "cpu": _cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count() or 0,
        "memory_gb": memory_gb,
        "gpus": gpus,
        "gpu_count": len(gpus),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "driver": _nvidia_driver() if gpus else None,
    }


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def platform_info() -> dict[str, Any]:
    """OS, Python, and every installed distribution with its version."""
    packages = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            packages[name.lower()] = dist.version
    return {
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "packages": dict(sorted(packages.items())),
    }


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def package_root(path: str | Path) -> Path:
    """The top-level package folder containing ``path`` (walking up past ``__init__.py``)."""
    folder = Path(path).resolve()
    folder = folder if folder.is_dir() else folder.parent
    while (folder.parent / "__init__.py").is_file():
        folder = folder.parent
    return folder


def source_info(root: str | Path | None = None) -> dict[str, Any]:
    """Git commit, dirty flag and a patch of uncommitted changes; a content hash without git.

    Args:
        root: A file or folder of the code that runs (e.g. the LightningModule's file);
            default: the current working directory. Without git, the top-level package
            holding it is hashed.

    """
    root = package_root(root or Path.cwd())
    top = _git(["rev-parse", "--show-toplevel"], root)
    if top:
        top_path = Path(top.strip())
        commit = (_git(["rev-parse", "HEAD"], top_path) or "").strip() or None
        patch = _git(["diff", "HEAD", "--binary"], top_path) or ""
        untracked = (_git(["ls-files", "--others", "--exclude-standard"], top_path) or "").split()
        return {"kind": "git", "root": str(top_path), "commit": commit,
                "dirty": bool(patch or untracked), "patch": patch, "untracked": untracked,
                "hash": source_hash(top_path) if not commit else None}
    return {"kind": "files", "root": str(root), "commit": None, "dirty": None, "patch": None,
            "untracked": [], "hash": source_hash(root)}


def source_hash(root: str | Path, suffixes: tuple[str, ...] = (".py", ".yaml", ".yml")) -> str:
    """Content hash of the source files under ``root`` (names and bytes, sorted)."""
    root = Path(root)
    h = hashlib.blake2b(digest_size=16)
    skip = {".git", ".venv", "__pycache__", "outputs", "multirun", "node_modules"}
    for path in sorted(root.rglob("*")):
        if path.suffix in suffixes and path.is_file() and not skip & set(path.parts):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def determinism_settings() -> dict[str, Any]:
    """The effective global settings that decide whether kernels repeat bit for bit."""
    return {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "allow_tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "pl_global_seed": os.environ.get("PL_GLOBAL_SEED"),
        "pl_seed_workers": os.environ.get("PL_SEED_WORKERS"),
    }


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup CPU quota.

    Example:
        >>> 1 <= usable_cores() <= (os.cpu_count() or 1)
        True
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        os.cpu_count() or 1
    try:  # cgroup v2: "max 100000" (no quota) or "200000 100000" (2 cores)
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def thread_budget(requested: int | str | None = "auto", local_processes: int = 1
                  ) -> tuple[int, str]:
    """Torch intra-op threads for a training process, and why.

    ``auto``: the usable cores (:func:`usable_cores`) shared among this node's training
    processes, less the cores other work keeps busy (the host's 1-minute load average beyond
    this process's start-up). Torch's threads wait for each other at every parallel
    operation, so a thread without a core of its own slows every step: on 2 cores beside
    another training process, 2 threads were measured 30x slower than alone. An integer is
    taken as given; so is ``OMP_NUM_THREADS`` when set (the user has decided).

    Example:
        >>> thread_budget(3)
        (3, 'threads=3')
        >>> n, why = thread_budget("auto")
        >>> n >= 1 and why.startswith(("auto", "OMP_NUM_THREADS"))
        True
    """
    if isinstance(requested, int) and not isinstance(requested, bool) and requested >= 1:
        return requested, f"threads={requested}"
    if requested not in ("auto", None):
        from guardrail.errors import ConfigError

        raise ConfigError(f"threads={requested!r} must be `auto` or a whole number >= 1, e.g. "
                          "`python -m guardrail.train threads=2`.")
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads(), f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
    cores = max(1, usable_cores() // max(1, local_processes))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    busy = max(0, round(load - local_processes))  # this run's own start-up counts as load
    free = max(1, (os.cpu_count() or cores) - busy)
    threads = max(1, min(cores, free))
    return threads, (f"auto: {usable_cores()} usable cores, {local_processes} process(es), "
                     f"load {load:.1f}")
