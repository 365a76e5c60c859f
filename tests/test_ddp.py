"""Guardrails under DDP: two CPU ranks (gloo), started as a user starts them, in subprocesses.

Each run takes a few seconds; a hang is caught by the subprocess timeout, and every process
of the run's session must be gone when the launcher returns.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch.distributed as dist

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is needed")

SCRIPT = Path(__file__).with_name("ddp_script.py")
QUICK = ["trainer.max_epochs=1", "trainer.limit_train_batches=4", "trainer.limit_val_batches=2",
         "trainer.limit_test_batches=2", "trainer.enable_progress_bar=false"]
HANG = 120  # seconds: far above a healthy run, far below a DDP collective's default timeout


def launch(args, cwd):
    """Run ``args`` in its own session; return (returncode, stdout, stderr)."""
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        out, err = proc.communicate(timeout=HANG)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the DDP run hung for {HANG} s:\n{err[-3000:]}")
    assert_no_rank_left(proc.pid)
    return proc.returncode, out, err


def assert_no_rank_left(session):
    for _ in range(50):
        try:
            os.killpg(session, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(session, signal.SIGKILL)
    pytest.fail("a rank was still running after the launcher returned")


def findings(run_dir):
    return [json.loads(line) for line in (run_dir / "findings.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("recipe", [
    "est",
    pytest.param("wea", marks=pytest.mark.slow),
    pytest.param("ccf", marks=pytest.mark.slow),
])
def test_recipe_under_ddp_cpu_writes_each_run_file_once(recipe, tmp_path):
    """CCF's baselines use torchmetrics objects, which synchronise under DDP: rank zero must
    not call them alone (it did, and the run hung)."""
    run_dir = tmp_path / "run"
    rc, out, err = launch([sys.executable, "-m", "guardrail.train", f"recipe={recipe}",
                           "trainer=ddp_cpu", f"hydra.run.dir={run_dir}", *QUICK], tmp_path)
    assert rc == 0, err[-3000:]
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "completed" and report["metrics"]["test"]
    assert report["resources"]["world_size"] == 2
    assert report["resources"]["samples_per_s"] > 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    order = manifest["data"]["order"]
    assert order["ranks"] == 2 and order["sampler"]["sampler"] == "DistributedSampler"
    assert (manifest["hardware"]["processes"], manifest["hardware"]["strategy"]) == (
        2, "DDPStrategy")
    checks = {f["check"] for f in findings(run_dir)}
    assert "config.lock_created" in checks and "config.lock" not in checks
    assert [p.name for p in (tmp_path / "locks").iterdir()] == [f"{recipe}.lock.yaml"]
    assert out.count("findings:") == 1  # the summary is printed by rank zero only
    for name in ("report.json", "report.html", "findings.jsonl", "manifest.json",
                 "metrics.csv", "contract.json", "preprocessor.json"):
        assert len(list(tmp_path.rglob(name))) == 1, name
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("*.ckpt")) == [
        "epoch000.ckpt", "last.ckpt"]  # the best and the last (what resume= continues from)
    assert not list(tmp_path.rglob("*.tmp")) and not (tmp_path / "outputs").exists()
    assert not (tmp_path / "lightning_logs").exists()


def test_nan_on_rank_1_alone_is_reported_with_rank_1(tmp_path):
    rc, _, err = launch([sys.executable, str(SCRIPT), "nan", str(tmp_path / "run"), "2"],
                        tmp_path)
    assert rc == 0, err[-3000:]
    nonfinite = [f for f in findings(tmp_path / "run") if f["check"] == "probe.nonfinite"]
    assert {"where": "net.1", "rank": 1, "step": 0} in [
        {k: f[k] for k in ("where", "rank", "step")} for f in nonfinite]


def test_strict_finding_on_rank_1_stops_every_rank_with_it(tmp_path):
    rc, out, err = launch([sys.executable, str(SCRIPT), "nan_strict", str(tmp_path / "run"),
                           "2"], tmp_path)
    assert rc == 3, err[-3000:]
    for rank in (0, 1):
        assert f"rank {rank}: stopped: guardrail stopped training on every rank; rank 1 " \
               "found: [probe.nonfinite] at net.1" in out
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["status"] == "failed" and "probe.nonfinite" in report["error"]
    assert [(f["where"], f["rank"]) for f in findings(tmp_path / "run")] == [("net.1", 1)]


def test_determinism_mismatch_on_rank_1_alone_fails_verification_on_every_rank(tmp_path):
    rc, out, err = launch([sys.executable, str(SCRIPT), "noisy", str(tmp_path / "run"), "2"],
                          tmp_path)
    assert rc == 0, err[-3000:]
    assert out.count("completed verified=[False]") == 2  # the ranks agree on the verdict
    mismatches = [(f["where"], f["rank"]) for f in findings(tmp_path / "run")
                  if f["check"] == "determinism.mismatch"]
    assert mismatches == [("net.1", 1)]


@pytest.mark.parametrize(("scenario", "slow_rank"), [("slow", 1), ("lock_shuffle", None)])
def test_input_bound_is_reported_by_the_slow_rank_alone(scenario, slow_rank, tmp_path):
    rc, _, err = launch([sys.executable, str(SCRIPT), scenario, str(tmp_path / "run"), "2"],
                        tmp_path)
    assert rc == 0, err[-3000:]
    bound = [f for f in findings(tmp_path / "run") if f["check"] == "resources.input_bound"]
    assert [(f["where"], f["rank"]) for f in bound] == (
        [("train_dataloader", slow_rank)] if slow_rank is not None else [])
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["resources"]["world_size"] == 2
    if slow_rank is not None:
        assert f"on rank {slow_rank}" in bound[0]["message"]
        assert report["resources"]["slowest_rank"] == slow_rank


def test_strict_config_lock_refusal_stops_both_ranks(tmp_path):
    approve = subprocess.run([sys.executable, "-m", "guardrail", "approve", "recipe=est",
                              "--lock-dir", "locks"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=HANG)
    assert approve.returncode == 0, approve.stderr[-3000:]
    lock = tmp_path / "locks" / "est.lock.yaml"
    text = lock.read_text()
    assert "  train_dataloader.batch_size: 128\n" in text
    lock.write_text(text.replace("  train_dataloader.batch_size: 128\n",
                                 "  train_dataloader.batch_size: 999\n"))
    run_dir = tmp_path / "run"
    rc, _, err = launch([sys.executable, "-m", "guardrail.train", "recipe=est",
                         "trainer=ddp_cpu", f"hydra.run.dir={run_dir}", *QUICK], tmp_path)
    assert rc == 2
    assert err.count("train_dataloader.batch_size: 999 → 128") == 2  # both ranks refused
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "failed" and "config.lock" in report["error"]
    assert not list(run_dir.rglob("*.ckpt"))  # refused before the first step


@pytest.mark.parametrize(("scenario", "rc", "expected"), [
    ("lock_sequential", 3, {"config.distributed_shuffle", "config.lock"}),
    ("lock_shuffle", 0, {"config.distributed_sampler"}),
])
def test_distributed_sampler_against_a_single_process_lock(scenario, rc, expected, tmp_path):
    """Lightning's DDP sampler shuffles every train loader (#10170): refused where it did not."""
    run_dir = tmp_path / "run"
    single = launch([sys.executable, str(SCRIPT), scenario, str(run_dir), "1"], tmp_path)
    assert single[0] == 0 and "verified=[True]" in single[1], single[2][-3000:]
    code, out, err = launch([sys.executable, str(SCRIPT), scenario, str(run_dir), "2"],
                            tmp_path)
    assert code == rc, err[-3000:]
    checks = {f["check"] for f in findings(run_dir)}
    assert expected <= checks and not ({"config.distributed_shuffle", "config.lock"}
                                       - expected) & checks
    if rc == 0:  # the replay agreed on both ranks; the NaN probe, on too, stayed silent
        assert out.count("completed verified=[True]") == 2
        assert "probe.nonfinite" not in checks


