"""The retraining-loop simulator, end to end on tiny loops."""

import json

import pytest
from hydra import compose, initialize_config_module

from guardrail.errors import ConfigError
from guardrail.loop import main, run


def composed(tmp_path, *overrides):
    with initialize_config_module("guardrail.configs", version_base="1.3"):
        return compose("loop/loop", overrides=[*overrides, f"paths.output_dir={tmp_path}"])


def test_est_loop_writes_every_round_and_the_summary(tmp_path):
    cfg = composed(tmp_path, "recipe=est", "loop.rounds=2", "loop.epochs=2",
                   "loop.anchoring=0.6", "loop.holdout=0.3")
    result = run(cfg)
    assert [r["round"] for r in result["rounds"]] == [1, 2]
    for k in (1, 2):
        folder = tmp_path / f"round_{k}"
        assert {p.name for p in folder.iterdir()} == {"model.pt", "metrics.json",
                                                       "predictions.jsonl"}
        rows = [json.loads(line) for line in (folder / "predictions.jsonl").open()]
        served = [r for r in rows if r["served"]]
        # a served sale's observed price sits between the market value and the valuation
        assert all(min(r["market"], r["prediction"]) - 1e-4 <= r["observed"]
                   <= max(r["market"], r["prediction"]) + 1e-4 for r in served)
        assert all(r["observed"] == r["market"] for r in rows if not r["served"])
    saved = json.loads((tmp_path / "loop.json").read_text())
    assert saved["summary"]["anchoring"]["method"] == "holdout"
    # influenced labels flatter the model: its error against them is (1 - A) of the market's
    first = saved["rounds"][0]
    assert first["rmse_observed_served"] == pytest.approx(0.4 * first["rmse_market_served"],
                                                          rel=1e-3)
    assert (tmp_path / "findings.jsonl").exists()
    page = (tmp_path / "report.html").read_text()
    assert "Do new labels follow the model?" in page and "rmse_market_served" in page


@pytest.mark.slow
def test_rec_loop_under_each_policy(tmp_path):
    coverage = {}
    for policy in ("model", "random"):
        cfg = composed(tmp_path / policy, "recipe=rec", "loop.rounds=2", "loop.epochs=1",
                       f"loop.policy={policy}", "loop.k=5", "loop.choices=2")
        result = run(cfg)
        assert len(result["rounds"]) == 2
        assert (tmp_path / policy / "round_2" / "recommendations.jsonl").exists()
        coverage[policy] = result["rounds"][0]["coverage"]
    assert coverage["random"] > coverage["model"]


def test_bad_loop_config_is_one_clear_error(tmp_path):
    cfg = composed(tmp_path, "recipe=rec", "loop.policy=greedy", "loop.choices=50")
    with pytest.raises(ConfigError, match=r"loop.policy=greedy.*model, random, mixed.*"
                                          r"loop.choices=50"):
        run(cfg)
    with pytest.raises(ConfigError, match="no feedback world"):
        run(composed(tmp_path, "recipe=est", "recipe_name=wea"))


def test_app_refuses_a_recipe_without_a_world(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["recipe=wea"])
    assert exit_.value.code == 2
    assert "recipe=wea has no feedback world" in capsys.readouterr().err
