"""Guardrail overhead per training step: default guardrails vs none, on real recipes.

Usage:
    OMP_NUM_THREADS=1 python scripts/bench_overhead.py --recipes wea est --pairs 5

For each recipe it trains interleaved pairs of runs from the same seed — one with no
guardrail callbacks, one with ``default_callbacks()`` (sampling every 25 steps), and one with
the activation and gradient probes on every step — and measures the median time between
consecutive training-batch starts (every hook of a step included; validation off). One-off
costs at fit start (the determinism replay, data fingerprints, the shape walk) are not
per-step and are reported separately as the median difference in time to the first batch.
The printed ratio is the median over pairs of (guarded / plain) step time, the usual way to
cancel machine drift.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import lightning.pytorch as pl
from hydra import compose, initialize_config_module
from lightning.pytorch import Callback
from omegaconf import open_dict

from guardrail.build import build
from guardrail.callbacks import (
    ActivationProbe,
    GradientProbe,
    RunReport,
    default_callbacks,
)


class StepClock(Callback):
    """Timestamps of every training-batch start, and of fit start."""

    def __init__(self) -> None:
        self.fit_start = 0.0
        self.starts: list[float] = []

    def on_fit_start(self, *args: Any) -> None:
        self.fit_start = time.perf_counter()

    def on_train_batch_start(self, *args: Any) -> None:
        self.starts.append(time.perf_counter())


def guardrails(variant: str) -> list[Callback]:
    """The callbacks of a variant: none, the defaults, or the defaults probing every step.

    The defaults are ``default_callbacks()`` without the run report (it writes files only),
    so the benchmark follows whatever the default set becomes.
    """
    if variant == "plain":
        return []
    callbacks = [cb for cb in default_callbacks() if not isinstance(cb, RunReport)]
    if variant == "every_step":
        for cb in callbacks:
            if isinstance(cb, ActivationProbe | GradientProbe):
                cb.every_n_steps = 1
    return callbacks


def step_times(recipe: str, callbacks: list[Callback], steps: int, warmup: int,
               tmp: str) -> tuple[float, float]:
    """Train ``recipe`` with ``callbacks`` for ``warmup + steps`` steps (validation off).

    Returns (median seconds per step after the warm-up, seconds from fit start to the first
    batch).
    """
    with initialize_config_module("guardrail.configs", version_base="1.3"):
        cfg = compose("train", overrides=[f"recipe={recipe}"])
    with open_dict(cfg):
        cfg.paths.output_dir = tmp
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    built = build(cfg)
    clock = StepClock()
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=warmup + steps,
                         limit_val_batches=0, num_sanity_val_steps=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, deterministic=True,
                         callbacks=[clock, *callbacks], default_root_dir=tmp)
    trainer.fit(built.module, datamodule=built.datamodule)
    gaps = [b - a for a, b in zip(clock.starts, clock.starts[1:], strict=False)][warmup:]
    return statistics.median(gaps), clock.starts[0] - clock.fit_start


def run(recipe: str, variant: str, steps: int, warmup: int, tmp: str) -> tuple[float, float]:
    """:func:`step_times` of one variant (plain, default or every_step)."""
    return step_times(recipe, guardrails(variant), steps, warmup, tmp)


def main() -> None:
    """Run the benchmark and print a markdown table."""
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["wea", "est"])
    parser.add_argument("--pairs", type=int, default=5, help="interleaved repetitions")
    parser.add_argument("--steps", type=int, default=150, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    print("| recipe | default / plain (median of ratios) | every step / plain | plain s/step "
          "| one-off start-up cost of the defaults (s) |")
    print("|---|---|---|---|---|")
    for recipe in args.recipes:
        ratios: dict[str, list[float]] = {"default": [], "every_step": []}
        plain_steps, startup = [], []
        for _ in range(args.pairs):
            with tempfile.TemporaryDirectory() as tmp:
                plain, plain_start = run(recipe, "plain", args.steps, args.warmup, tmp)
                for variant in ratios:
                    step, start = run(recipe, variant, args.steps, args.warmup, tmp)
                    ratios[variant].append(step / plain)
                    if variant == "default":
                        startup.append(start - plain_start)
                plain_steps.append(plain)
        print(f"| {recipe} | {statistics.median(ratios['default']):.3f}x "
              f"| {statistics.median(ratios['every_step']):.3f}x "
              f"| {statistics.median(plain_steps) * 1e3:.2f} ms "
              f"| {statistics.median(startup):.2f} |", flush=True)


if __name__ == "__main__":
    main()
