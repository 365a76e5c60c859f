"""DP-SGD's cost per training step on RET, against the same training without it.

Usage:
    OMP_NUM_THREADS=1 python scripts/bench_dp.py [--pairs 5] [--steps 40] [--source synthetic]

Each pair trains RET's model twice from the same seed on the same data, in one process and in
alternating order (interleaved, so drift of the machine hits both): once as the recipe does
(``nn.GRU``, Lightning's loop, no guardrails) and once with
:class:`guardrail.callbacks.DifferentialPrivacy` at epsilon 4 (``nn.GRU`` replaced by Opacus'
``DPGRU``, per-example gradients, clipping, noise, Poisson sampling). The time of each step
(one batch start to the next, so Poisson sampling is included; the first 5 steps left out)
is taken; the figure is the median over pairs of the ratio of median step times, DP over
plain.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from hydra import compose, initialize_config_module

sys.path.insert(0, str(Path(__file__).parent))
from bench_overhead import StepClock

from guardrail.build import build
from guardrail.callbacks import DifferentialPrivacy

WARMUP = 5


def step_time(source: str, steps: int, private: bool) -> float:
    with initialize_config_module("guardrail.configs", version_base="1.3"):
        cfg = compose("train", overrides=["recipe=ret", f"data.source={source}"])
    pl.seed_everything(0, verbose=False)
    built = build(cfg)
    clock = StepClock()
    callbacks: list[pl.Callback] = [clock]
    if private:
        callbacks.append(DifferentialPrivacy(target_epsilon=4.0, fix_layers=True))
    pl.Trainer(max_steps=steps + WARMUP, max_epochs=1000, logger=False,
               enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
               callbacks=callbacks, accelerator="cpu", devices=1).fit(
        built.module, datamodule=built.datamodule)
    return clock.median_step(WARMUP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--source", default="synthetic", choices=["synthetic", "cdnow"])
    args = parser.parse_args()
    logging.disable(logging.INFO)
    warnings.filterwarnings("ignore")
    ratios, plain, private = [], [], []
    for i in range(args.pairs):
        order = (False, True) if i % 2 == 0 else (True, False)
        times = {p: step_time(args.source, args.steps, p) for p in order}
        plain.append(times[False])
        private.append(times[True])
        ratios.append(times[True] / times[False])
        print(f"pair {i}: plain {times[False] * 1e3:.1f} ms, DP {times[True] * 1e3:.1f} ms, "
              f"ratio {ratios[-1]:.2f}", flush=True)
    print(f"\nRET ({args.source}), torch threads {torch.get_num_threads()}: plain step "
          f"{statistics.median(plain) * 1e3:.1f} ms, DP-SGD step "
          f"{statistics.median(private) * 1e3:.1f} ms; DP / plain, median of {args.pairs} "
          f"interleaved pairs: {statistics.median(ratios):.2f}x "
          f"(range {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
