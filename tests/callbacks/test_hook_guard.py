"""The base class's hook guard: a guardrail's own failure never breaks the user's training."""

from __future__ import annotations

import pytest
import torch

from conftest import quiet_trainer
from guardrail import GuardrailModule
from guardrail.callbacks import GradientProbe, LossProbe
from guardrail.errors import ConfigError


class BrokenProbe(GradientProbe):
    """A gradient probe with a bug in one of its hooks."""

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        raise KeyError("layer-that-is-not-there")


def test_an_internal_error_becomes_a_skipped_info_and_training_goes_on(tiny_data):
    probe = BrokenProbe(every_n_steps=1)
    module = GuardrailModule(torch.nn.Linear(3, 1))
    before = module.net.weight.detach().clone()
    with pytest.warns(UserWarning, match="BrokenProbe failed in on_before_optimizer_step"):
        quiet_trainer(callbacks=[probe], max_steps=4).fit(module, datamodule=tiny_data())
    assert [(f.check, f.where, f.severity.value) for f in probe.findings] == [
        ("grad.skipped", "on_before_optimizer_step", "info")]
    assert "KeyError" in probe.findings[0].message and probe.broken
    assert not torch.equal(before, module.net.weight)  # all four steps trained


def test_a_healthy_probe_is_not_skipped(tiny_data):
    probe = GradientProbe(every_n_steps=1)
    quiet_trainer(callbacks=[probe], max_steps=4).fit(GuardrailModule(torch.nn.Linear(3, 1)),
                                                       datamodule=tiny_data())
    assert not probe.broken and [f.check for f in probe.findings] == []


def test_a_guardrail_error_is_deliberate_and_passes_through(tiny_data):
    class Misconfigured(LossProbe):
        def on_train_start(self, trainer, pl_module):
            raise ConfigError("LossProbe: a deliberate configuration error.")

    with pytest.raises(ConfigError, match="deliberate"):
        quiet_trainer(callbacks=[Misconfigured()], max_steps=2).fit(
            GuardrailModule(torch.nn.Linear(3, 1)), datamodule=tiny_data())
