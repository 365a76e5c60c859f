"""Resuming from a checkpoint: the probes judge as an uninterrupted run would."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from guardrail.callbacks import ActivationProbe, ArchitectureCheck, GradientProbe, LossProbe

EPOCHS, CUT = 8, 3


class ScaledHead(pl.LightningModule):
    """A plain classifier whose head starts 200x too large, on labels unrelated to the inputs:
    ``loss.initial`` at its first step (before the cut) and ``loss.plateau`` later (after it,
    judged on the epochs of both halves)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
        with torch.no_grad():
            self.net[2].weight.mul_(200)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-4)


def data() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 8, generator=g), torch.randint(0, 4, (128,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=32)


def probes() -> list[pl.Callback]:
    return [ArchitectureCheck(), ActivationProbe(every_n_steps=2),
            GradientProbe(every_n_steps=2), LossProbe()]


def fit(tmp_path, epochs: int, ckpt_path=None) -> list[tuple]:
    callbacks = probes()
    trainer = pl.Trainer(
        max_epochs=epochs, logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path, callbacks=[*callbacks, ModelCheckpoint(
            dirpath=tmp_path / "ckpt", save_last=True, save_top_k=0)])
    trainer.fit(ScaledHead(), data(), ckpt_path=ckpt_path)
    return sorted((f.check, f.where, f.step, f.epoch, f.message) for cb in callbacks
                  for f in cb.findings)


def test_a_resumed_run_has_the_findings_of_an_uninterrupted_one(tmp_path):
    whole = fit(tmp_path / "whole", EPOCHS)
    fit(tmp_path / "split", CUT)
    resumed = fit(tmp_path / "split", EPOCHS, ckpt_path=tmp_path / "split" / "ckpt" / "last.ckpt")
    checks = [f[0] for f in whole]
    assert "loss.initial" in checks and "loss.plateau" in checks  # findings on both sides
    assert resumed == whole


def test_a_restored_fresh_probe_continues_its_windows():
    probe = LossProbe()
    probe.train_epochs, probe._batches = [1.0, 0.9], 40
    probe.emit_once(None, [])
    restored = LossProbe()
    restored.load_state_dict(probe.state_dict())
    assert restored.train_epochs == [1.0, 0.9] and restored._batches == 40
    ahead = LossProbe()  # a probe that trained on (testing the best checkpoint after fit)
    ahead.train_epochs = [1.0, 0.9, 0.8]
    ahead.load_state_dict(probe.state_dict())
    assert ahead.train_epochs == [1.0, 0.9, 0.8]
