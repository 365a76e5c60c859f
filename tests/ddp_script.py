"""Tiny DDP runs that tests/test_ddp.py starts as subprocesses (two CPU ranks, gloo).

    python tests/ddp_script.py SCENARIO RUN_DIR DEVICES

Scenarios: ``nan`` (rank 1 alone produces NaN, recorded), ``nan_strict`` (the same under a
strict policy: every rank stops), ``noisy`` (rank 1 alone adds unseeded noise, which the
determinism replay must catch), ``slow`` (rank 1 alone loads its data slowly),
``lock_shuffle`` / ``lock_sequential`` (a ConfigLock in
RUN_DIR/locks over a train loader with / without shuffling), ``plain_strict`` (a plain
LightningModule whose softmax output reaches cross_entropy, every probe strict: both ranks
stop) and ``plain_manual`` (a plain module stepping its optimiser by hand without zero_grad,
dict batches, every probe recording), ``broken`` (a gradient probe fails internally on
rank 1 alone: the run must end on every rank, not hang). Each rank prints one line
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
    ArchitectureCheck,
    ConfigLock,
    DeterminismGuard,
    GradientProbe,
    LossProbe,
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
    """Samples cost 15 ms each on global rank 1 (a slow disk there), nothing on rank 0."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        if dist.is_initialized() and dist.get_rank() == 1:
            time.sleep(0.015)
        return super().__getitem__(i)


class FailsOnRank1(GradientProbe):
    """A gradient probe with a bug that only rank 1's data triggers."""

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if trainer.global_rank == 1 and trainer.global_step == 1:
            raise KeyError("layer-that-is-not-there")
        super().on_before_optimizer_step(trainer, pl_module, optimizer)


class Plain(pl.LightningModule):
    """Written without guardrail: dict batches, the loss in training_step."""

    def __init__(self, manual: bool) -> None:
        super().__init__()
        self.automatic_optimization = not manual
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3),
                                 *([] if manual else [nn.Softmax(dim=1)]))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = nn.functional.cross_entropy(self.net(batch["x"]), batch["label"])
        if self.automatic_optimization:
            return loss
        self.manual_backward(loss)  # no zero_grad: gradients pile up
        self.optimizers().step()
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def plain(scenario: str, run_dir: Path, devices: int) -> int:
    x, y = torch.randn(128, 4), torch.randint(0, 3, (128,))
    loader = DataLoader([{"x": a, "label": b} for a, b in zip(x, y, strict=True)], 16)
    policy = "strict" if scenario == "plain_strict" else "record"
    probes = [ArchitectureCheck(policy), LossProbe(policy), ActivationProbe(policy, 2),
              GradientProbe(policy, 2)]
    trainer = pl.Trainer(
        accelerator="cpu", devices=devices, strategy="ddp", max_steps=6, logger=False,
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        default_root_dir=run_dir, callbacks=[*probes, RunReport(run_dir, html=False)])
    try:
        trainer.fit(Plain(manual=scenario == "plain_manual"), loader)
    except GuardrailError as err:
        print(f"rank {trainer.global_rank}: stopped: {err}", flush=True)
        return 3
    print(f"rank {trainer.global_rank}: completed", flush=True)
    return 0


def main(scenario: str, run_dir: Path, devices: int) -> int:
    warnings.filterwarnings("ignore")
    pl.seed_everything(0, verbose=False)
    if scenario.startswith("plain"):
        return plain(scenario, run_dir, devices)
    x, y = torch.randn(128, 4), torch.randn(128)
    shuffle = scenario != "lock_sequential"
    data = (SlowOnRank1 if scenario == "slow" else TensorDataset)(x, y)
    loader = DataLoader(data, batch_size=16, shuffle=shuffle)
    if scenario.startswith("nan"):
        net = nn.Sequential(nn.Linear(4, 8), PoisonOnRank1(), nn.Linear(8, 1))
        policy = "strict" if scenario == "nan_strict" else "record"
        guards: list[pl.Callback] = [ActivationProbe(policy=policy, every_n_steps=1)]
    elif scenario == "broken":
        net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        guards = [FailsOnRank1(every_n_steps=1)]
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
        callbacks=[*guards, ResourceMonitor(thresholds={"input_bound_min_steps": 2}),
                   RunReport(run_dir, html=False)])
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
