import json

from conftest import quiet_trainer
from guardrail.callbacks import RunManifest
from guardrail.rundiff import diff_runs, format_diff, is_identical


def run(tmp_path, name, tiny_data, seed=0, epochs=2):
    import lightning.pytorch as pl
    from test_baseline_check import Linear

    pl.seed_everything(seed, verbose=False)
    out = tmp_path / name
    trainer = quiet_trainer(callbacks=[RunManifest(out)], max_epochs=epochs)
    trainer.fit(Linear(), datamodule=tiny_data())
    return out, json.loads((out / "manifest.json").read_text())


def test_every_manifest_field_is_present_and_typed(tmp_path, tiny_data):
    _, m = run(tmp_path, "a", tiny_data)
    assert m["status"] == "completed" and m["finished_at"]
    hw = m["hardware"]
    assert isinstance(hw["cpu"], str) and hw["cpu_count"] > 0 and isinstance(hw["gpus"], list)
    assert {"cuda", "cudnn", "driver", "gpu_count"} <= set(hw)
    packages = m["platform"]["packages"]
    assert packages["torch"].startswith("2.") and "lightning" in packages
    assert m["source"]["kind"] in ("git", "files")
    assert isinstance(m["configuration"]["hash"], str)
    assert m["configuration"]["effective"]["train_dataloader.batch_size"] == 16
    train = m["data"]["train"]
    assert train["samples"] == 64 and len(train["content"]) == 32 and train["schema"]
    assert set(m["data"]["order"]["per_epoch"]) == {"0", "1"}
    model = m["model"]
    assert model["parameters"] == 4 and isinstance(model["initial_hash"], str)
    assert [t["step"] for t in model["trajectory"]] == [1, 2, 4, 8]
    assert model["final_hash"] != model["initial_hash"]


def test_same_seed_twice_is_bitwise_identical_and_diff_says_so(tmp_path, tiny_data):
    a, ma = run(tmp_path, "a", tiny_data)
    b, mb = run(tmp_path, "b", tiny_data)
    assert ma["model"]["trajectory"] == mb["model"]["trajectory"]
    assert ma["model"]["final_hash"] == mb["model"]["final_hash"]
    differences = diff_runs(a, b)
    assert is_identical(differences), format_diff(differences, str(a), str(b))
    assert format_diff(differences, "A", "B").startswith("The runs are identical")


def test_another_seed_diverges_from_the_initial_weights(tmp_path, tiny_data):
    a, _ = run(tmp_path, "a", tiny_data, seed=0)
    b, _ = run(tmp_path, "b", tiny_data, seed=1)
    keys = [(d["category"], d["key"]) for d in diff_runs(a, b) if not d.get("same")]
    assert ("trajectory", "initial_weights") in keys and ("trajectory", "step 1") in keys


def test_testing_an_earlier_checkpoint_keeps_the_hashes_recorded_since():
    """The best checkpoint's (earlier) state must not cut off the epochs after it: two runs
    whose best epochs differ would otherwise seem to have seen different batches."""
    whole = RunManifest()
    whole.order.per_epoch = {0: "a", 1: "b", 2: "c"}
    whole.trajectory = [{"step": 1, "hash": "h1"}, {"step": 2, "hash": "h2"}]
    best = {"order": {0: "a"}, "trajectory": [{"step": 1, "hash": "h1"}]}
    whole.load_state_dict(best)
    assert whole.order.per_epoch == {0: "a", 1: "b", 2: "c"}
    assert [t["step"] for t in whole.trajectory] == [1, 2]
    resumed = RunManifest()  # a fresh callback resuming a run continues from the checkpoint
    resumed.load_state_dict(best)
    assert resumed.order.per_epoch == {0: "a"} and resumed.trajectory == best["trajectory"]
