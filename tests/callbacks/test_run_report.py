import json

import pytest
from lightning.pytorch import Callback
from lightning.pytorch.demos.boring_classes import BoringModel

from conftest import quiet_trainer
from guardrail.callbacks import RunReport


def read(d):
    report = json.loads((d / "report.json").read_text())
    findings = [json.loads(line) for line in (d / "findings.jsonl").read_text().splitlines()]
    return report, findings


def test_completed_run_has_metrics_history_and_html(tmp_path, tiny_data):
    from test_baseline_check import Linear

    trainer = quiet_trainer(callbacks=[RunReport(tmp_path, run_info={"recipe": "tiny"})],
                            max_epochs=2)
    module, data = Linear(), tiny_data({"mean": {"rmse": 9.0}})
    trainer.fit(module, datamodule=data)
    trainer.test(module, datamodule=data, verbose=False)
    report, findings = read(tmp_path)
    assert report["status"] == "completed" and report["recipe"] == "tiny"
    assert set(report["metrics"]) == {"train", "val", "test"}
    assert {"rmse", "mae", "loss"} <= set(report["metrics"]["test"])
    assert report["baselines"] == {"mean": {"rmse": 9.0}}
    assert [row["epoch"] for row in report["history"]] == [0, 1]
    assert "val/loss" in report["history"][0]
    assert findings == []
    assert "<svg" in (tmp_path / "report.html").read_text()


class Boom(Callback):
    def __init__(self, exc):
        self.exc = exc

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == 2:
            raise self.exc


def test_failed_run_leaves_a_valid_report_saying_so(tmp_path):
    trainer = quiet_trainer(callbacks=[RunReport(tmp_path), Boom(RuntimeError("disk on fire"))])
    with pytest.raises(RuntimeError, match="disk on fire"):
        trainer.fit(BoringModel())
    report, _ = read(tmp_path)
    assert report["status"] == "failed"
    assert report["error"] == "RuntimeError: disk on fire"
    assert report["finished_at"]


def test_interrupted_run_is_marked_interrupted(tmp_path):
    trainer = quiet_trainer(callbacks=[RunReport(tmp_path), Boom(KeyboardInterrupt())])
    with pytest.raises(SystemExit):  # Lightning turns Ctrl-C into a graceful exit(1)
        trainer.fit(BoringModel())
    report, _ = read(tmp_path)
    assert report["status"] == "interrupted" and report["error"] is None


def test_report_records_the_baselines_roles_and_a_bad_role_does_not_break_it(tmp_path):
    from test_baseline_check import Linear, RolesData

    data = RolesData({"mean": {"rmse": 9.0}, "ridge": {"rmse": 1e-9}}, {"ridge": "reference"})
    trainer = quiet_trainer(callbacks=[RunReport(tmp_path)], max_epochs=1)
    trainer.fit(Linear(), datamodule=data)
    trainer.test(trainer.lightning_module, datamodule=data, verbose=False)
    report, _ = read(tmp_path)
    assert report["baseline_roles"] == {"mean": "trivial", "ridge": "reference"}
    assert "reference model: ridge (test)" in (tmp_path / "report.html").read_text()
    data.roles = {"ridge": "simple"}  # BaselineCheck refuses it; the report just omits roles
    RunReport(tmp_path).write(trainer, "completed")
    assert read(tmp_path)[0]["baseline_roles"] == {"mean": "trivial", "ridge": "trivial"}
