"""Cost of the experiment-management guardrails on real recipes.

Usage:
    OMP_NUM_THREADS=1 python scripts/bench_experiment.py --recipes est wea --repeats 3
    OMP_NUM_THREADS=1 python scripts/bench_experiment.py --fingerprint-only

Trains each recipe for a few steps with RunManifest, ConfigLock and DeterminismGuard, timing
every hook they run. Reports, as medians over repeats: the seconds RunManifest and ConfigLock
add apart from data fingerprinting; the fingerprinting throughput in MB/s; and the
determinism replay's cost: in median training steps, and against the first 2K steps of a
plain run (the replay runs the process's first steps, warm-up included; target: at most 1);
and the first-batch shape walk's (ArchitectureCheck on a module that declares no example
input, as a plain LightningModule), in median training steps.

A second table (``--fingerprint-only`` prints only it) measures what grows with the data:
the content fingerprint (RunManifest) and the leakage hashes (DataProbe) of a synthetic
10-million-row table (an in-memory ``TensorDataset``, 16 float columns and a label) and of a
100k-image dataset (map-style, 3x32x32 uint8 images turned into float tensors per sample, as a
torchvision dataset does), both generated in memory from a seed. Under DDP the other ranks
wait for the slowest shard, so the hold-up is given for 1, 2 and 4 ranks, against the bound:
10% of one epoch or 30 s, whichever is larger. One epoch is estimated from below as the time
a DataLoader (batch 256, shuffled) takes to deliver its batches, before any training.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from hydra import compose, initialize_config_module
from lightning.pytorch import Callback
from omegaconf import open_dict
from torch.utils.data import DataLoader, Dataset, TensorDataset

sys.path.insert(0, str(Path(__file__).parent))
from bench_overhead import StepClock

from guardrail.build import build
from guardrail.callbacks import ConfigLock, DeterminismGuard, RunManifest
from guardrail.checks.resolution import resolution_findings
from guardrail.fingerprint import dataset_fingerprint, sample_hashes
from guardrail.shapes import Recorder

HOOKS = ("setup", "on_fit_start", "on_train_start", "on_train_batch_start",
         "on_train_batch_end", "on_fit_end", "on_train_epoch_end")


def timed(callback: Callback, totals: dict[str, float],
          hooks: tuple[str, ...] = HOOKS) -> Callback:
    """Make every one of ``hooks`` of ``callback`` add its duration to ``totals[class name]``."""
    name = type(callback).__name__
    for hook in hooks:
        method = getattr(callback, hook)

        @functools.wraps(method)
        def wrapper(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                totals[name] += time.perf_counter() - start

        setattr(callback, hook, wrapper)
    return callback


def first_steps(recipe: str, n: int) -> float:
    """Seconds of the first ``n`` training steps of a run without guardrails.

    The replay runs the process's first optimisation steps, warm-up included, so its cost
    is compared with the first steps of a plain run, not with the median later step.
    """
    with tempfile.TemporaryDirectory() as tmp:
        built, _ = _built(recipe, tmp)
        clock = StepClock()
        pl.Trainer(accelerator="cpu", max_steps=n + 1, limit_val_batches=0,
                   num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False, callbacks=[clock],
                   default_root_dir=tmp).fit(built.module, datamodule=built.datamodule)
        return clock.starts[n] - clock.starts[0]


def replay_added(recipe: str, verify: int) -> float:
    """Steps the replay adds to a run: fit start to step 2K+2 with it, minus without it.

    Both runs carry only a DeterminismGuard (enforcing), one with ``verify_steps=0``; the
    replay's share of first-step warm-up is not paid twice, so this is what a user pays.
    """
    spans, steps = [], []
    for k in (0, verify):
        with tempfile.TemporaryDirectory() as tmp:
            built, _ = _built(recipe, tmp)
            clock = StepClock()
            pl.Trainer(accelerator="cpu", max_steps=2 * verify + 20, limit_val_batches=0,
                       num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
                       enable_progress_bar=False, enable_model_summary=False,
                       callbacks=[clock, DeterminismGuard(verify_steps=k)],
                       default_root_dir=tmp).fit(built.module, datamodule=built.datamodule)
            spans.append(clock.starts[2 * verify + 2] - clock.fit_start)
            steps.append(clock.median_step())
    return (spans[1] - spans[0]) / statistics.median(steps)


def walk_cost(recipe: str, repeats: int = 15) -> float:
    """Seconds the first-batch shape walk adds to the step it rides on.

    What ArchitectureCheck does on a module without an example input, isolated: the first
    training batch's forward with the Recorder's hooks (variance measured on every
    downsampling layer) against the same forward without, interleaved, medians.
    """
    with tempfile.TemporaryDirectory() as tmp:
        built, _ = _built(recipe, tmp)
        module, dm = built.module, built.datamodule
        dm.setup("fit")
        inputs, _ = module.split_batch(next(iter(dm.train_dataloader())))
        with_walk, without = [], []
        for _ in range(repeats):
            for bucket, walk in ((without, False), (with_walk, True)):
                start = time.perf_counter()
                with torch.no_grad():
                    if walk:
                        with Recorder(module, measure_lost=True) as recorder:
                            module(*inputs)
                        resolution_findings(recorder.layers, recorder.in_numbers or 1,
                                            recorder.out_numbers or 1, recorder.lost)
                    else:
                        module(*inputs)
                bucket.append(time.perf_counter() - start)
        return statistics.median(with_walk) - statistics.median(without)


def _built(recipe: str, tmp: str) -> tuple[Any, Any]:
    with initialize_config_module("guardrail.configs", version_base="1.3"):
        cfg = compose("train", overrides=[f"recipe={recipe}"])
    with open_dict(cfg):
        cfg.paths.output_dir = tmp
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    return build(cfg), cfg


def once(recipe: str, steps: int, verify: int) -> dict[str, float]:
    """One run; returns the measured seconds and throughput."""
    with tempfile.TemporaryDirectory() as tmp:
        built, _ = _built(recipe, tmp)
        totals: dict[str, float] = defaultdict(float)
        manifest, lock = RunManifest(tmp), ConfigLock(lock_dir=tmp, name=recipe)
        guard, clock = DeterminismGuard(verify_steps=verify), StepClock()
        trainer = pl.Trainer(accelerator="cpu", max_steps=steps, limit_val_batches=1,
                             num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False,
                             callbacks=[clock, timed(manifest, totals), timed(lock, totals),
                                        timed(guard, totals)], default_root_dir=tmp)
        trainer.fit(built.module, datamodule=built.datamodule)
        data = manifest.manifest["data"]
        fp_seconds = sum(d.get("seconds", 0) for k, d in data.items() if k != "order")
        fp_bytes = sum(d.get("bytes", 0) for k, d in data.items() if k != "order")
        return {
            "manifest_s": totals["RunManifest"] - fp_seconds,
            "lock_s": totals["ConfigLock"],
            "fingerprint_mb_s": fp_bytes / 1e6 / max(fp_seconds, 1e-9),
            "fingerprint_mb": fp_bytes / 1e6,
            "replay_steps": guard.replay_seconds / clock.median_step(),
            "replay_vs_first": guard.replay_seconds / first_steps(recipe, 2 * verify),
            "replay_added": replay_added(recipe, verify),
            "walk_steps": walk_cost(recipe) / clock.median_step(),
        }


class Images(Dataset):
    """``n`` seeded 3x32x32 uint8 images, each returned as a float tensor in [0, 1] and a label."""

    def __init__(self, n: int = 100_000, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.pixels = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
        self.labels = torch.randint(0, 10, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pixels[i].float() / 255, self.labels[i]


def table(rows: int = 10_000_000, seed: int = 0) -> TensorDataset:
    """A seeded table: ``rows`` x 16 float32 features and an int64 label."""
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(rows, 16, generator=g),
                         torch.randint(0, 2, (rows,), generator=g))


def epoch_estimate(dataset: Dataset, batches: int = 40, batch_size: int = 256) -> float:
    """Seconds a shuffled DataLoader takes to deliver one epoch (from ``batches`` batches)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    it = iter(loader)
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return (time.perf_counter() - start) / batches * len(loader)


