"""Milliseconds each guardrail callback's per-step hooks take, per training step.

Usage:
    OMP_NUM_THREADS=1 python scripts/bench_hooks.py --recipes est wea --steps 300

Trains a recipe with ``default_callbacks()`` (less the fit-end AttributionReport and
RunReport, and the fit-start DeterminismGuard) and times every call of each callback's
per-step hooks. Unlike the wall-time ratio of ``bench_overhead.py``, which other work on a
shared machine easily moves by 5-10%, the hooks' own time barely moves with the machine's
load. Sampled work that runs inside the step (activation hooks on sampled steps) is not in
it; ``bench_overhead.py`` covers that.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from collections import defaultdict

import lightning.pytorch as pl
from bench_experiment import timed
from hydra import compose, initialize_config_module
from omegaconf import open_dict

from guardrail import default_callbacks
from guardrail.build import build

HOOKS = ("on_train_batch_start", "on_train_batch_end", "on_before_backward",
         "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad")
LEFT_OUT = ("AttributionReport", "RunReport", "DeterminismGuard")


def measure(recipe: str, steps: int) -> tuple[float, dict[str, float]]:
    """(wall ms per step, {callback: hook ms per step})."""
    totals: dict[str, float] = defaultdict(float)
    with tempfile.TemporaryDirectory() as tmp:
        with initialize_config_module("guardrail.configs", version_base="1.3"):
            cfg = compose("train", overrides=[f"recipe={recipe}"])
        with open_dict(cfg):
            cfg.paths.output_dir = tmp
        pl.seed_everything(cfg.seed, verbose=False)
        built = build(cfg)
        callbacks = [timed(cb, totals, HOOKS) for cb in default_callbacks()
                     if type(cb).__name__ not in LEFT_OUT]
        start = time.perf_counter()
        pl.Trainer(accelerator="cpu", max_steps=steps, limit_val_batches=0,
                   num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False,
                   callbacks=callbacks, default_root_dir=tmp).fit(
            built.module, datamodule=built.datamodule)
        wall = time.perf_counter() - start
    return wall / steps * 1e3, {k: v / steps * 1e3 for k, v in sorted(totals.items())}


def main() -> None:
    """Print one markdown row per recipe."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["est", "wea"])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    print("| recipe | step (ms) | all guardrail hooks (ms) | share | by callback (ms) |")
    print("|---|---|---|---|---|")
    for recipe in args.recipes:
        wall, per = measure(recipe, args.steps)
        hooks = sum(per.values())
        detail = ", ".join(f"{k} {v:.3f}" for k, v in per.items() if v >= 0.005)
        print(f"| {recipe} | {wall:.2f} | {hooks:.3f} | {hooks / wall:.1%} | {detail} |",
              flush=True)


if __name__ == "__main__":
    main()
