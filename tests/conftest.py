"""Shared fixtures: tiny models and data, CPU only, seconds each."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset


class TinyData(pl.LightningDataModule):
    """A linear regression task with a configurable baseline, for callback tests."""

    def __init__(self, baselines: dict[str, dict[str, float]] | None = None, n: int = 64) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 3, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5]) + 0.01 * torch.randn(n, generator=g)
        self._baselines = baselines

    def _loader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.x, self.y), batch_size=16)

    def train_dataloader(self) -> DataLoader:
        return self._loader()

    def val_dataloader(self) -> DataLoader:
        return self._loader()

    def test_dataloader(self) -> DataLoader:
        return self._loader()

    def baselines(self) -> dict[str, dict[str, float]]:
        return self._baselines or {}


def exported_with_parity(run, capsys) -> dict:
    """`guardrail export RUN` passes parity with torch.export, and `guardrail records` prints the
    test records that open examples.jsonl; returns the first example."""
    import json

    from guardrail.cli import main

    assert main(["export", str(run)]) == 0
    manifest = json.loads((run / "export" / "export.json").read_text())
    assert manifest["parity"]["passed"] and manifest["format"] == "torch.export"
    capsys.readouterr()
    assert main(["records", str(run), "--split", "test", "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    example = json.loads((run / "export" / "examples.jsonl").read_text().splitlines()[0])
    assert json.loads(lines[0]) == example["record"]
    return example


def trained_and_exported(folder, recipe: str, epochs: int = 1):
    """``folder`` after a short run of ``recipe`` (lock off, one thread) and its export."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "guardrail.train", f"recipe={recipe}",
                    f"trainer.max_epochs={epochs}", "trainer.enable_progress_bar=false",
                    "guardrails.callbacks.config_lock.mode=off", f"hydra.run.dir={folder}"],
                   check=True, capture_output=True, timeout=600, env=env)
    subprocess.run([sys.executable, "-m", "guardrail", "export", str(folder)], check=True,
                   capture_output=True, timeout=600, env=env)
    return folder


def quiet_trainer(**kwargs) -> pl.Trainer:
    defaults = dict(accelerator="cpu", logger=False, enable_progress_bar=False,
                    enable_model_summary=False, enable_checkpointing=False, max_epochs=1)
    return pl.Trainer(**{**defaults, **kwargs})


@pytest.fixture
def tiny_data() -> type[TinyData]:
    return TinyData


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test starts from the same random state: results do not depend on test order."""
    pl.seed_everything(0, verbose=False)
