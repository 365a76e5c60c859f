"""What a run shows when its output goes to a file: progress lines and named findings."""

from __future__ import annotations

import json
import os
import subprocess
import sys

QUICK = ["trainer.max_epochs=2", "trainer.limit_train_batches=4", "trainer.limit_val_batches=2",
         "trainer.limit_test_batches=2"]


def test_a_redirected_run_prints_progress_and_names_each_error_and_warning(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run(  # stdout is a pipe, not a terminal, as in CI or `> log.txt`
        [sys.executable, "-m", "guardrail.train", "recipe=est", f"hydra.run.dir={run_dir}",
         *QUICK], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"})  # threads: auto
    assert proc.returncode == 0, proc.stderr[-3000:]
    progress = [line for line in proc.stdout.splitlines() if " step " in line and "epoch " in line]
    assert [line.split("epoch ")[1].split(" loss")[0] for line in progress] == [
        "1/2 step 4/8", "2/2 step 8/8"]
    assert all("samples/s" in line for line in progress)
    assert "epoch 2/2 step 8/8" in (run_dir / "train.log").read_text()
    assert "torch threads: " in proc.stdout  # chosen from the usable cores and the load
    threads = json.loads((run_dir / "report.json").read_text())["torch_threads"]
    assert threads["threads"] >= 1 and threads["why"].startswith("auto")
    findings = [json.loads(line) for line in (run_dir / "findings.jsonl").read_text().splitlines()]
    named = [f for f in findings if f["severity"] in ("error", "warning")]
    assert named, "EST's reference model (ridge) gives at least one warning on a short run"
    for f in named:
        where = f" at {f['where']}" if f["where"] else ""
        assert f"  {f['severity']} {f['check']}{where}: " in proc.stdout


def test_sigterm_leaves_an_interrupted_run_a_checkpoint_and_status_143(tmp_path):
    """What SLURM preemption, Kubernetes and CI timeouts send: not a success, not a crash."""
    import signal
    import time

    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardrail.train", "recipe=est", f"hydra.run.dir={run_dir}",
         "trainer.max_epochs=200"], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 240
        for line in proc.stdout:  # wait for training to be under way
            if "epoch 2/200" in line or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err[-3000:]
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "interrupted" and report["error"].startswith("SIGTERM at step")
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert f"resume={run_dir}" in err
