import lightning.pytorch as pl
import pytest
import torch
import yaml
from torch.utils.data import DataLoader, TensorDataset

from conftest import quiet_trainer
from guardrail import GuardrailError
from guardrail.callbacks import ConfigLock
from guardrail.callbacks.base import collect_findings


class Data(pl.LightningDataModule):
    """A datamodule whose train loader shuffles according to a code default."""

    SHUFFLE = False

    def __init__(self, batch_size: int = 8):
        super().__init__()
        self.save_hyperparameters()
        self.ds = TensorDataset(torch.randn(32, 3), torch.randn(32))

    def train_dataloader(self):
        return DataLoader(self.ds, batch_size=self.hparams.batch_size, shuffle=self.SHUFFLE)

    def val_dataloader(self):
        return DataLoader(self.ds, batch_size=8)


def fit(lock, data=None):
    from test_baseline_check import Linear

    trainer = quiet_trainer(callbacks=[lock], max_steps=1, limit_val_batches=1)
    trainer.fit(Linear(), datamodule=data or Data())
    return trainer


def test_first_run_writes_a_readable_lock(tmp_path):
    lock = ConfigLock(lock_dir=tmp_path, name="demo")
    fit(lock)
    assert [f.check for f in lock.findings] == ["config.lock_created"]
    written = yaml.safe_load((tmp_path / "demo.lock.yaml").read_text())
    assert written["effective"]["train_dataloader.sampler"] == "SequentialSampler"
    assert written["effective"]["optimizer.class"] == "torch.optim.adamw.AdamW"
    assert written["effective"]["data_hparams.batch_size"] == 8


def test_a_first_run_with_overrides_writes_no_lock_but_says_how(tmp_path):
    """The overrides' settings are an experiment's: a lock from them would refuse the
    recipe's own next run. An override no locked setting sees writes the lock as usual."""
    lock = ConfigLock(lock_dir=tmp_path, name="demo")
    lock.overrides = ["data.batch_size=4", "trainer.enable_progress_bar=false"]
    fit(lock, Data(batch_size=4))
    assert [f.check for f in lock.findings] == ["config.lock_missing"]
    assert "data.batch_size=4" in lock.findings[0].message
    assert "Run once without these overrides" in lock.findings[0].hint  # no recipe to approve
    assert not (tmp_path / "demo.lock.yaml").exists()
    harmless = ConfigLock(lock_dir=tmp_path, name="demo")
    harmless.overrides = ["trainer.enable_progress_bar=false"]
    fit(harmless)
    assert [f.check for f in harmless.findings] == ["config.lock_created"]


def test_unchanged_run_is_silent(tmp_path):
    fit(ConfigLock(lock_dir=tmp_path, name="demo"))
    lock = ConfigLock(lock_dir=tmp_path, name="demo")
    fit(lock)
    assert lock.findings == []


def test_changed_code_default_is_refused_through_the_effective_settings(tmp_path, monkeypatch):
    fit(ConfigLock(lock_dir=tmp_path, name="demo"))
    monkeypatch.setattr(Data, "SHUFFLE", True)  # a refactor flips a Python default
    with pytest.raises(GuardrailError) as err:
        fit(ConfigLock(lock_dir=tmp_path, name="demo"))
    message = str(err.value)
    assert "train_dataloader.sampler: SequentialSampler → RandomSampler" in message
    assert "train_dataloader.shuffle: false → true" in message
    assert "rm " in message  # outside a Hydra app, approval is deleting the lock
    assert f"Lock file: {tmp_path / 'demo.lock.yaml'}" in message


def test_warn_mode_records_a_warning_and_trains_on(tmp_path, monkeypatch):
    fit(ConfigLock(lock_dir=tmp_path, name="demo"))
    monkeypatch.setattr(Data, "SHUFFLE", True)
    lock = ConfigLock(mode="warn", lock_dir=tmp_path, name="demo")
    trainer = fit(lock)
    assert [(f.check, f.severity.value, f.where) for f in collect_findings(trainer)] == [
        ("config.lock", "warning", "train_dataloader.sampler")]
    assert trainer.global_step == 1


def test_resuming_a_checkpoint_of_another_lock_is_refused(tmp_path):
    lock = ConfigLock(lock_dir=tmp_path, name="demo")
    fit(lock)
    state = lock.state_dict()
    state["lock_hash"] = "0" * 32  # trained under some other lock
    resumed = ConfigLock(lock_dir=tmp_path, name="demo")
    resumed.load_state_dict(state)
    with pytest.raises(GuardrailError, match=r"checkpoint\.lock_hash"):
        fit(resumed)


def test_bad_mode_names_the_options():
    with pytest.raises(ValueError, match="mode='loose' is not one of strict, warn, off"):
        ConfigLock(mode="loose")


def test_relative_lock_dir_is_taken_from_the_git_work_tree(tmp_path, monkeypatch):
    (tmp_path / ".git").mkdir()
    (tmp_path / "src" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "src" / "deep")
    lock = ConfigLock(lock_dir="locks", name="demo")
    fit(lock)
    written = tmp_path / "locks" / "demo.lock.yaml"
    assert written.is_file() and not (tmp_path / "src" / "deep" / "locks").exists()
    (finding,) = lock.findings
    assert finding.evidence["lock_file"] == str(written) and str(written) in finding.message


def test_relative_lock_dir_outside_a_git_work_tree_is_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    fit(ConfigLock(lock_dir="locks", name="demo"))
    assert (tmp_path / "here" / "locks" / "demo.lock.yaml").is_file()
