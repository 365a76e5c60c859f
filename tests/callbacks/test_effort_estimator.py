"""EffortEstimator: forecasts during training, effort.futile's pair, strict stops, resume."""

from __future__ import annotations

import json
import math

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from guardrail.callbacks import EffortEstimator
from guardrail.errors import ConfigError
from guardrail.report.sections import effort_section


class Scheduled(pl.LightningModule):
    """Trains a tiny layer; its 'validation AP' follows a known learning curve by epoch."""

    def __init__(self, curve=lambda x: 0.6 - 0.3 / x, key="val/ap"):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.curve, self.key = curve, key

    def training_step(self, batch, i):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, i):
        self.log(self.key, float(self.curve(self.current_epoch + 1.0)))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _data():
    return DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)


def _fit(cb, module=None, epochs=20, val=True, **kw):
    trainer = pl.Trainer(callbacks=[cb], max_epochs=epochs, logger=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, num_sanity_val_steps=0,
                         limit_train_batches=1, limit_val_batches=1, **kw)
    trainer.fit(module or Scheduled(), _data(), _data() if val else None)
    return trainer


def _checks(cb):
    return [f.check for f in cb.findings]


def test_unreachable_target_fires_futile_at_the_metric(tmp_path):
    cb = EffortEstimator(target={"metric": "val/ap", "value": 0.95}, dirpath=tmp_path)
    trainer = _fit(cb)
    futile = [f for f in cb.findings if f.check == "effort.futile"]
    assert len(futile) == 1 and futile[0].where == "val/ap"
    assert futile[0].severity == "warning" and "0.95" in futile[0].message
    assert trainer.current_epoch == 20  # record: the run goes on
    assert "saved" not in futile[0].message


def test_reachable_target_stays_silent(tmp_path):
    cb = EffortEstimator(target={"metric": "val/ap", "value": 0.57}, dirpath=tmp_path)
    _fit(cb)
    assert "effort.futile" not in _checks(cb)
    forecast = [f for f in cb.findings if f.check == "effort.forecast"]
    assert len(forecast) == 1 and "will reach 0.57" in forecast[0].message  # the latest only


def test_strict_stops_a_futile_run_and_says_what_it_saved(tmp_path):
    cb = EffortEstimator(policy="strict", target={"metric": "val/ap", "value": 0.95},
                         dirpath=tmp_path)
    trainer = _fit(cb, epochs=40)
    futile = next(f for f in cb.findings if f.check == "effort.futile")
    assert trainer.current_epoch < 39
    stopped = futile.evidence["stopped_epoch"]
    assert futile.evidence["saved_epochs"] == 40 - stopped
    assert f"Stopped after epoch {stopped} of 40" in futile.message and "saved" in futile.message


def test_effort_json_feeds_the_report_section(tmp_path):
    cb = EffortEstimator(dirpath=tmp_path)
    _fit(cb, epochs=8)
    effort = json.loads((tmp_path / "effort.json").read_text())
    assert effort["key"] == "val/ap" and len(effort["values"]) == 8
    assert effort["final"]["0.5"] is not None and effort["members"]
    html = effort_section(effort)
    assert effort["sentence"] in html.replace("&#x27;", "'") and "<svg" in html


def test_no_validation_loop_single_epoch_and_nan_never_raise(tmp_path):
    cb = EffortEstimator(dirpath=tmp_path)
    _fit(cb, epochs=2, val=False)
    assert cb.findings == []
    one = EffortEstimator(dirpath=tmp_path)
    _fit(one, epochs=1)
    assert _checks(one) == ["effort.thin_evidence"]
    nan = EffortEstimator(dirpath=tmp_path)
    _fit(nan, Scheduled(curve=lambda x: math.nan), epochs=5)
    assert _checks(nan) == ["effort.thin_evidence"] and not nan.broken


def test_a_monitor_never_logged_is_a_config_error_listing_the_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"monitor='val/auroc'.*it logged: val/ap"):
        _fit(EffortEstimator(monitor="val/auroc", dirpath=tmp_path), epochs=2)
    with pytest.raises(ConfigError, match=r"target=.*must be None or"):
        EffortEstimator(target={"metric": "val/ap", "value": "high"})


def test_the_default_key_is_the_validation_loss(tmp_path):
    cb = EffortEstimator(dirpath=tmp_path)
    _fit(cb, Scheduled(curve=lambda x: 0.2 + 1 / x, key="val_loss"), epochs=6)
    assert cb.key == "val_loss" and cb.forecast.higher_is_better is False


def test_resume_restores_the_curve(tmp_path):
    cb = EffortEstimator(dirpath=tmp_path)
    _fit(cb, epochs=6)
    state = cb.state_dict()
    fresh = EffortEstimator(dirpath=tmp_path)
    fresh.load_state_dict(state)
    assert fresh.values == cb.values and fresh.epochs == cb.epochs and fresh.key == "val/ap"
    assert fresh.seconds == cb.seconds
