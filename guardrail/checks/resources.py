"""Resource rules: a step that mostly waits for data, memory near its limit (``resources.*``).

Pure functions: timings and byte counts in, Findings out. ``ResourceMonitor`` measures.

Example:
    >>> timing = StepTiming()
    >>> for _ in range(10):
    ...     timing.add(wait_s=0.03, compute_s=0.01, samples=32)
    >>> round(timing.wait_fraction, 2), round(timing.samples_per_s)
    (0.75, 800)
    >>> [f.check for f in input_bound_findings(timing, where="train_dataloader", num_workers=0)]
    ['resources.input_bound']
    >>> memory_findings(used=0.5e9, capacity=8e9, where="host")
    []

"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from guardrail.findings import Finding, Severity
from guardrail.thresholds import Thresholds, limit

MB = 2**20


@dataclasses.dataclass(frozen=True)
class ResourceThresholds(Thresholds):
    """What the ``resources.*`` rules compare against; ``ResourceMonitor`` takes it.

    Example:
        >>> ResourceThresholds(memory_fraction=0.8).memory_fraction
        0.8
    """

    input_bound_fraction: float = limit(
        0.5, "resources.input_bound", "share of the step time spent waiting for the next "
        "batch that counts as input-bound", low=0, high=1, open_low=True, shown="50%")
    input_bound_min_steps: int = limit(
        8, "resources.input_bound", "timed steps needed before judging (the first include "
        "worker start-up)", low=1, integer=True, shown="8")
    memory_fraction: float = limit(
        0.9, "resources.memory_pressure", "share of host or device memory capacity that "
        "counts as pressure", low=0, high=1, open_low=True, shown="90%")
    contention_excess: float = limit(
        1.0, "resources.cpu_contention", "runnable tasks (the 1-minute load average) beyond "
        "the host's cores that count as contention", low=0, shown="more than 1")


DEFAULTS = ResourceThresholds()


@dataclasses.dataclass
class StepTiming:
    """Training time split into waiting for the next batch and computing on it.

    ``wait_s`` runs from the end of one training step to the start of the next (fetching,
    collating and moving the batch); ``compute_s`` from the start of a step to its end
    (forward, backward, optimiser, and the hooks of callbacks).
    """

    steps: int = 0
    samples: int = 0
    wait_s: float = 0.0
    compute_s: float = 0.0

    def add(self, wait_s: float, compute_s: float, samples: int) -> None:
        """Count one measured step."""
        self.steps += 1
        self.samples += samples
        self.wait_s += wait_s
        self.compute_s += compute_s

    @property
    def step_s(self) -> float:
        """Mean seconds per measured step (0 before any)."""
        return (self.wait_s + self.compute_s) / self.steps if self.steps else 0.0

    @property
    def data_wait_per_step(self) -> float:
        """Mean seconds per step spent waiting for the batch."""
        return self.wait_s / self.steps if self.steps else 0.0

    @property
    def compute_per_step(self) -> float:
        """Mean seconds per step spent in the step itself."""
        return self.compute_s / self.steps if self.steps else 0.0

    @property
    def wait_fraction(self) -> float:
        """Share of the step time spent waiting for data (0 before any step)."""
        total = self.wait_s + self.compute_s
        return self.wait_s / total if total > 0 else 0.0

    @property
    def samples_per_s(self) -> float:
        """Training samples per second over the measured steps (0 before any)."""
        total = self.wait_s + self.compute_s
        return self.samples / total if total > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        """The figures a report shows."""
        return {"steps_measured": self.steps, "samples_per_s": self.samples_per_s,
                "step_s": self.step_s, "data_wait_s": self.data_wait_per_step,
                "compute_s": self.compute_per_step,
                "data_wait_fraction": self.wait_fraction}


def input_bound_findings(timing: StepTiming, where: str = "train_dataloader",
                         num_workers: int | None = None, rank: int | None = None,
                         limits: ResourceThresholds = DEFAULTS) -> list[Finding]:
    """``resources.input_bound`` when waiting for data takes much of the step time.

    Args:
        timing: The measured steps (of the slowest rank, under DDP).
        where: The loader it concerns.
        num_workers: The loader's worker processes, for the hint (None: unknown).
        rank: The rank the timing is from, for the message under DDP.
        limits: ``input_bound_fraction`` of the step time spent waiting counts as
            input-bound, judged after ``input_bound_min_steps`` timed steps.

    """
    threshold = limits.input_bound_fraction
    if timing.steps < limits.input_bound_min_steps or timing.wait_fraction < threshold:
        return []
    workers = "" if num_workers is None else f" (num_workers={num_workers})"
    on_rank = "" if rank is None else f" on rank {rank}"
    more = "2-8 loader workers" if not num_workers else f"more than {num_workers} workers"
    return [Finding(
        "resources.input_bound", Severity.WARNING,
        f"Training waits for data {timing.wait_fraction:.0%} of each step{on_rank}: the "
        f"{where}{workers} cannot keep up with the model "
        f"({timing.data_wait_per_step * 1e3:.1f} ms waiting vs "
        f"{timing.compute_per_step * 1e3:.1f} ms computing per step).",
        where=where,
        evidence={**timing.as_dict(), "num_workers": num_workers, "threshold": threshold},
        hint=f"Give the loader {more} (e.g. `data.num_workers=4`), persistent_workers=True and "
             "pin_memory=True on a GPU; or move slow per-sample work (decoding, augmentation) "
             "out of __getitem__ into a one-off preprocessing step or a cache.")]


def cpu_contention_findings(load: float, cpus: int, threads: int,
                            slowdown: float | None = None,
                            limits: ResourceThresholds = DEFAULTS) -> list[Finding]:
    """``resources.cpu_contention`` when the host has more runnable work than cores.

    Torch's intra-op threads wait for each other at every parallel operation; when other
    processes hold the cores, each wait lasts a scheduler slice, and a 2-core CPU run beside
    one other training process was measured 30x slower than alone. Judged on the host's
    1-minute load average against its core count (a host-wide measure, like the load itself:
    a container limited to 2 cores of a busy 64-core host is not flagged).

    Args:
        load: The 1-minute load average.
        cpus: The host's cores.
        threads: Torch's intra-op threads in this process.
        slowdown: This epoch's median step time over the fastest epoch's, as evidence.
        limits: Fires when ``load`` exceeds ``cpus`` by more than ``contention_excess``.

    Example:
        >>> [f.where for f in cpu_contention_findings(4.2, 2, 2)]
        ['host']
        >>> cpu_contention_findings(2.0, 2, 2)
        []
    """
    if load <= cpus + limits.contention_excess:
        return []
    slower = f"; its steps are {slowdown:.1f}x slower than in its fastest epoch" \
        if slowdown and slowdown >= 1.2 else ""
    fair = max(1, cpus - round(max(load - threads, 0.0)))
    return [Finding(
        "resources.cpu_contention", Severity.WARNING,
        f"The CPU is oversubscribed: {load:.1f} runnable tasks on average for {cpus} cores, "
        f"with this run using {threads} torch thread(s){slower}. Other work shares the "
        "cores, and threads that wait for each other slow down far more than their share.",
        where="host",
        evidence={"load_1min": load, "cpus": cpus, "torch_threads": threads,
                  "slowdown": slowdown},
        hint=f"Give this run fewer threads (`OMP_NUM_THREADS={fair}`, or "
             f"torch.set_num_threads({fair})), run one job at a time, or move it to a machine "
             "of its own.")]


def memory_findings(used: float, capacity: float, where: str, own: float | None = None,
                    limits: ResourceThresholds = DEFAULTS) -> list[Finding]:
    """``resources.memory_pressure`` when ``used`` reaches ``memory_fraction`` of ``capacity``.

    Args:
        used: Bytes in use at the fullest moment measured (for a GPU: the peak reserved by
            this run, or the device's used bytes if other processes hold more).
        capacity: Bytes available in all (a container's limit where it is lower).
        where: ``host`` or the device, e.g. ``cuda:0``.
        own: Bytes this run itself held at its peak, for the evidence.
        limits: ``memory_fraction`` of capacity counts as near the limit.

    """
    threshold = limits.memory_fraction
    if capacity <= 0 or used / capacity < threshold:
        return []
    device = where != "host"
    hint = ("Lower the batch size, use bf16-mixed precision (`trainer=gpu`) or activation "
            "checkpointing, or shard the model with `trainer=fsdp`." if device else
            "Lower the batch size or num_workers (each worker holds a copy of the dataset "
            "object), keep the data memory-mapped instead of loaded, or ask for a larger "
            "memory limit.")
    return [Finding(
        "resources.memory_pressure", Severity.WARNING,
        f"Memory on {where} reached {used / capacity:.0%} of its capacity "
        f"({used / MB:.0f} of {capacity / MB:.0f} MiB): the run is close to an out-of-memory "
        "failure.", where=where,
        evidence={"used_mb": used / MB, "capacity_mb": capacity / MB,
                  "own_peak_mb": None if own is None else own / MB, "threshold": threshold},
        hint=hint)]


def slowest(per_rank: Sequence[dict[str, Any]]) -> tuple[int, StepTiming]:
    """The rank whose data wait is the largest share of its step, and its timing.

    Under DDP every step waits for the slowest rank, so that rank decides.

    Example:
        >>> ranks = [{"steps": 9, "samples": 9, "wait_s": 1.0, "compute_s": 3.0},
        ...          {"steps": 9, "samples": 9, "wait_s": 3.0, "compute_s": 1.0}]
        >>> slowest(ranks)[0]
        1

    """
    timings = [StepTiming(**t) for t in per_rank]
    rank = max(range(len(timings)), key=lambda r: timings[r].wait_fraction)
    return rank, timings[rank]


def summarise(per_rank: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One run-wide summary from every rank's measurements (rank order).

    Each rank reports ``timing`` (a :class:`StepTiming` as a dict) and optional byte counts
    ``rss_peak``, ``host_used``, ``host_capacity``, ``device_peak``, ``device_used``,
    ``device_capacity`` and ``gpu_util`` (mean percent). Throughput adds up over ranks; the
    data-wait share is the slowest rank's (every DDP step waits for it); memory is the
    fullest rank's.

    Example:
        >>> r = {"timing": {"steps": 4, "samples": 40, "wait_s": 1.0, "compute_s": 1.0},
        ...      "rss_peak": 2 * MB}
        >>> s = summarise([r, r])
        >>> s["samples_per_s"], s["data_wait_fraction"], s["host_rss_peak_mb"]
        (40.0, 0.5, 2.0)

    """
    rank, slow = slowest([r["timing"] for r in per_rank])
    timings = [StepTiming(**r["timing"]) for r in per_rank]
    n = len(timings)

    def peak(key: str) -> float | None:
        values = [r[key] for r in per_rank if r.get(key) is not None]
        return max(values) / MB if values else None

    def fullest(used: str, capacity: str) -> tuple[float | None, float | None, int | None]:
        ranks = [i for i, r in enumerate(per_rank) if r.get(used) is not None and r.get(capacity)]
        if not ranks:
            return None, None, None
        i = max(ranks, key=lambda i: per_rank[i][used] / per_rank[i][capacity])
        return per_rank[i][used] / MB, per_rank[i][capacity] / MB, i

    host_used, host_capacity, _ = fullest("host_used", "host_capacity")
    device_used, device_capacity, device_rank = fullest("device_used", "device_capacity")
    utils = [r["gpu_util"] for r in per_rank if r.get("gpu_util") is not None]
    return {
        "world_size": n,
        "steps_measured": min(t.steps for t in timings),
        "samples_per_s": sum(t.samples_per_s for t in timings),
        "step_s": sum(t.step_s for t in timings) / n,
        "data_wait_s": sum(t.data_wait_per_step for t in timings) / n,
        "compute_s": sum(t.compute_per_step for t in timings) / n,
        "data_wait_fraction": slow.wait_fraction,
        "slowest_rank": rank,
        "host_rss_peak_mb": peak("rss_peak"),
        "host_used_mb": host_used,
        "host_capacity_mb": host_capacity,
        "device_mem_peak_mb": peak("device_peak"),
        "device_used_mb": device_used,
        "device_capacity_mb": device_capacity,
        "device_fullest_rank": device_rank,
        "gpu_util_percent": sum(utils) / len(utils) if utils else None,
        "per_rank": [{"rank": i, **t.as_dict(),
                      "host_rss_peak_mb": (r.get("rss_peak") or 0) / MB or None,
                      "device_mem_peak_mb": (r.get("device_peak") or 0) / MB or None}
                     for i, (t, r) in enumerate(zip(timings, per_rank, strict=True))],
    }
