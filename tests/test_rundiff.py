import json

import pytest

from guardrail.cli import main
from guardrail.rundiff import diff_manifests, format_diff


def manifest(shuffle, order, content="c1", traj=("h1", "h2"), lr=0.001):
    return {
        "configuration": {"resolved": {"data": {"shuffle_before_split": shuffle},
                                       "paths": {"output_dir": f"/runs/{shuffle}"},
                                       "trainer": {"default_root_dir": f"/runs/{shuffle}"}},
                          "overrides": [f"hydra.run.dir=/runs/{shuffle}"],
                          "effective": {"optimizer.param_groups.0.lr": lr}},
        "data": {"train": {"content": content, "samples": 10}, "order": {
            "digest": order, "per_epoch": {"0": order}}},
        "source": {"commit": "abc", "dirty": False, "patch": None},
        "model": {"initial_hash": "i", "trajectory": [{"step": 1, "hash": traj[0]},
                                                        {"step": 2, "hash": traj[1]}],
                  "final_hash": traj[1]},
        "platform": {"packages": {"torch": "2.13.0"}},
        "hardware": {"cpu": "x"},
    }


def test_shuffle_change_comes_first_then_data_then_divergence():
    a = manifest(False, "o1")
    b = manifest(True, "o2", content="c2", traj=("h1", "h3"))
    diffs = diff_manifests(a, b, "/runs/False", "/runs/True")
    keys = [(d["category"], d["key"]) for d in diffs]
    assert keys[0] == ("config", "data.shuffle_before_split")
    assert ("data", "order") in keys and ("data", "train.content") in keys
    assert ("trajectory", "step 2") in keys
    assert all(k[1] not in ("paths.output_dir", "trainer.default_root_dir") for k in keys)
    text = format_diff(diffs, "A", "B")
    assert text.index("data.shuffle_before_split: false → true") < text.index("order")
    assert "first divergence; identical up to step 1" in text


def test_order_only_change_keeps_content_equal():
    diffs = diff_manifests(manifest(False, "o1"), manifest(False, "o2"))
    data = {d["key"]: d for d in diffs if d["category"] == "data"}
    assert data["train.content"].get("same") and "order" in data


def test_cli_json_and_exit_status(tmp_path, capsys):
    for name, m in (("a", manifest(False, "o1")), ("b", manifest(False, "o1", lr=0.01))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(json.dumps(m))
    assert main(["diff", str(tmp_path / "a"), str(tmp_path / "b"), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["identical"] is False
    assert out["differences"][0]["key"] == "optimizer.param_groups.0.lr"
    assert main(["diff", str(tmp_path / "a"), str(tmp_path / "a")]) == 0


def test_a_folder_without_manifest_is_explained(tmp_path, capsys):
    assert main(["diff", str(tmp_path), str(tmp_path)]) == 2
    assert "has no manifest.json" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["diff", "approve"])
def test_help_has_examples(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "examples:" in capsys.readouterr().out


def test_data_that_differs_only_in_order_is_headed_so():
    from guardrail.rundiff import format_diff

    rows = [{"category": "data", "key": "train.content", "a": "h", "b": "h", "note": "same",
             "same": True},
            {"category": "data", "key": "order", "a": "o1", "b": "o2",
             "note": "the batches seen differ from epoch 3 on"}]
    text = format_diff(rows, "A", "B")
    assert "data: same data, different order" in text
    assert "the training data differs" not in text
    rows[0] = {"category": "data", "key": "train.content", "a": "h", "b": "g", "note": ""}
    assert "data: the training data differs" in format_diff(rows, "A", "B")
