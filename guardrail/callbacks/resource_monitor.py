"""``ResourceMonitor``: throughput, waiting for data versus computing, peak memory, GPU use."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn

from guardrail.callbacks.base import GuardrailCallback
from guardrail.checks.resources import (
    MB,
    ResourceThresholds,
    StepTiming,
    cpu_contention_findings,
    input_bound_findings,
    memory_findings,
    slowest,
    summarise,
)
from guardrail.distributed import gather_objects
from guardrail.findings import Finding, Severity
from guardrail.shapes import batch_size


class ResourceMonitor(GuardrailCallback):
    """Measure what a run costs, and say when the input pipeline or memory is the limit.

    Every training step is split into *waiting* (from the end of one step to the start of the
    next: fetching, collating and moving the batch) and *computing* (the step itself). On a
    GPU, timing a step honestly needs the device synchronised at its ends, so only every
    ``every_n_steps``-th step is timed (two synchronisations per timed step); on a CPU every
    step is timed for the price of two clock reads. When waiting takes
    ``thresholds.input_bound_fraction`` of the step time, ``resources.input_bound`` (warning)
    names the train dataloader and suggests more workers. Peak host memory (this process's
    RSS), the host's or container's fullest moment, peak device memory and GPU utilisation
    (CUDA; utilisation needs ``pynvml``) are read on the same steps;
    ``resources.memory_pressure`` (warning) fires when the host or device reaches
    ``thresholds.memory_fraction`` of its capacity. On a CPU, ``resources.cpu_contention``
    (warning) fires when the host's load average exceeds its cores (other work shares them;
    torch's threads then wait on each other), judged at each epoch's end once per host. What
    cannot be measured (utilisation without ``pynvml``, device memory off CUDA, host memory off
    Linux) is left out with one ``resources.skipped`` info.

    Under DDP each rank measures itself; at each training epoch's end the ranks' figures are
    gathered (one collective): throughput adds up, the data-wait share is the slowest rank's
    (every step waits for it) and memory is the fullest rank's. :meth:`summary` returns the
    result, which ``RunReport`` puts under ``resources`` in report.json.

    Args:
        every_n_steps: On a GPU, steps between timed steps; memory is read on the same steps.
        thresholds: A :class:`~guardrail.checks.resources.ResourceThresholds`, or a mapping of
            the fields to change (``input_bound_fraction``, ``input_bound_min_steps``,
            ``memory_fraction``).
        host_capacity_mb: Host memory limit in MiB; default: physical memory, or the
            container's (cgroup) limit where lower.

    Logged keys (rank zero, over all ranks, at each training epoch's end):
    ``guardrail/samples_per_s`` (sum over ranks), ``guardrail/step_s``,
    ``guardrail/data_wait_s`` and ``guardrail/compute_s`` (seconds per step),
    ``guardrail/data_wait_fraction`` (slowest rank), ``guardrail/host_rss_peak_mb``,
    ``guardrail/device_mem_peak_mb`` (CUDA) and ``guardrail/gpu_util`` (CUDA with pynvml).

    Example:
        >>> import time, torch
        >>> import lightning.pytorch as pl
        >>> from torch.utils.data import DataLoader, Dataset
        >>> from guardrail import GuardrailModule
        >>> class Slow(Dataset):  # a dataset that decodes every sample from scratch
        ...     def __len__(self):
        ...         return 64
        ...     def __getitem__(self, i):
        ...         time.sleep(0.005)
        ...         return torch.ones(4), torch.zeros(())
        >>> monitor = ResourceMonitor(thresholds={"input_bound_min_steps": 4})
        >>> trainer = pl.Trainer(callbacks=[monitor], max_epochs=1, logger=False,
        ...                      enable_progress_bar=False, enable_model_summary=False,
        ...                      enable_checkpointing=False)
        >>> trainer.fit(GuardrailModule(torch.nn.Linear(4, 1)), DataLoader(Slow(), 8))
        >>> [(f.check, f.where) for f in monitor.findings]
        [('resources.input_bound', 'train_dataloader')]
        >>> monitor.summary()["samples_per_s"] > 0
        True

    """

    family = "resources"

    def __init__(self, every_n_steps: int = 50,
                 thresholds: ResourceThresholds | Mapping[str, Any] | None = None,
                 host_capacity_mb: float | None = None) -> None:
        super().__init__("record")
        self.require(("every_n_steps", every_n_steps, every_n_steps >= 1, ">= 1"),
                     ("host_capacity_mb", host_capacity_mb,
                      host_capacity_mb is None or host_capacity_mb > 0, "> 0 or null"))
        self.thresholds = ResourceThresholds.coerce(thresholds)
        self.every_n_steps = every_n_steps
        self.host_capacity = host_capacity_mb * MB if host_capacity_mb else None
        self.timing = StepTiming()
        self._epoch_mark: tuple[int, float] = (0, 0.0)  # timed steps and compute_s so far
        self._epoch_step_s: list[float] = []  # mean compute seconds per step, per epoch
        self.memory: dict[str, float] = {}
        self._summary: dict[str, Any] = {}
        self._cuda: torch.device | None = None
        self._util: list[float] = []
        self._memory_failed = False
        self._k = 0  # training batches seen
        self._ready = False  # the previous step ended synchronised: the next wait is true
        self._last_end = self._start = 0.0
        self._wait: float | None = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Note the device, and say once what this machine does not let us measure."""
        device = pl_module.device
        self._cuda = device if device.type == "cuda" else None
        skipped = []
        if device.type not in ("cpu", "cuda"):
            skipped.append(f"device memory and utilisation (measured on CUDA only; this run "
                           f"is on {device.type})")
        if _host_memory() is None:
            skipped.append("host memory (read from /proc and cgroups, on Linux only)")
        if self._cuda is not None and _utilisation(self._cuda) is None:
            skipped.append("GPU utilisation (`pip install nvidia-ml-py` provides it)")
        if skipped:
            self.emit(trainer, Finding(
                "resources.skipped", Severity.INFO, "Not measured: " + "; ".join(skipped) + ".",
                where=device.type, hint="Everything else is measured as usual."))

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """The first wait of an epoch starts now (creating the iterator counts as waiting)."""
        self._restart()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Validation inside an epoch is neither waiting nor computing for training."""
        self._restart()

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any,
                             batch_idx: int) -> None:
        """The batch has arrived: the wait ends, the step starts."""
        now = time.perf_counter()
        self._wait = now - self._last_end if self._ready else None
        self._start = now

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        """The step has ended: count it if it was timed; read memory on sampled steps."""
        n, k = self.every_n_steps, self._k
        sampled = k % n == 0
        synced = self._cuda is None or sampled or (k + 1) % n == 0
        if self._cuda is not None and synced:
            torch.cuda.synchronize(self._cuda)
        now = time.perf_counter()
        if self._wait is not None and (self._cuda is None or sampled):
            self.timing.add(self._wait, now - self._start, batch_size(batch) or 0)
        self._wait, self._ready, self._last_end, self._k = None, synced, now, k + 1
        if sampled:
            self._read_memory()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Gather every rank's figures (a collective), log them, judge them."""
        self._read_memory()
        local: dict[str, Any] = {"timing": dataclasses.asdict(self.timing), **self.memory,
                                 "device_name": str(self._cuda)}
        if self._util:
            local["gpu_util"] = sum(self._util) / len(self._util)
        per_rank = gather_objects(local)
        self._summary = summarise(per_rank)
        self._summary["device"] = pl_module.device.type
        self.log_metrics(trainer, _logged(self._summary))
        rank, slow = slowest([r["timing"] for r in per_rank])
        if rank == trainer.global_rank:  # the slowest rank reports it, so it carries its rank
            self.emit_once(trainer, input_bound_findings(
                slow, "train_dataloader", getattr(trainer.train_dataloader, "num_workers", None),
                rank if len(per_rank) > 1 else None, self.thresholds))
        self._judge_contention(trainer, pl_module)
        s = self._summary
        device = per_rank[s["device_fullest_rank"] or 0]["device_name"]  # e.g. cuda:3
        for where, used, capacity, own in (
                ("host", s["host_used_mb"], s["host_capacity_mb"], s["host_rss_peak_mb"]),
                (device, s["device_used_mb"], s["device_capacity_mb"], s["device_mem_peak_mb"])):
            if used is not None and capacity:
                self.emit_once(trainer, memory_findings(
                    used * MB, capacity * MB, where, None if own is None else own * MB,
                    self.thresholds))

    def _judge_contention(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """CPU runs: is the host oversubscribed? Judged once per host (local rank zero)."""
        steps = self.timing.steps - self._epoch_mark[0]
        if steps > 0:
            self._epoch_step_s.append((self.timing.compute_s - self._epoch_mark[1]) / steps)
        self._epoch_mark = (self.timing.steps, self.timing.compute_s)
        if pl_module.device.type != "cpu" or trainer.local_rank != 0 or \
                not hasattr(os, "getloadavg"):
            return
        load, cpus = os.getloadavg()[0], os.cpu_count() or 1
        self._summary.update(cpu_load_1min=load, cpus=cpus, torch_threads=torch.get_num_threads())
        slowdown = self._epoch_step_s[-1] / min(self._epoch_step_s) \
            if self._epoch_step_s and min(self._epoch_step_s) > 0 else None
        self.emit_once(trainer, cpu_contention_findings(load, cpus, torch.get_num_threads(),
                                                        slowdown, self.thresholds))

    def summary(self) -> dict[str, Any]:
        """The run's figures over all ranks (as of the last training epoch's end).

        Before a training epoch has ended: this rank's figures so far; ``{}`` before any
        training step (a run that only validates or tests has none).
        """
        if self._summary:
            return dict(self._summary)
        if not self.timing.steps and not self.memory:
            return {}
        return summarise([{"timing": dataclasses.asdict(self.timing), **self.memory}])

    def _restart(self) -> None:
        self._last_end = time.perf_counter()
        self._ready = self._cuda is None  # on a GPU the device may still be busy
        self._wait = None

    def _read_memory(self) -> None:
        # Never raises: a rank that failed here would leave the others in the epoch-end gather.
        try:
            self._read_memory_unsafe()
        except Exception as err:
            if not self._memory_failed:
                rank_zero_warn(f"ResourceMonitor could not read memory: {err}", stacklevel=2)
            self._memory_failed = True

    def _read_memory_unsafe(self) -> None:
        m = self.memory
        rss = _peak_rss()
        if rss is not None:
            m["rss_peak"] = rss
        host = _host_memory()
        if host is not None:
            used, capacity = host
            capacity = self.host_capacity or capacity
            if used / capacity >= m.get("host_used", 0.0) / m.get("host_capacity", 1.0):
                m["host_used"], m["host_capacity"] = used, capacity
        if self._cuda is not None:
            m["device_peak"] = float(torch.cuda.max_memory_reserved(self._cuda))
            free, total = torch.cuda.mem_get_info(self._cuda)
            m["device_used"] = max(m.get("device_used", 0.0), float(total - free),
                                   m["device_peak"])
            m["device_capacity"] = float(total)
            util = _utilisation(self._cuda)
            if util is not None:
                self._util.append(util)


def _logged(summary: dict[str, Any]) -> dict[str, float]:
    names = {k: k for k in ("samples_per_s", "step_s", "data_wait_s", "compute_s",
                            "data_wait_fraction", "host_rss_peak_mb", "device_mem_peak_mb")}
    names["gpu_util_percent"] = "gpu_util"
    return {f"guardrail/{name}": float(summary[key]) for key, name in names.items()
            if summary.get(key) is not None}


def _peak_rss() -> float | None:
    """Peak resident memory of this process in bytes (None where ``resource`` is missing)."""
    try:
        import resource
        import sys
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(peak if sys.platform == "darwin" else peak * 1024)  # macOS: bytes; Linux: KiB


def _host_memory() -> tuple[float, float] | None:
    """(bytes in use, capacity) of the machine, or of its container where that is smaller."""
    try:
        info = dict(line.split(":", 1) for line in
                    Path("/proc/meminfo").read_text().splitlines() if ":" in line)
        total = int(info["MemTotal"].split()[0]) * 1024
        used = total - int(info["MemAvailable"].split()[0]) * 1024
        for root, limit, usage, cache in (
                ("/sys/fs/cgroup", "memory.max", "memory.current", "inactive_file"),
                ("/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes",
                 "total_inactive_file")):
            try:
                cap = int(Path(root, limit).read_text())
                now = int(Path(root, usage).read_text())
            except (OSError, ValueError):  # no such cgroup, or "max": no limit
                continue
            if cap < total:
                stat = dict(line.split()[:2] for line in
                            Path(root, "memory.stat").read_text().splitlines() if " " in line)
                return float(now - int(stat.get(cache, 0))), float(cap)  # cache is reclaimable
        return float(used), float(total)
    except Exception:  # no /proc (not Linux) or an unexpected layout: not measured
        return None


def _utilisation(device: torch.device) -> float | None:
    try:
        return float(torch.cuda.utilization(device))
    except Exception:  # pynvml missing, or a driver without NVML
        return None
