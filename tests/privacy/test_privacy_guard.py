"""PrivacyGuard and DifferentialPrivacy in a Trainer, on plain modules and on RET's app run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from conftest import quiet_trainer
from guardrail.callbacks import DifferentialPrivacy, PrivacyGuard
from guardrail.errors import ConfigError, GuardrailError
from guardrail.privacy.pseudonym import KEY_ENV
from guardrail.recipes.ret.generator import support_notes, synthetic_app_events


class Records(pl.LightningDataModule):
    """A user's own datamodule: tensors to train on, and the raw records they came from."""

    def __init__(self, notes: list[str], roles: dict | None = None) -> None:
        super().__init__()
        n = len(notes)
        self.raw = [{"city": "AB"[i % 2], "age": 20 + i % 40, "note": note}
                    for i, note in enumerate(notes)]
        g = torch.Generator().manual_seed(0)
        self.data = TensorDataset(torch.randn(n, 32, generator=g), torch.randn(n, 2, generator=g))
        self.roles = roles or {}

    def records(self, split):
        return self.raw if split == "train" else None

    def privacy_roles(self):
        return self.roles

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=16)


class Boring(BoringModel):
    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)


NOTES = ["thanks"] * 18 + ["write to kim.lee@example.org", "fine"]


def test_personal_data_in_an_undeclared_field_is_an_error_and_strict_stops(tmp_path):
    guard = PrivacyGuard(dirpath=tmp_path)
    quiet_trainer(callbacks=[guard], max_steps=1).fit(Boring(), datamodule=Records(NOTES))
    found = {f.check: f for f in guard.findings}
    assert found["privacy.pii"].where == "note" and found["privacy.pii"].severity == "error"
    assert found["privacy.undeclared"].where == "age, city"  # names that suggest personal data
    written = json.loads((tmp_path / "privacy.json").read_text())
    assert written["scan"]["matches"][0]["field"] == "note"
    assert "kim.lee@example.org" not in (tmp_path / "privacy.json").read_text()

    strict = PrivacyGuard(dirpath=tmp_path, policy="strict")
    trainer = quiet_trainer(callbacks=[strict], max_steps=5)
    with pytest.raises(GuardrailError, match=r"privacy\.pii"):
        trainer.fit(Boring(), datamodule=Records(NOTES))
    assert trainer.global_step == 0


def test_field_names_that_are_not_personal_stay_silent():
    from guardrail.callbacks.privacy_guard import _PERSONAL_NAME

    assert [n for n in ("Street", "Lot_Area", "Neighborhood", "age_band", "user_email", "City")
            if _PERSONAL_NAME.search(n)] == ["age_band", "user_email", "City"]


def test_clean_declared_records_stay_silent(tmp_path):
    guard = PrivacyGuard(dirpath=tmp_path, quasi_identifiers=["city"], k=2)
    quiet_trainer(callbacks=[guard], max_steps=1).fit(
        Boring(), datamodule=Records(["thanks"] * 20, {"sensitive": ["age"]}))
    assert [f.check for f in guard.findings] == []
    assert guard.summary["anonymity"]["k"] == 10


def test_a_role_naming_no_field_is_refused_with_the_closest_name(tmp_path):
    guard = PrivacyGuard(dirpath=tmp_path, quasi_identifiers=["cty"])
    with pytest.raises(ConfigError, match="did you mean 'city'"):
        quiet_trainer(callbacks=[guard], max_steps=1).fit(Boring(), datamodule=Records(NOTES))


def test_a_plain_module_without_records_is_skipped_and_trains(tmp_path):
    guard = PrivacyGuard(dirpath=tmp_path, audit=True)
    trainer = quiet_trainer(callbacks=[guard], max_steps=2)
    trainer.fit(BoringModel())
    assert trainer.global_step == 2 and [f.check for f in guard.findings] == ["privacy.skipped"]


# ---------------------------------------------------------------------- differential privacy
class Normed(Boring):
    def __init__(self):
        super().__init__()
        self.layer = nn.Sequential(nn.Linear(32, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))


def dp_trainer(dp, **kwargs):
    return quiet_trainer(callbacks=[dp], limit_val_batches=0, **kwargs)


def loader(n=512):
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(n, 32, generator=g),
                                    torch.randn(n, 2, generator=g)), batch_size=64)


def test_dp_spends_no_more_than_its_target_and_logs_it():
    dp = DifferentialPrivacy(target_epsilon=2.0, seed=1)
    trainer = dp_trainer(dp, max_epochs=3)
    trainer.fit(Boring(), loader())
    spent = [e["epsilon"] for e in dp.spent]
    assert len(spent) == 3 and spent == sorted(spent) and 1.9 <= spent[-1] <= 2.0
    assert trainer.callback_metrics["privacy/epsilon"] == pytest.approx(spent[-1])
    finding, = dp.findings
    assert finding.check == "privacy.dp" and finding.evidence["steps"] == trainer.global_step


