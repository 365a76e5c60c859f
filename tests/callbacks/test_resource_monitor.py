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
                                          r"host_capacity_mb=-1 must be > 0 or null"):
        ResourceMonitor(every_n_steps=0, host_capacity_mb=-1)
    with pytest.raises(ConfigError, match=r"input_bound_min_steps=0 must be in \[1, inf\); "
                                          r"memory_fraction=1.5 must be in \(0, 1\]"):
        ResourceMonitor(thresholds={"memory_fraction": 1.5, "input_bound_min_steps": 0})


def fake_cuda(monkeypatch, synced, step):
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(step[0]))
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda device=None: 3 * 2**30)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2**30, 4 * 2**30))
    monkeypatch.setattr(torch.cuda, "utilization", lambda device=None: 80.0)


@pytest.mark.parametrize(("memory_fraction", "fires"), [(0.7, True), (0.9, False)])
def test_gpu_memory_near_capacity_names_the_device(monkeypatch, memory_fraction, fires):
    from types import SimpleNamespace

    fake_cuda(monkeypatch, [], [0])
    monitor = ResourceMonitor(every_n_steps=1, thresholds={"memory_fraction": memory_fraction})
    monitor._cuda = torch.device("cuda", 0)
    trainer = SimpleNamespace(global_step=1, current_epoch=0, global_rank=0,
                              is_global_zero=True, loggers=[], train_dataloader=None)
    module = SimpleNamespace(device=torch.device("cuda", 0))
    monitor.on_train_batch_end(trainer, module, None, (torch.zeros(8, 4),), 0)
    monitor.on_train_epoch_end(trainer, module)
    pressure = [f for f in monitor.findings if f.check == "resources.memory_pressure"]
    assert [f.where for f in pressure] == (["cuda:0"] if fires else [])
    assert monitor.summary()["device_mem_peak_mb"] == 3 * 1024
    assert monitor.summary()["gpu_util_percent"] == 80.0


def test_on_a_gpu_only_every_nth_step_is_timed_and_synchronised(monkeypatch):
    """The schedule, with CUDA's calls replaced: a timed step needs both of its ends synced."""
    synced, step = [], [0]
    fake_cuda(monkeypatch, synced, step)
    monitor = ResourceMonitor(every_n_steps=4)
    monitor._cuda = torch.device("cuda", 0)
    monitor.on_train_epoch_start(None, None)
    batch = (torch.zeros(16, 4), torch.zeros(16))
    for k in range(12):
        step[0] = k
        monitor.on_train_batch_start(None, None, batch, k)
        monitor.on_train_batch_end(None, None, None, batch, k)
    assert synced == [0, 3, 4, 7, 8, 11]  # not every step
    assert monitor.timing.steps == 2 and monitor.timing.samples == 32  # steps 4 and 8
    assert monitor.memory["device_peak"] == 3 * 2**30
    assert monitor.memory["device_used"] == 3 * 2**30 and monitor._util == [80.0] * 3


def test_memory_that_cannot_be_read_never_stops_training(monkeypatch):
    import guardrail.callbacks.resource_monitor as rm

    def broken():
        raise ValueError("unexpected /proc layout")

    monkeypatch.setattr(rm.Path, "read_text", lambda self, *a, **k: "MemTotal: ???")
    monkeypatch.setattr(rm, "_peak_rss", broken)
    monitor = ResourceMonitor(every_n_steps=1)
    with pytest.warns(UserWarning, match="could not read memory: unexpected /proc layout"):
        trainer = fit(monitor, DataLoader(TensorDataset(torch.randn(32, 4), torch.randn(32)), 8))
    assert trainer.global_step == 4 and monitor.summary()["steps_measured"] == 4
    assert [f.check for f in monitor.findings] == ["resources.skipped"]  # host memory: not read


def test_a_run_that_only_tests_has_no_resources_to_report(tmp_path):
    monitor = ResourceMonitor()
    trainer = quiet_trainer(callbacks=[monitor, RunReport(tmp_path, html=False)])
    data = DataLoader(TensorDataset(torch.randn(32, 4), torch.randn(32)), 8)
    trainer.test(GuardrailModule(torch.nn.Linear(4, 1)), data, verbose=False)
    assert monitor.summary() == {}
    assert json.loads((tmp_path / "report.json").read_text())["resources"] is None


@pytest.mark.parametrize(("load", "fires"), [(4.5, True), (1.2, False)])
def test_cpu_contention_is_judged_on_the_host_load(monkeypatch, load, fires, tiny_data):
    import os

    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monitor = ResourceMonitor()
    quiet_trainer(callbacks=[monitor], max_epochs=2).fit(
        GuardrailModule(torch.nn.Linear(3, 1)), datamodule=tiny_data())
    contention = [(f.check, f.where) for f in monitor.findings
                  if f.check == "resources.cpu_contention"]
    assert contention == ([("resources.cpu_contention", "host")] if fires else [])
    assert monitor.summary()["cpu_load_1min"] == load