def test_torchrun_launch_as_documented(tmp_path):
    """The multi-node recipe of configs/trainer/ddp.yaml, on one node: torchrun starts both
    ranks, each composes its own Hydra config, and the shared hydra.run.dir gets one report."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run_dir = tmp_path / "run"
    rc, out, err = launch([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2",
                           f"--master-port={port}", "-m", "guardrail.train", "recipe=est",
                           "trainer=ddp_cpu", f"hydra.run.dir={run_dir}", *QUICK], tmp_path)
    assert rc == 0, err[-3000:]
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "completed" and report["resources"]["world_size"] == 2
    assert len(list(tmp_path.rglob("report.json"))) == 1
    assert out.count("findings:") == 1


def test_guardrail_diff_tells_a_single_process_run_from_a_ddp_run():
    from guardrail.rundiff import diff_manifests

    single = {"hardware": {"processes": 1, "nodes": 1, "strategy": "SingleDeviceStrategy"},
              "data": {"order": {"digest": "a", "per_epoch": {"0": "a"}}}}
    ddp = {"hardware": {"processes": 2, "nodes": 1, "strategy": "DDPStrategy"},
           "data": {"order": {"digest": "b", "per_epoch": {"0": "b"}, "ranks": 2}}}
    keys = [(d["category"], d["key"]) for d in diff_manifests(single, ddp)]
    assert keys == [("data", "order"), ("hardware", "processes"), ("hardware", "strategy")]
    assert diff_manifests(ddp, ddp) == []


def test_plain_module_strict_finding_stops_both_ranks_without_a_hang(tmp_path):
    rc, out, err = launch([sys.executable, str(SCRIPT), "plain_strict", str(tmp_path / "run"),
                           "2"], tmp_path)
    assert rc == 3, err[-3000:]
    for rank in (0, 1):
        assert f"rank {rank}: stopped" in out and "loss.double_softmax" in out


def test_plain_manual_module_without_zero_grad_is_caught_on_both_ranks(tmp_path):
    rc, out, err = launch([sys.executable, str(SCRIPT), "plain_manual", str(tmp_path / "run"),
                           "2"], tmp_path)
    assert rc == 0, err[-3000:]
    assert out.count("completed") == 2
    checks = {(f["check"], f["where"]) for f in findings(tmp_path / "run")}
    assert ("grad.not_zeroed", "training_step") in checks


@pytest.mark.slow
def test_a_guardrail_failing_on_one_rank_ends_the_run_on_every_rank(tmp_path):
    """Skipping on rank 1 alone would leave rank 0 waiting in the probe's next collective."""
    rc, out, _ = launch([sys.executable, str(SCRIPT), "broken", str(tmp_path / "run"), "2"],
                          tmp_path)
    assert rc != 0, out
    assert "rank 1: stopped: FailsOnRank1 failed in on_before_optimizer_step: KeyError" in out
    assert "rank 0: stopped:" in out


def test_dp_sgd_under_ddp_accounts_one_budget(tmp_path):
    """Each rank Poisson-samples its shard; the budget is the single-process one (per example)."""
    run_dir = tmp_path / "run"
    rc, _, err = launch([sys.executable, "-m", "guardrail.train", "recipe=ret",
                         "data.source=synthetic", "data.n_users=3000", "trainer=ddp_cpu",
                         "trainer.max_epochs=2", "privacy.dp=true", "privacy.dp_fix_layers=true",
                         "privacy.target_epsilon=4", f"hydra.run.dir={run_dir}"], tmp_path)
    assert rc == 0, err[-3000:]
    dp, = [f for f in findings(run_dir) if f["check"] == "privacy.dp"]
    assert 3.9 <= dp["evidence"]["epsilon"] <= 4.0 and dp["evidence"]["examples"] == 2100
    assert dp["evidence"]["steps"] == 2 * round(1 / dp["evidence"]["sample_rate"])
    report = json.loads((run_dir / "report.json").read_text())
    assert report["resources"]["world_size"] == 2 and report["metrics"]["test"]["auroc"] > 0.6
