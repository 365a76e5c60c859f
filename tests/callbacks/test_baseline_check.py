import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from conftest import TinyData, quiet_trainer
from guardrail import GuardrailError, GuardrailModule
from guardrail.callbacks import BaselineCheck
from guardrail.errors import ConfigError


class Linear(GuardrailModule):
    task = "regression"

    def __init__(self):
        super().__init__(net=nn.Linear(3, 1), lr=0.1)


class RolesData(TinyData):
    """TinyData whose baselines have roles (``baseline_roles()``)."""

    def __init__(self, baselines, roles):
        super().__init__(baselines)
        self.roles = roles

    def baseline_roles(self):
        return self.roles


def fit_and_test(cb, data, **kwargs):
    trainer = quiet_trainer(callbacks=[cb], max_epochs=15, **kwargs)
    module = Linear()
    trainer.fit(module, datamodule=data)
    trainer.test(module, datamodule=data, verbose=False)
    return trainer


def problems(cb):
    return [(f.check, f.where) for f in cb.findings if f.severity.value != "info"]


def test_fires_on_a_baseline_the_model_cannot_beat(tiny_data):
    cb = BaselineCheck()
    fit_and_test(cb, tiny_data({"oracle": {"rmse": 1e-9}}))
    assert problems(cb) == [("baseline.not_beaten", "test/rmse")]


def test_silent_when_the_model_beats_the_baseline(tiny_data):
    cb = BaselineCheck()
    fit_and_test(cb, tiny_data({"mean": {"rmse": 2.3, "mae": 1.8}}))
    assert [f.check for f in cb.findings] == ["baseline.compared"]


def test_a_reference_model_as_good_is_a_warning_naming_it():
    cb = BaselineCheck()
    data = RolesData({"mean": {"rmse": 2.3}, "ridge": {"rmse": 1e-9}}, {"ridge": "reference"})
    fit_and_test(cb, data)
    assert problems(cb) == [("baseline.simpler_model_suffices", "test/rmse")]
    assert cb.findings[0].severity.value == "warning" and "ridge" in cb.findings[0].message


def test_a_reference_model_clearly_beaten_is_silent():
    cb = BaselineCheck(thresholds={"reference_margin": 0.1})
    fit_and_test(cb, RolesData({"ridge": {"rmse": 2.3}}, {"ridge": "reference"}))
    assert problems(cb) == []


def test_a_bad_role_is_refused_before_training():
    data = RolesData({"ridge": {"rmse": 2.3}}, {"ridge": "simple"})
    with pytest.raises(ConfigError, match=r"role 'simple'; a role is one of trivial, reference"):
        quiet_trainer(callbacks=[BaselineCheck()]).fit(Linear(), datamodule=data)


def test_strict_policy_stops_with_a_guardrail_error(tiny_data):
    with pytest.raises(GuardrailError, match=r"\[baseline.not_beaten\] at test/rmse"):
        fit_and_test(BaselineCheck(policy="strict"), tiny_data({"oracle": {"rmse": 1e-9}}))


def test_bad_policy_names_the_options():
    with pytest.raises(ValueError, match="policy='loud' is not one of record, strict"):
        BaselineCheck(policy="loud")


def test_bad_stage_names_the_options_and_the_override():
    with pytest.raises(ConfigError, match=r"stage='train' is not one of test, val.*"
                                          r"guardrails\.callbacks\.baseline_check\.stage=val"):
        BaselineCheck(stage="train")


def test_val_stage_keeps_the_latest_verdict_not_one_per_epoch(tiny_data):
    cb = BaselineCheck(stage="val")
    quiet_trainer(callbacks=[cb], max_epochs=4).fit(Linear(), datamodule=tiny_data(
        {"oracle": {"rmse": 1e-9}}))
    assert problems(cb) == [("baseline.not_beaten", "val/rmse")]
    assert cb.findings[0].epoch == 3  # the last validation's


def test_val_stage_under_strict_judges_at_the_end_of_fit(tiny_data):
    # the untrained model loses to the mean at epoch 0; by the end it beats it
    data = tiny_data({"mean": {"rmse": 0.5}})
    cb = BaselineCheck(stage="val", policy="strict")
    quiet_trainer(callbacks=[cb], max_epochs=15).fit(Linear(), datamodule=data)
    assert problems(cb) == []
    with pytest.raises(GuardrailError, match=r"\[baseline.not_beaten\] at val/rmse"):
        quiet_trainer(callbacks=[BaselineCheck(stage="val", policy="strict")],
                      max_epochs=2).fit(Linear(), datamodule=tiny_data({"oracle": {"rmse": 1e-9}}))


def test_testing_twice_does_not_repeat_findings(tiny_data):
    cb = BaselineCheck()
    trainer = fit_and_test(cb, tiny_data({"oracle": {"rmse": 1e-9}}))
    trainer.test(trainer.lightning_module, datamodule=trainer.datamodule, verbose=False)
    assert problems(cb) == [("baseline.not_beaten", "test/rmse")]


def test_two_instances_train_checkpoint_and_resume(tiny_data, tmp_path):
    data = tiny_data({"oracle": {"rmse": 1e-9}})

    def trainer(epochs):
        checks = [BaselineCheck(stage="val"), BaselineCheck(stage="test")]
        saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
        return checks, quiet_trainer(callbacks=[*checks, saver], max_epochs=epochs,
                                     enable_checkpointing=True)

    (val, test), first = trainer(2)
    first.fit(Linear(), datamodule=data)
    assert val.state_key != test.state_key
    states = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)["callbacks"]
    assert [f["where"] for f in states[val.state_key]["findings"]] == ["val/rmse", "val"]
    assert states[test.state_key]["findings"] == []

    (val, test), resumed = trainer(4)
    resumed.fit(Linear(), datamodule=data, ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    resumed.test(resumed.lightning_module, datamodule=data, verbose=False)
    assert problems(val) == [("baseline.not_beaten", "val/rmse")]
    assert val.findings[0].epoch == 3  # replaced by the resumed run's last validation
    assert problems(test) == [("baseline.not_beaten", "test/rmse")]
