"""Tiny DDP runs that tests/test_ddp.py starts as subprocesses (two CPU ranks, gloo).

    python tests/ddp_script.py SCENARIO RUN_DIR DEVICES

Scenarios: ``nan`` (rank 1 alone produces NaN, recorded), ``nan_strict`` (the same under a
strict policy: every rank stops), ``noisy`` (rank 1 alone adds unseeded noise, which the
determinism replay must catch), ``slow`` (rank 1 alone loads its data slowly),
``lock_shuffle`` / ``lock_sequential`` (a ConfigLock in
RUN_DIR/locks over a train loader with / without shuffling). Each rank prints one line
``rank R: ...`` saying how it ended. Lightning re-runs this file for rank 1 with the same
arguments.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from guardrail import GuardrailModule
from guardrail.callbacks import (
    ActivationProbe,
    ConfigLock,
    DeterminismGuard,
    ResourceMonitor,
    RunManifest,
    RunReport,
)
from guardrail.errors import GuardrailError


class PoisonOnRank1(nn.Module):
    """The identity, except on global rank 1, where every output is NaN."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if dist.is_initialized() and dist.get_rank() == 1:
            return x * float("nan")
        return x


class NoisyOnRank1(nn.Module):
    """The identity, except on global rank 1, where it adds noise from an OS-seeded generator."""

    def __init__(self) -> None:
        super().__init__()
        self.generator = torch.Generator()
        self.generator.seed()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if dist.is_initialized() and dist.get_rank() == 1:
            return x + 0.1 * torch.randn(x.shape, generator=self.generator)
        return x


class SlowOnRank1(TensorDataset):
    """Samples cost 4 ms each on global rank 1 (a slow disk there), nothing on rank 0."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        if dist.is_initialized() and dist.get_rank() == 1:
            time.sleep(0.004)
        return super().__getitem__(i)


def main(scenario: str, run_dir: Path, devices: int) -> int:
    warnings.filterwarnings("ignore")
    pl.seed_everything(0, verbose=False)
    x, y = torch.randn(128, 4), torch.randn(128)
    shuffle = scenario != "lock_sequential"
    data = (SlowOnRank1 if scenario == "slow" else TensorDataset)(x, y)
    loader = DataLoader(data, batch_size=16, shuffle=shuffle)
    if scenario.startswith("nan"):
        net = nn.Sequential(nn.Linear(4, 8), PoisonOnRank1(), nn.Linear(8, 1))
        policy = "strict" if scenario == "nan_strict" else "record"
        guards: list[pl.Callback] = [ActivationProbe(policy=policy, every_n_steps=1)]
    elif scenario == "slow":
        net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        guards = []
    elif scenario == "noisy":
        net = nn.Sequential(nn.Linear(4, 8), NoisyOnRank1(), nn.Linear(8, 1))
        guards = [DeterminismGuard(verify_steps=2)]
    else:
        net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        guards = [ConfigLock(lock_dir=run_dir / "locks", name="tiny"),
                  DeterminismGuard(verify_steps=2), RunManifest(run_dir),
                  ActivationProbe(every_n_steps=1)]
    trainer = pl.Trainer(
        accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto",
        max_steps=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, default_root_dir=run_dir,
        callbacks=[*guards, ResourceMonitor(min_steps=2), RunReport(run_dir, html=False)])
    try:
        trainer.fit(GuardrailModule(net, lr=0.01), loader)
    except GuardrailError as err:
        print(f"rank {trainer.global_rank}: stopped: {err}", flush=True)
        return 3
    verified = [cb.verified for cb in guards if isinstance(cb, DeterminismGuard)]
    print(f"rank {trainer.global_rank}: completed verified={verified}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])))