def test_training_past_the_plan_warns_that_the_budget_is_overspent():
    dp = DifferentialPrivacy(target_epsilon=2.0, seed=1)
    model = Boring()
    dp_trainer(dp, max_epochs=2).fit(model, loader())
    assert [f.check for f in dp.findings] == ["privacy.dp"]  # the plan kept: silent
    dp_trainer(dp, max_epochs=2).fit(model, loader())  # two more epochs at the same noise
    over = [f for f in dp.findings if f.check == "privacy.dp_budget"]
    assert len(over) == 1 and over[0].evidence["epsilon"] > 2.0


def test_dp_updates_are_clipped():
    """With the noise off (a huge budget) an example's pull is bounded by the clipping norm."""
    torch.manual_seed(0)
    model = Boring()
    before = [p.detach().clone() for p in model.parameters()]
    big = TensorDataset(torch.full((64, 32), 1e3), torch.zeros(64, 2))
    dp = DifferentialPrivacy(target_epsilon=None, noise_multiplier=1e-9, max_grad_norm=0.5)
    dp_trainer(dp, max_steps=1).fit(model, DataLoader(big, batch_size=64))
    lr = model.configure_optimizers()[0][0].param_groups[0]["lr"]
    moved = torch.sqrt(sum(((p - b) ** 2).sum() for p, b in zip(model.parameters(), before,
                                                                 strict=True)))
    assert 0 < moved <= lr * 0.5 * 1.001  # SGD: the mean of clipped gradients is <= C


def test_layers_dp_cannot_train_are_refused_or_replaced():
    with pytest.raises(ConfigError, match=r"layer\.1 \(BatchNorm1d\).*dp_fix_layers"):
        dp_trainer(DifferentialPrivacy(), max_steps=1).fit(Normed(), loader())
    model = Normed()
    dp = DifferentialPrivacy(fix_layers=True)
    dp_trainer(dp, max_steps=2).fit(model, loader())
    assert isinstance(model.layer[1], nn.GroupNorm) and dp.replaced


def test_a_dp_failure_stops_training_instead_of_skipping(monkeypatch):
    """Other guardrails skip what they cannot do; this one would train without privacy."""
    def broken(module):
        raise RuntimeError("no per-example rule")

    monkeypatch.setattr("guardrail.privacy.dp.unsupported_layers", broken)
    trainer = dp_trainer(DifferentialPrivacy(), max_steps=2)
    with pytest.raises(GuardrailError, match="without differential privacy"):
        trainer.fit(Boring(), loader())
    assert trainer.global_step == 0


def test_dp_off_changes_nothing():
    dp = DifferentialPrivacy(enabled=False)
    trainer = dp_trainer(dp, max_steps=2)
    trainer.fit(Normed(), loader())
    assert type(trainer.optimizers[0]).__name__ == "SGD" and dp.findings == []


# ------------------------------------------------------------------------ the app, end to end
KEY = "a-secret-pseudonym-key-that-must-not-leak-7f3a"


def test_ret_run_keeps_key_ids_and_contacts_out_of_every_file(tmp_path):
    """RET with keyed pseudonyms, support notes, DP and the audit: no run file holds a secret.

    The audit runs in the test loop, whose eval mode its DP reference models must leave.
    """
    run = tmp_path / "run"
    env = {**os.environ, KEY_ENV: KEY, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "guardrail.train", "recipe=ret", "data.source=synthetic",
         "data.n_users=2000", "data.support_notes=true", "privacy.pseudonymise=key",
         "privacy.dp=true", "privacy.dp_fix_layers=true", "trainer.max_epochs=2",
         "privacy.audit=true", "privacy.references=2",
         "guardrails.callbacks.config_lock.mode=off", f"hydra.run.dir={run}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    findings = [json.loads(line) for line in (run / "findings.jsonl").read_text().splitlines()]
    assert "privacy.pii" in {f["check"] for f in findings}  # the notes' contacts were found
    assert {"privacy.dp", "privacy.audit"} <= {f["check"] for f in findings}
    users, _ = synthetic_app_events(2000, 42)
    secrets = [KEY, *users["user_id"].iloc[::50]]
    secrets += [m.group() for n in support_notes(2000, 42)
                for m in re.finditer(r"[\w.+-]+@[\w.-]+|\+46[\d ]+\d", n)]
    files = [p for p in run.rglob("*") if p.is_file()]
    assert len(files) > 8
    for path in files:
        data = path.read_bytes()
        leaked = [s for s in secrets if s.encode() in data]
        assert not leaked, f"{path.relative_to(run)} holds {leaked[:3]}"
    privacy = json.loads((run / "privacy.json").read_text())
    assert privacy["dp"]["epsilon"] <= 8.0 and "Differential privacy" in (
        run / "report.html").read_text()
    cost = privacy["audit"]["utility"]  # the same model without DP, on the same records
    assert cost["private_loss"] > 0 and cost["nonprivate_loss"] > 0
    assert "utility cost, measured by the audit" in (run / "report.html").read_text()
