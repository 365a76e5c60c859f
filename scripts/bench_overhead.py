"""Guardrail overhead per training step and per whole run: default guardrails vs none.

Usage:
    OMP_NUM_THREADS=1 python scripts/bench_overhead.py --recipes wea est --pairs 5
    OMP_NUM_THREADS=1 python scripts/bench_overhead.py --whole-run --seconds 30 150 --pairs 3

For each recipe it trains interleaved pairs of runs from the same seed — one with no
guardrail callbacks, one with ``default_callbacks()`` (sampling every 25 steps), and one with
the activation and gradient probes on every step — and measures the median time between
consecutive training-batch starts (every hook of a step included; validation off). One-off
costs at fit start (the determinism replay, data fingerprints, the shape walk) are not
per-step and are reported separately as the median difference in time to the first batch.
The printed ratio is the median over pairs of (guarded / plain) step time, the usual way to
cancel machine drift.

``--whole-run`` measures what a user waits for instead: the wall time of ``trainer.fit``
(fit start to end, every one-off cost included: the determinism replay, data fingerprints,
the attribution at the end, the run report) with ``default_callbacks()`` against none, on
small models written as users write them (plain ``LightningModule``s: a CNN classifier with
2x pooling, a convolutional autoencoder, an LSTM regressor), with validation every epoch.
Each model's step count is calibrated so that the plain run lasts about ``--seconds``; pairs
are interleaved (the order alternates) and the median of the per-pair ratios is printed, with
the median per-step ratio (median time between training-batch starts) beside it and the
attribution's seconds in all (samples read, explanation, plots: ``budget.total_s``). The
process's CPU-time ratio is printed too: on the shared virtual machines these figures come
from, wall-time ratios of single pairs ranged from 0.94x to 1.28x for one model and setting,
and CPU time counts only what the run itself did.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_module
from lightning.pytorch import Callback
from omegaconf import open_dict
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from guardrail.build import build
from guardrail.callbacks import (
    ActivationProbe,
    AttributionReport,
    DeterminismGuard,
    GradientProbe,
    RunReport,
    default_callbacks,
)


class StepClock(Callback):
    """Timestamps of every training-batch start, and of fit start (shared by the benchmarks)."""

    def __init__(self) -> None:
        self.fit_start = 0.0
        self.starts: list[float] = []

    def on_fit_start(self, *args: Any) -> None:
        self.fit_start = time.perf_counter()

    def on_train_batch_start(self, *args: Any) -> None:
        self.starts.append(time.perf_counter())

    def median_step(self, skip: int = 0) -> float:
        """Median seconds from one batch start to the next, the first ``skip`` steps left out."""
        gaps = [b - a for a, b in zip(self.starts, self.starts[1:], strict=False)]
        return statistics.median(gaps[skip:])


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
    return clock.median_step(warmup), clock.starts[0] - clock.fit_start


def run(recipe: str, variant: str, steps: int, warmup: int, tmp: str) -> tuple[float, float]:
    """:func:`step_times` of one variant (plain, default or every_step)."""
    return step_times(recipe, guardrails(variant), steps, warmup, tmp)


class Plain(pl.LightningModule):
    """What a user writes: a net, a loss, Adam, ``train_loss`` and ``val_loss`` logged."""

    def __init__(self, net: nn.Module, loss: Any) -> None:
        super().__init__()
        self.net, self.loss = net, loss

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self.loss(self(batch[0]), batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", self.loss(self(batch[0]), batch))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3)


class LastStep(nn.Module):
    """An LSTM regressor: the last hidden state through a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm, self.head = nn.LSTM(8, 64, batch_first=True), nn.Linear(64, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0][:, -1]).squeeze(-1)


def user_model(kind: str) -> tuple[pl.LightningModule, DataLoader, DataLoader]:
    """A small healthy model and its seeded data: ``cnn``, ``autoencoder`` or ``lstm``."""
    g = torch.Generator().manual_seed(0)
    if kind == "lstm":
        x = torch.randn(4096, 32, 8, generator=g)
        y = x[:, :, 0].sum(1) / 6
        module = Plain(LastStep(), lambda out, b: F.mse_loss(out, b[1]))
    else:
        x = torch.randn(4096, 1, 28, 28, generator=g)
        y = (x[:, 0, :14].mean((1, 2)) > 0).long() * 2 + (x[:, 0, :, :14].mean((1, 2)) > 0).long()
        if kind == "cnn":
            net = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 4))
            module = Plain(net, lambda out, b: F.cross_entropy(out, b[1]))
        else:
            net = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.ConvTranspose2d(8, 16, 2, stride=2), nn.ReLU(),
                nn.ConvTranspose2d(16, 1, 2, stride=2))
            module = Plain(net, lambda out, b: F.mse_loss(out, b[0]))
    cut = len(x) * 7 // 8
    return (module, DataLoader(TensorDataset(x[:cut], y[:cut]), batch_size=64, shuffle=True),
            DataLoader(TensorDataset(x[cut:], y[cut:]), batch_size=64))


