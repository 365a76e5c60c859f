import pytest
from torch import nn

from conftest import quiet_trainer
from guardrail import GuardrailError, GuardrailModule
from guardrail.callbacks import BaselineCheck


class Linear(GuardrailModule):
    task = "regression"

    def __init__(self):
        super().__init__(net=nn.Linear(3, 1), lr=0.1)


def fit_and_test(cb, data):
    trainer = quiet_trainer(callbacks=[cb], max_epochs=15)
    module = Linear()
    trainer.fit(module, datamodule=data)
    trainer.test(module, datamodule=data, verbose=False)
    return trainer


def test_fires_on_a_baseline_the_model_cannot_beat(tiny_data):
    cb = BaselineCheck()
    fit_and_test(cb, tiny_data({"oracle": {"rmse": 1e-9}}))
    assert [(f.check, f.where) for f in cb.findings] == [("baseline.not_beaten", "test/rmse")]


def test_silent_when_the_model_beats_the_baseline(tiny_data):
    cb = BaselineCheck()
    fit_and_test(cb, tiny_data({"mean": {"rmse": 2.3, "mae": 1.8}}))
    assert cb.findings == []


def test_strict_policy_stops_with_a_guardrail_error(tiny_data):
    with pytest.raises(GuardrailError, match=r"\[baseline.not_beaten\] at test/rmse"):
        fit_and_test(BaselineCheck(policy="strict"), tiny_data({"oracle": {"rmse": 1e-9}}))


def test_bad_policy_names_the_options():
    with pytest.raises(ValueError, match="policy='loud' is not one of record, strict"):
        BaselineCheck(policy="loud")
