"""Resource rules on numbers: each detector fires on its faulty case, silent on the healthy."""

import pytest

from guardrail.checks.resources import (
    MB,
    StepTiming,
    input_bound_findings,
    memory_findings,
    slowest,
    summarise,
)


def timing(wait_s, compute_s, steps=10, samples=32):
    t = StepTiming()
    for _ in range(steps):
        t.add(wait_s, compute_s, samples)
    return t


def test_input_bound_fires_when_waiting_dominates_and_names_the_loader():
    (finding,) = input_bound_findings(timing(0.03, 0.01), "train_dataloader", num_workers=0)
    assert finding.check == "resources.input_bound" and finding.severity == "warning"
    assert finding.where == "train_dataloader"
    assert "75%" in finding.message and "num_workers=0" in finding.message
    assert "data.num_workers" in finding.hint
    assert finding.evidence["data_wait_fraction"] == pytest.approx(0.75)


def test_input_bound_is_silent_when_compute_dominates():
    assert input_bound_findings(timing(0.01, 0.03), "train_dataloader", num_workers=0) == []


def test_input_bound_waits_for_enough_steps():
    assert input_bound_findings(timing(0.03, 0.01, steps=3)) == []
    assert input_bound_findings(timing(0.03, 0.01, steps=8))


def test_input_bound_hint_asks_for_more_workers_than_there_are():
    (finding,) = input_bound_findings(timing(0.03, 0.01), num_workers=4, rank=1)
    assert "more than 4 workers" in finding.hint and "on rank 1" in finding.message


def test_memory_pressure_fires_near_capacity_and_not_below():
    (finding,) = memory_findings(used=7.5e9, capacity=8e9, where="cuda:0", own=7e9)
    assert finding.check == "resources.memory_pressure" and finding.where == "cuda:0"
    assert "94%" in finding.message and "fsdp" in finding.hint
    assert finding.evidence["own_peak_mb"] == pytest.approx(7e9 / MB)
    assert memory_findings(used=6e9, capacity=8e9, where="cuda:0") == []
    (host,) = memory_findings(used=7.5e9, capacity=8e9, where="host")
    assert "num_workers" in host.hint


def test_slowest_rank_decides_and_summary_adds_throughput():
    ranks = [{"timing": {"steps": 10, "samples": 100, "wait_s": 0.1, "compute_s": 0.9},
              "rss_peak": 100 * MB, "host_used": 4e9, "host_capacity": 8e9},
             {"timing": {"steps": 10, "samples": 100, "wait_s": 0.8, "compute_s": 0.2},
              "rss_peak": 300 * MB, "host_used": 5e9, "host_capacity": 8e9}]
    assert slowest([r["timing"] for r in ranks])[0] == 1
    s = summarise(ranks)
    assert s["world_size"] == 2 and s["slowest_rank"] == 1
    assert s["samples_per_s"] == pytest.approx(200.0)
    assert s["data_wait_fraction"] == pytest.approx(0.8)
    assert s["host_rss_peak_mb"] == pytest.approx(300.0)
    assert s["host_used_mb"] == pytest.approx(5e9 / MB)
    assert s["device_mem_peak_mb"] is None and s["gpu_util_percent"] is None
    assert [r["rank"] for r in s["per_rank"]] == [0, 1]


def test_empty_timing_is_zero_not_an_error():
    t = StepTiming()
    assert (t.step_s, t.wait_fraction, t.samples_per_s) == (0.0, 0.0, 0.0)
    assert summarise([{"timing": {}}])["steps_measured"] == 0


def test_summary_names_the_rank_whose_device_is_fullest():
    ranks = [{"timing": {}, "device_used": 30e9, "device_capacity": 80e9, "device_peak": 29e9},
             {"timing": {}, "device_used": 70e9, "device_capacity": 80e9, "device_peak": 69e9}]
    s = summarise(ranks)
    assert s["device_fullest_rank"] == 1
    assert s["device_used_mb"] == pytest.approx(70e9 / MB)
    assert s["device_mem_peak_mb"] == pytest.approx(69e9 / MB)
    assert summarise([{"timing": {}}])["device_fullest_rank"] is None
