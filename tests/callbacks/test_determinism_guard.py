import os

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.loggers import CSVLogger
from torch import nn

from conftest import quiet_trainer
from guardrail import GuardrailModule
from guardrail.callbacks import DeterminismGuard


class Noisy(nn.Module):
    """Adds noise from a private generator seeded from the OS: not reproducible."""

    def __init__(self):
        super().__init__()
        self.generator = torch.Generator()
        self.generator.seed()

    def forward(self, x):
        return x + 0.1 * torch.randn(x.shape, generator=self.generator)


def model(noisy: bool) -> GuardrailModule:
    middle = Noisy() if noisy else nn.Dropout(0.2)  # dropout uses the global, seeded RNG
    return GuardrailModule(nn.Sequential(nn.Linear(3, 8), middle, nn.ReLU(), nn.Linear(8, 1)))


def test_unseeded_module_is_named_at_the_first_step(tiny_data):
    guard = DeterminismGuard(verify_steps=2)
    quiet_trainer(callbacks=[guard], max_steps=2).fit(model(noisy=True), datamodule=tiny_data())
    assert guard.verified is False
    [finding] = guard.findings
    assert (finding.check, finding.where, finding.evidence["step"]) == (
        "determinism.mismatch", "net.1", 0)


def test_healthy_model_with_dropout_verifies_and_training_is_unchanged(tiny_data):
    torch.manual_seed(0)
    guarded = model(noisy=False)
    guard = DeterminismGuard(verify_steps=3)
    quiet_trainer(callbacks=[guard], max_steps=3).fit(guarded, datamodule=tiny_data())
    torch.manual_seed(0)
    plain = model(noisy=False)
    quiet_trainer(max_steps=3).fit(plain, datamodule=tiny_data())
    assert guard.verified is True and guard.findings == []
    for a, b in zip(guarded.parameters(), plain.parameters(), strict=True):
        assert torch.equal(a, b)  # the replay left no trace on training


def test_verdict_and_replay_time_reach_the_logger(tiny_data, tmp_path):
    logger = CSVLogger(tmp_path, name="", version="")
    quiet_trainer(callbacks=[DeterminismGuard(verify_steps=2)], max_steps=2, logger=logger,
                  ).fit(model(noisy=False), datamodule=tiny_data())
    header, row = (tmp_path / "metrics.csv").read_text().splitlines()[:2]
    logged = dict(zip(header.split(","), row.split(","), strict=True))
    assert float(logged["guardrail/determinism_verified"]) == 1.0
    assert float(logged["guardrail/determinism_replay_s"]) > 0


def test_manual_optimisation_is_skipped_with_an_info():
    class Manual(BoringModel):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False

        def training_step(self, batch, batch_idx):
            opt = self.optimizers()
            loss = self.step(batch)
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()

    guard = DeterminismGuard()
    quiet_trainer(callbacks=[guard], max_steps=2).fit(Manual())
    assert [(f.check, f.severity.value) for f in guard.findings] == [
        ("determinism.skipped", "info")]


def test_strict_policy_stops_on_a_mismatch(tiny_data, monkeypatch):
    from guardrail import GuardrailError

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = _flags()
    with pytest.raises(GuardrailError, match=r"determinism.mismatch\] at net.1"):
        quiet_trainer(callbacks=[DeterminismGuard(policy="strict")], max_steps=2).fit(
            model(noisy=True), datamodule=tiny_data())
    assert _flags() == before  # restored although Lightning skips teardown on an exception


def _flags():
    return (torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.benchmark,
            torch.backends.cudnn.deterministic, os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
            torch.utils.deterministic.fill_uninitialized_memory)


def test_global_settings_are_restored_after_fit_and_test(tiny_data, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = _flags()
    seen = []

    class Spy(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            seen.append(_flags())

    guard = DeterminismGuard(verify_steps=0)
    trainer = quiet_trainer(callbacks=[guard, Spy()], max_steps=2)
    trainer.fit(GuardrailModule(nn.Linear(3, 1)), datamodule=tiny_data())
    # enforced while training, without filling uninitialised memory (it slows steps)
    assert seen == [(True, True, False, True, ":4096:8", False)]
    assert _flags() == before
    trainer.test(GuardrailModule(nn.Linear(3, 1)), datamodule=tiny_data(), verbose=False)
    assert _flags() == before


def test_filling_uninitialised_memory_can_be_kept(tiny_data):
    seen = []

    class Spy(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            seen.append(torch.utils.deterministic.fill_uninitialized_memory)

    guard = DeterminismGuard(verify_steps=0, fill_uninitialized_memory=True)
    quiet_trainer(callbacks=[guard, Spy()], max_steps=1).fit(
        GuardrailModule(nn.Linear(3, 1)), datamodule=tiny_data())
    assert seen == [True]


def test_trainer_flags_are_kept_or_their_override_said(tiny_data):
    seen = []

    class Spy(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            seen.append(_flags()[:3])

    guard = DeterminismGuard(verify_steps=0)
    try:
        trainer = quiet_trainer(callbacks=[guard, Spy()], max_steps=1, deterministic=True,
                                benchmark=True)
        trainer.fit(GuardrailModule(nn.Linear(3, 1)), datamodule=tiny_data())
        # deterministic=True stays an error, not a warning; benchmark is overridden, and said
        assert seen == [(True, False, False)]
        assert [(f.check, f.where, f.severity.value) for f in guard.findings] == [
            ("determinism.settings", "cudnn.benchmark", "info")]
        assert _flags()[:3] == (True, False, True)  # the Trainer's own, back again
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark = False


class DrawsWhenFast(GuardrailModule):
    """Draws from torch's global random stream only at a high learning rate, as a
    value-dependent branch (or a probe, or a dropout layer added) does."""

    def training_step(self, batch, batch_idx):
        if self.hparams.lr > 0.01:
            torch.rand(3)
        return super().training_step(batch, batch_idx)


class Order(pl.Callback):
    def __init__(self):
        self.seen = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.append(batch[0][:, 0].tolist())


def _order(lr: float, guards: list) -> list:
    from torch.utils.data import DataLoader, TensorDataset

    pl.seed_everything(0, verbose=False)
    data = DataLoader(TensorDataset(torch.randn(64, 3), torch.randn(64)), batch_size=16,
                      shuffle=True)
    order = Order()
    quiet_trainer(callbacks=[*guards, order], max_epochs=3).fit(
        DrawsWhenFast(nn.Linear(3, 1), lr=lr), data)
    return order.seen


def test_batch_order_does_not_depend_on_a_hyperparameter():
    guarded = [_order(lr, [DeterminismGuard(verify_steps=0)]) for lr in (0.001, 0.1)]
    assert guarded[0] == guarded[1]
    plain = [_order(lr, []) for lr in (0.001, 0.1)]
    assert plain[0][:4] == plain[1][:4] and plain[0] != plain[1]  # the fault it prevents