def fingerprint_costs(name: str, dataset: Dataset) -> dict[str, Any]:
    """Seconds of rank 0's shard of the content fingerprint and of the leakage hashes."""
    n = len(dataset)  # type: ignore[arg-type]
    content, hashed = {}, n
    for world in (1, 2, 4):
        # rank 0's share, as under DDP; the other ranks' (equal) shares stand in for theirs
        start = time.perf_counter()
        fp = dataset_fingerprint(dataset, rank=0, world=world,
                                 gather=lambda mine, w=world: [mine] * w)
        content[world] = time.perf_counter() - start
        hashed = fp.get("sampled", {}).get("hashed", n) if world == 1 else hashed
    start = time.perf_counter()
    hashes, _ = sample_hashes(dataset)  # type: ignore[misc]
    leakage = time.perf_counter() - start
    epoch = epoch_estimate(dataset)
    return {"name": name, "samples": n, "hashed": hashed,
            "content": content, "leakage": leakage, "epoch": epoch,
            "bound": max(0.1 * epoch, 30.0), "leakage_hashes": len(hashes)}


def fingerprint_table() -> None:
    """Print the data-size table (see the module docstring)."""
    print("| data | samples hashed (1 rank) | content fingerprint, 1 / 2 / 4 ranks (slowest shard) "
          "| DataProbe hashes, 1 rank | one epoch, loading only (lower bound) | bound: max(10% "
          "of an epoch, 30 s) |")
    print("|---|---|---|---|---|---|")
    for name, make in (("10M-row table (TensorDataset)", table),
                       ("100k images (map-style)", Images)):
        r = fingerprint_costs(name, make())
        c = r["content"]
        print(f"| {name} | {r['hashed']:,} of {r['samples']:,} | {c[1]:.1f} / {c[2]:.1f} / "
              f"{c[4]:.1f} s | {r['leakage']:.1f} s | {r['epoch']:.0f} s | {r['bound']:.0f} s |",
              flush=True)


def main() -> None:
    """Print a markdown table of medians over repeats, then the data-size table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["est", "wea"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--verify", type=int, default=2, help="K, the replayed steps")
    parser.add_argument("--fingerprint-only", action="store_true",
                        help="only the data-size table (10M rows, 100k images)")
    args = parser.parse_args()
    if args.fingerprint_only:
        fingerprint_table()
        return
    print(f"| recipe | RunManifest s (excl. fingerprints) | ConfigLock s | fingerprint MB/s "
          f"(MB hashed) | replay in median steps (K={args.verify}) | replay / first "
          f"{2 * args.verify} plain steps | steps the replay adds to a run "
          f"(target <= {2 * args.verify}) | first-batch walk, in median steps |")
    print("|---|---|---|---|---|---|---|---|")
    for recipe in args.recipes:
        runs = [once(recipe, args.steps, args.verify) for _ in range(args.repeats)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"| {recipe} | {med['manifest_s']:.2f} | {med['lock_s']:.2f} "
              f"| {med['fingerprint_mb_s']:.0f} ({med['fingerprint_mb']:.1f}) "
              f"| {med['replay_steps']:.2f} | {med['replay_vs_first']:.2f} "
              f"| {med['replay_added']:.2f} | {med['walk_steps']:.3f} |", flush=True)
    fingerprint_table()


if __name__ == "__main__":
    main()
