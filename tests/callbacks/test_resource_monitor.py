"""ResourceMonitor on tiny CPU runs: a slow loader against an in-memory one, memory limits."""

import json
import sys
import time

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from conftest import quiet_trainer
from guardrail import GuardrailModule
from guardrail.callbacks import ResourceMonitor, RunReport
from guardrail.errors import ConfigError


class SlowDataset(Dataset):
    """Every sample costs 5 ms, like decoding an image from disk."""

    def __len__(self):
        return 96

    def __getitem__(self, i):
        time.sleep(0.005)
        return torch.randn(4), torch.randn(())


def fit(monitor, loader, **trainer_kwargs):
    torch.manual_seed(0)
    trainer = quiet_trainer(callbacks=[monitor], **trainer_kwargs)
    trainer.fit(GuardrailModule(torch.nn.Linear(4, 1)), loader)
    return trainer


def checks(monitor):
    return [(f.check, f.where) for f in monitor.findings]


def test_slow_dataset_is_input_bound_on_the_train_dataloader():
    monitor = ResourceMonitor()
    fit(monitor, DataLoader(SlowDataset(), batch_size=8))
    assert ("resources.input_bound", "train_dataloader") in checks(monitor)
    (finding,) = [f for f in monitor.findings if f.check == "resources.input_bound"]
    assert finding.evidence["num_workers"] == 0 and finding.evidence["steps_measured"] == 12
    assert monitor.summary()["data_wait_fraction"] > 0.5


def test_in_memory_dataset_is_not_input_bound():
    x, y = torch.randn(96, 4), torch.randn(96)
    monitor = ResourceMonitor()
    fit(monitor, DataLoader(TensorDataset(x, y), batch_size=8))
    assert "resources.input_bound" not in [c for c, _ in checks(monitor)]
    summary = monitor.summary()
    assert summary["steps_measured"] == 12 and summary["samples_per_s"] > 0
    assert summary["data_wait_fraction"] < 0.5


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="host memory is read on Linux")
@pytest.mark.parametrize(("capacity_mb", "fires"), [(1.0, True), (1e9, False)])
def test_memory_pressure_fires_only_near_the_host_capacity(capacity_mb, fires):
    x, y = torch.randn(32, 4), torch.randn(32)
    monitor = ResourceMonitor(host_capacity_mb=capacity_mb)
    fit(monitor, DataLoader(TensorDataset(x, y), batch_size=8))
    assert (("resources.memory_pressure", "host") in checks(monitor)) is fires
    assert monitor.summary()["host_rss_peak_mb"] > 10


def test_figures_reach_the_logger_and_report_json(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    x, y = torch.randn(32, 4), torch.randn(32)
    monitor = ResourceMonitor()
    trainer = quiet_trainer(callbacks=[monitor, RunReport(tmp_path, html=False)],
                            logger=CSVLogger(tmp_path, name="m"), max_epochs=2)
    trainer.fit(GuardrailModule(torch.nn.Linear(4, 1)), DataLoader(TensorDataset(x, y), 8))
    header = next((tmp_path / "m").rglob("metrics.csv")).read_text().splitlines()[0]
    for key in ("samples_per_s", "step_s", "data_wait_s", "compute_s", "data_wait_fraction",
                "host_rss_peak_mb"):
        assert f"guardrail/{key}" in header
    resources = json.loads((tmp_path / "report.json").read_text())["resources"]
    assert resources["world_size"] == 1 and resources["steps_measured"] == 8
    assert resources["device"] == "cpu" and resources["samples_per_s"] > 0


def test_bad_arguments_are_named_together():
    with pytest.raises(ConfigError, match=r"every_n_steps=0 must be >= 1; "
                                          r"memory_fraction=1.5 must be in \(0, 1\]"):
        ResourceMonitor(every_n_steps=0, memory_fraction=1.5)
