"""The membership audit: its metrics, and a memorising model against a healthy one."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from conftest import quiet_trainer
from guardrail.privacy.audit import (
    MembershipThresholds,
    attack_metrics,
    lira_scores,
    membership_findings,
    roc_auc,
    tpr_at_fpr,
)
from guardrail.privacy.membership import audit


def test_metrics_of_a_blind_attack_are_chance():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=5000), rng.normal(size=5000)
    assert abs(roc_auc(a, b) - 0.5) < 0.02
    assert tpr_at_fpr(a, b, 0.01) == pytest.approx(0.01, abs=0.006)
    m = attack_metrics(a, b, seed=0)
    low, high = m["tpr_interval"]["0.01"]
    assert low < 0.015 and high > 0.008 and membership_findings({"loss": m}) == []


def test_a_separating_attack_fires_with_its_figures():
    rng = np.random.default_rng(2)
    m = attack_metrics(rng.normal(1.5, 1, 2000), rng.normal(0, 1, 2000), seed=0)
    finding, = membership_findings({"loss": m, "lira": attack_metrics(
        rng.normal(size=2000), rng.normal(size=2000), seed=0)})
    assert finding.check == "privacy.membership_risk" and finding.where == "loss"
    assert finding.evidence["interval"][0] > 0.03
    # a stricter threshold silences the same figures
    assert membership_findings({"loss": m}, MembershipThresholds(tpr_ratio=50)) == []


def test_lira_tells_apart_what_only_the_target_fits():
    rng = np.random.default_rng(3)
    n, k = 400, 8
    inside = np.zeros((k, n), bool)
    inside[::2] = rng.random((k // 2, n)) < 0.5
    inside[1::2] = ~inside[::2]
    refs = rng.normal(0, 0.3, (k, n)) + np.where(inside, 2.0, 0.0) + rng.normal(0, 1, n)
    member = rng.random(n) < 0.5
    target = refs.mean(0) + np.where(member, 1.0, -1.0) + rng.normal(0, 0.3, n)
    scores = lira_scores(target, refs, inside)
    assert roc_auc(scores[member], scores[~member]) > 0.9


class Classifier(pl.LightningModule):
    """Written the way users write them: a plain module, the loss in training_step."""

    def __init__(self, d: int, hidden: int, weight_decay: float = 0.0, lr: float = 0.01):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        self.weight_decay, self.lr = weight_decay, lr

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def noisy_task(n: int, d: int = 20, seed: int = 0) -> TensorDataset:
    """A linear rule with 30% of the labels flipped: only memorising fits the flipped ones."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    flip = torch.rand(n, generator=g) < 0.3
    return TensorDataset(x, torch.where(flip, 1 - y, y))


def audited(members, nonmembers, hidden, epochs, batch_size, references=8, weight_decay=0.0):
    torch.manual_seed(0)
    model = Classifier(20, hidden, weight_decay)
    quiet_trainer(max_epochs=epochs).fit(
        model, DataLoader(members, batch_size=batch_size, shuffle=True))
    return audit(model, members, nonmembers, batch_size=batch_size, max_epochs=epochs,
                 references=references, max_records=1000, seed=0)


def test_a_memorising_model_fires_and_a_healthy_one_stays_silent():
    data = noisy_task(4000)
    members = torch.utils.data.Subset(data, range(300))
    nonmembers = torch.utils.data.Subset(data, range(2000, 2300))
    memorised = audited(members, nonmembers, hidden=256, epochs=150, batch_size=100)
    assert memorised["member_loss"] < 0.1 < memorised["nonmember_loss"]
    finding, = membership_findings(memorised["attacks"])
    assert finding.check == "privacy.membership_risk"

    members = torch.utils.data.Subset(data, range(2000))
    nonmembers = torch.utils.data.Subset(data, range(2000, 4000))
    healthy = audited(members, nonmembers, hidden=8, epochs=3, batch_size=100,
                      weight_decay=1e-3)
    assert membership_findings(healthy["attacks"]) == []
    assert abs(healthy["attacks"]["lira"]["auc"] - 0.5) < 0.05