def whole_run(kind: str, steps: int, guarded: bool) -> dict[str, float]:
    """Wall seconds of one ``fit`` of ``kind`` for ``steps`` steps, and its one-off parts."""
    pl.seed_everything(0, verbose=False)
    module, train, val = user_model(kind)
    clock = StepClock()
    with tempfile.TemporaryDirectory() as tmp:
        callbacks = default_callbacks() if guarded else []
        trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=steps, logger=False,
                             enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, callbacks=[*callbacks, clock],
                             default_root_dir=tmp)
        start, cpu = time.perf_counter(), time.process_time()
        trainer.fit(module, train, val)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    attribution = next((cb.result or {} for cb in callbacks
                        if isinstance(cb, AttributionReport)), {})
    replay = next((getattr(cb, "replay_seconds", 0.0) or 0.0 for cb in callbacks
                   if isinstance(cb, DeterminismGuard)), 0.0)
    return {"wall": wall, "cpu": cpu,
            "attribution": (attribution.get("budget") or {}).get("total_s", 0.0),
            "replay": replay, "step": clock.median_step()}


def calibrate(kind: str, seconds: float, probe_steps: int = 60) -> int:
    """Steps that make a plain run of ``kind`` last about ``seconds``.

    Two short probes give a first per-step time; a third run of about a tenth of ``seconds``
    refines it (a step's time drifts as the run goes on, so a 60-step probe alone made a
    10-minute target a 7-minute run).
    """
    def steps_for(target: float, base: tuple[int, float], per_step: float) -> int:
        return max(probe_steps, round(base[0] + (target - base[1]) / per_step))

    short = (probe_steps // 2, whole_run(kind, probe_steps // 2, False)["wall"])
    longer = (probe_steps, whole_run(kind, probe_steps, False)["wall"])
    per_step = max((longer[1] - short[1]) / (longer[0] - short[0]), 1e-4)
    if seconds >= 20 * longer[1]:
        steps = steps_for(seconds / 10, longer, per_step)
        tenth = (steps, whole_run(kind, steps, False)["wall"])
        per_step = max((tenth[1] - short[1]) / (tenth[0] - short[0]), 1e-4)
        longer = tenth
    return steps_for(seconds, longer, per_step)


def whole_runs(kinds: list[str], durations: list[float], pairs: int) -> None:
    """Print a markdown table of whole-run ratios, default callbacks against none."""
    print("| model | plain run | default / plain (median of ratios) | each pair "
          "| CPU time, default / plain | per step (median of ratios) | attribution, all of it "
          "| determinism replay |")
    print("|---|---|---|---|---|---|---|---|")
    for seconds in durations:
        for kind in kinds:
            steps = calibrate(kind, seconds)
            ratios, cpu_ratios, step_ratios, plain, attribution, replay = [], [], [], [], [], []
            for k in range(pairs):
                runs = {}
                for guarded in ((False, True) if k % 2 == 0 else (True, False)):
                    runs[guarded] = whole_run(kind, steps, guarded)
                ratios.append(runs[True]["wall"] / runs[False]["wall"])
                cpu_ratios.append(runs[True]["cpu"] / runs[False]["cpu"])
                step_ratios.append(runs[True]["step"] / runs[False]["step"])
                plain.append(runs[False]["wall"])
                attribution.append(runs[True]["attribution"])
                replay.append(runs[True]["replay"])
            print(f"| {kind} | {statistics.median(plain):.1f} s ({steps} steps) "
                  f"| {statistics.median(ratios):.3f}x "
                  f"| {', '.join(f'{r:.3f}' for r in ratios)} "
                  f"| {statistics.median(cpu_ratios):.3f}x "
                  f"| {statistics.median(step_ratios):.3f}x "
                  f"| {statistics.median(attribution):.2f} s "
                  f"| {statistics.median(replay):.2f} s |", flush=True)


def main() -> None:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["wea", "est"])
    parser.add_argument("--pairs", type=int, default=5, help="interleaved repetitions")
    parser.add_argument("--steps", type=int, default=150, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--whole-run", action="store_true",
                        help="whole-run wall time on plain user models instead of step time")
    parser.add_argument("--models", nargs="+", default=["cnn", "autoencoder", "lstm"])
    parser.add_argument("--seconds", nargs="+", type=float, default=[30.0, 150.0],
                        help="plain-run durations the whole-run mode calibrates to")
    args = parser.parse_args()
    if args.whole_run:
        whole_runs(args.models, args.seconds, args.pairs)
        return
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
