"""BOT recipe: the generator's structure, the split by player, the variance rule, a tiny fit."""

import json
import math
import os
import subprocess
import sys

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from conftest import exported_with_parity, quiet_trainer
from guardrail.datamodule import check_disjoint
from guardrail.errors import ConfigError, DataError
from guardrail.recipes.bot import (
    BotDataModule,
    BotDetectorModule,
    BotSequenceNet,
    action_features,
    generate_logs,
    timing_variance_score,
)
from guardrail.recipes.bot.data import CATEGORICAL, NUMERIC, SPLITS, split_players
from guardrail.recipes.bot.generator import (
    ACTIONS,
    BOT,
    BUTTON_HALF_PX,
    HUMAN,
    HUMANISED,
    STREETS,
    TIME_LIMIT_MS,
)
from guardrail.recipes.bot.preprocess import ACTION_FIELDS, BotPreprocessor, player_records
from guardrail.recipes.scoring import binary_scores


@pytest.fixture(scope="module")
def dm():
    datamodule = BotDataModule()
    datamodule.setup()
    return datamodule


@pytest.fixture(scope="module")
def logs(dm):
    return dm.logs


def rank_corr(a, b):
    """Spearman correlation (no ties in continuous data) of two 1-D arrays."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def auroc(scores, labels):
    return binary_scores(scores, labels)["auroc"]


def test_same_seed_same_bytes_other_seed_other_bytes():
    a, b = generate_logs(300, 20, seed=5), generate_logs(300, 20, seed=5)
    assert a.digest() == b.digest()
    assert a.time_to_act_ms.tobytes() == b.time_to_act_ms.tobytes()
    other = generate_logs(300, 20, seed=6)
    assert other.digest() != a.digest()
    assert not np.array_equal(other.time_to_act_ms, a.time_to_act_ms)


def test_bot_counts_follow_the_config(logs):
    assert logs.time_to_act_ms.shape == (4000, 64)
    assert (logs.kind == BOT).sum() == (logs.kind == HUMANISED).sum() == 60  # 3 %, half humanised
    assert np.array_equal(logs.label, (logs.kind != HUMAN).astype(int))
    small = generate_logs(1000, 8, bot_rate=0.01, humanised_share=0.0, seed=1)
    assert (small.kind == BOT).sum() == 10 and (small.kind == HUMANISED).sum() == 0
    assert len(np.unique(logs.player_id)) == len(logs.player_id)


def test_logged_values_are_physically_plausible(logs):
    assert logs.time_to_act_ms.min() > 0 and logs.time_to_act_ms.max() <= TIME_LIMIT_MS
    assert np.abs(logs.click_dx).max() <= BUTTON_HALF_PX[0]
    assert np.abs(logs.click_dy).max() <= BUTTON_HALF_PX[1]
    assert (logs.path_px >= logs.straight_px).all()
    assert (np.diff(logs.timestamp_ms, axis=1) > 0).all()  # each player's clock moves forward
    assert set(np.unique(logs.action)) == set(range(len(ACTIONS)))
    sized = np.isin(logs.action, [ACTIONS.index(a) for a in ("bet", "raise", "all-in")])
    assert (logs.bet_frac[sized] > 0).all() and (logs.bet_frac[logs.action <= 1] == 0).all()
    human = logs.kind == HUMAN
    median_s = np.median(logs.time_to_act_ms[human], axis=1) / 1000
    assert 2.0 < np.median(median_s) < 6.0
    assert 0 < (logs.time_to_act_ms[human] == TIME_LIMIT_MS).mean() < 0.02  # rare time-outs


def test_human_timing_tracks_difficulty_and_bot_timing_does_not(logs):
    log_t = np.log(logs.time_to_act_ms)
    human = logs.kind == HUMAN
    assert rank_corr(log_t[human].ravel(), logs.difficulty[human].ravel()) > 0.3
    assert np.corrcoef(log_t[human].ravel(), logs.difficulty[human].ravel())[0, 1] > 0.3
    for kind in (BOT, HUMANISED):
        rows = logs.kind == kind
        assert abs(rank_corr(log_t[rows].ravel(), logs.difficulty[rows].ravel())) < 0.1


def test_humanised_bots_defeat_the_variance_rule_but_not_the_difficulty_link(logs):
    rule = timing_variance_score(logs.time_to_act_ms)
    log_t = np.log(logs.time_to_act_ms)
    centred_t = log_t - log_t.mean(1, keepdims=True)
    centred_d = logs.difficulty - logs.difficulty.mean(1, keepdims=True)
    link = (centred_t * centred_d).sum(1) / np.sqrt(
        (centred_t**2).sum(1) * (centred_d**2).sum(1))  # per-player correlation
    for kind, rule_low, rule_high in ((BOT, 0.95, 1.0), (HUMANISED, 0.3, 0.7)):
        rows = (logs.kind == HUMAN) | (logs.kind == kind)
        assert rule_low <= auroc(rule[rows], logs.label[rows]) <= rule_high
        assert auroc(-link[rows], logs.label[rows]) > 0.9


def test_bots_click_and_move_like_machines_humans_tire(logs):
    human, bot = logs.kind == HUMAN, logs.kind == BOT
    assert (logs.path_px[bot] == logs.straight_px[bot]).all()  # straight mouse paths
    assert (logs.path_px[logs.kind == HUMANISED] > logs.straight_px[logs.kind == HUMANISED]).all()
    click_sd = logs.click_dx[human].std(1)
    assert 7 < np.median(click_sd) < 16
    pixel_bots = (logs.click_dx[bot].std(1) == 0) & (logs.click_dy[bot].std(1) == 0)
    assert 0 < pixel_bots.mean() < 1  # some hit one pixel, the others anywhere in the button
    half = logs.time_to_act_ms.shape[1] // 2
    slow_down = np.log(logs.time_to_act_ms[:, half:]).mean(1) - np.log(
        logs.time_to_act_ms[:, :half]).mean(1)
    assert slow_down[human].mean() > 0.05 > abs(slow_down[logs.kind == HUMANISED].mean())
    bot_sizes = logs.bet_frac[bot][np.isin(logs.action[bot], [3, 4])]
    assert len(np.unique(bot_sizes)) == 3  # the solver's abstraction


def test_split_is_by_player_stratified_and_checked(dm, logs):
    rows = [dm.split[s] for s in SPLITS]
    ids = [set(logs.player_id[r]) for r in rows]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert sum(map(len, rows)) == 4000
    assert [int(logs.label[r].sum()) for r in rows] == [66, 24, 30]
    player_id = np.array([7, 8, 7])
    with pytest.raises(DataError, match=r"1 players in both train and test \(e.g. 7\)"):
        check_disjoint({"train": player_id[[0, 1]], "test": player_id[[2]]}, "players", "BOT")
    codes = split_players(np.array([0] * 80 + [1] * 20), 0.2, 0.3, seed=0)
    assert np.bincount(codes[80:]).tolist() == [10, 4, 6]


def test_setup_is_idempotent(dm):
    datasets, split = dm.datasets, {k: v.copy() for k, v in dm.split.items()}
    dm.setup("fit")
    dm.setup("test")
    assert dm.datasets is datasets
    assert all(np.array_equal(split[k], dm.split[k]) for k in split)


def test_train_fraction_shrinks_training_only(dm):
    small = BotDataModule(train_fraction=0.25)
    small.setup()
    assert set(small.split["train"]) < set(dm.split["train"])
    assert len(small.split["train"]) == pytest.approx(len(dm.split["train"]) / 4, abs=2)
    assert int(small.logs.label[small.split["train"]].sum()) == round(0.25 * 66)
    for name in ("val", "test"):
        assert np.array_equal(small.split[name], dm.split[name])
    assert small.baselines() == dm.baselines()


def test_standardisation_uses_training_players_only(dm, logs):
    numeric, _ = action_features(logs)
    train = numeric[dm.split["train"]].reshape(-1, len(NUMERIC))
    assert np.allclose(dm.mean, train.mean(0)) and np.allclose(dm.std, train.std(0))
    assert not np.allclose(dm.mean, numeric.reshape(-1, len(NUMERIC)).mean(0), rtol=0, atol=1e-6)
    x = dm.datasets["train"].tensors[0].reshape(-1, len(NUMERIC))
    assert torch.allclose(x.mean(0), torch.zeros(len(NUMERIC)), atol=1e-3)
    assert torch.allclose(x.std(0), torch.ones(len(NUMERIC)), atol=1e-3)


def test_action_features_derive_gaps_and_table_switches():
    logs = generate_logs(5, 6, bot_rate=0.2, seed=2)
    numeric, categorical = action_features(logs)
    gap = numeric[..., NUMERIC.index("timestamp_ms")]
    assert gap[:, 0].tolist() == [0.0] * 5
    assert np.allclose(gap[:, 1:], np.log1p(np.diff(logs.timestamp_ms, axis=1) / 1000))
    switched = numeric[..., NUMERIC.index("table_id")]
    assert np.array_equal(switched[:, 1:], logs.table_id[:, 1:] != logs.table_id[:, :-1])
    assert np.array_equal(categorical[..., CATEGORICAL.index("action")], logs.action)


def test_variance_rule_and_scores_on_hand_made_input():
    times = np.array([[1000.0, 1000.0, 1000.0], [500.0, 1000.0, 2000.0]])
    expected = -np.array([0.0, np.var(np.log([500.0, 1000.0, 2000.0]))])
    assert np.allclose(timing_variance_score(times), expected)
    # one bot ranked second of three: precision 1/2 at its recall -> AP 0.5; AUROC 1/2
    assert binary_scores(np.array([0.9, 0.5, 0.1]), np.array([0, 1, 0])) == {
        "average_precision": 0.5, "auroc": 0.5}


def test_baselines_on_the_test_split(dm, logs):
    test = dm.split["test"]
    baselines = dm.baselines()
    assert baselines["timing_variance"] == binary_scores(
        timing_variance_score(logs.time_to_act_ms[test]), logs.label[test])
    assert baselines["prevalence"]["auroc"] == 0.5
    assert baselines["prevalence"]["average_precision"] == pytest.approx(logs.label[test].mean())
    assert 0.5 < baselines["timing_variance"]["auroc"] < 0.9  # catches plain bots only


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"bot_rate": 0.8}, r"data\.bot_rate=0\.8.*data\.bot_rate=0\.03"),
    ({"humanised_share": 1.5}, r"data\.humanised_share=1\.5"),
    ({"train_fraction": 0.0}, r"data\.train_fraction=0\.0"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, r"data\.val_fraction=0\.5.*sum to < 1"),
    ({"n_actions": 1}, r"data\.n_actions=1"),
    ({"n_players": 50}, r"data\.n_players=50.*2 bots.*data\.n_players=4000"),
])
def test_bad_data_config_is_a_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        BotDataModule(**kwargs)


def test_bad_model_config_is_a_config_error():
    with pytest.raises(ConfigError, match=r"model\.encoder=lstm.*cnn, gru"):
        BotSequenceNet(n_num=10, cardinalities=[4, 6, 6], encoder="lstm")
    with pytest.raises(ConfigError, match=r"model\.kernel_size=4"):
        BotSequenceNet(n_num=10, cardinalities=[4, 6, 6], kernel_size=4)
    net = BotSequenceNet(n_num=10, cardinalities=[4, 6, 6])
    with pytest.raises(ConfigError, match=r"module\.pos_weight=-1"):
        BotDetectorModule(net, pos_weight=-1)
    with pytest.raises(ConfigError, match=r"2 feature_names.*13 inputs"):
        BotDetectorModule(net, feature_names=["a", "b"])


@pytest.mark.parametrize("encoder", ["cnn", "gru"])
def test_module_contract_and_weighted_loss(dm, encoder):
    net = BotSequenceNet(**dm.net_kwargs(), encoder=encoder, hidden=8)
    module = BotDetectorModule(net, **dm.module_kwargs())
    assert module.feature_names == [*NUMERIC, *CATEGORICAL]
    assert module.pos_weight == pytest.approx((2200 - 66) / 66)
    x_num, x_cat = module.example_input_array
    assert x_num.shape == (2, 64, len(NUMERIC)) and x_cat.shape == (2, 64, len(CATEGORICAL))
    assert x_cat.dtype == torch.long and module(x_num, x_cat).shape == (2,)
    logits, bots = torch.zeros(4), torch.ones(4)
    unweighted = BotDetectorModule(net, pos_weight=1.0).compute_loss(logits, bots)
    assert module.compute_loss(logits, bots) == pytest.approx(module.pos_weight * unweighted)
    assert module.metrics["val_metrics"]["average_precision"].higher_is_better


def test_tiny_fit_gives_finite_metrics():
    small = BotDataModule(n_players=400, n_actions=16, bot_rate=0.05, batch_size=64)
    pl.seed_everything(0)
    module = BotDetectorModule(BotSequenceNet(**small.net_kwargs(), hidden=8),
                               **small.module_kwargs())
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1,
                            limit_test_batches=2)
    trainer.fit(module, small)
    assert {"val/average_precision", "val/auroc", "val/loss"} <= set(trainer.callback_metrics)
    (metrics,) = trainer.test(module, small, verbose=False)
    assert {"test/average_precision", "test/auroc", "test/loss"} <= set(metrics)
    assert all(math.isfinite(v) for v in metrics.values())


# ------------------------------------------------------------------ raw records, preprocessor
def inputs_equal(pre, records, dataset):
    return all(torch.equal(a, b) for a, b in zip(pre.transform(records), dataset.tensors[:2],
                                                 strict=True))


def test_records_are_each_players_action_list_row_for_row(dm, logs):
    pre = dm.preprocessor()
    for split in SPLITS:
        records = dm.records(split)
        assert len(records) == len(dm.datasets[split])
        assert inputs_equal(pre, records, dm.datasets[split])  # bit for bit: the same code
    first = dm.records("test")[0]["actions"]
    player = dm.split["test"][0]
    assert len(first) == 64 and list(first[0]) == list(ACTION_FIELDS)
    assert first[0]["street"] == STREETS[logs.street[player, 0]]
    assert first[5]["timestamp_ms"] == int(logs.timestamp_ms[player, 5])


def test_records_hold_no_label_and_are_strict_json(dm):
    records = dm.records("test")
    for record in records:
        json.dumps(record, allow_nan=False)
    assert {k for r in records for k in r} == {"actions"}  # no label, kind or player id
    assert {k for r in records for a in r["actions"] for k in a} == set(ACTION_FIELDS)


def test_preprocessor_state_round_trips_through_json(dm):
    pre = dm.preprocessor()
    text = json.dumps(pre.state_dict(), allow_nan=False)
    assert len(text) < 1000  # ten means and deviations
    again = BotPreprocessor.from_state_dict(json.loads(text))
    assert again.fields() == {"actions": "sequence"} and again.n_actions == 64
    assert inputs_equal(again, dm.records("val"), dm.datasets["val"])


def test_a_healthy_record_transforms_and_bad_ones_are_named(dm):
    pre = dm.preprocessor()
    record = dm.records("test")[0]
    x_num, x_cat = pre.transform([record])
    assert x_num.shape == (1, 64, len(NUMERIC)) and x_cat.shape == (1, 64, 3)

    def changed(**fields):
        return {"actions": [{**record["actions"][0], **fields}, *record["actions"][1:]]}

    with pytest.raises(DataError, match=r"BOT record 1 has 63 actions; .* of 64 actions"):
        pre.transform([record, {"actions": record["actions"][1:]}])
    with pytest.raises(DataError, match=r"action 'shove' is not one of the game's fold, check"):
        pre.transform([changed(action="shove")])
    with pytest.raises(DataError, match=r"time_to_act_ms is not a finite number"):
        pre.transform([changed(time_to_act_ms="2s")])
    with pytest.raises(DataError, match=r"strength is not a finite number"):
        pre.transform([changed(strength=None)])
    action = {k: v for k, v in record["actions"][0].items() if k != "table_id"}
    with pytest.raises(DataError, match=r"BOT record 0 has an action without 'table_id'"):
        pre.transform([{"actions": [action, *record["actions"][1:]]}])
    with pytest.raises(DataError, match=r"BOT record 0 has no 'actions' list"):
        pre.transform([{"moves": record["actions"]}])
    with pytest.raises(DataError, match=r"BOT record 1 has no 'actions' list of objects"):
        pre.transform([record, {"actions": [*record["actions"][:63], [1, 2]]}])


def test_player_records_round_trip_the_logs():
    logs = generate_logs(n_players=12, n_actions=6, bot_rate=0.2, seed=4)
    records = player_records(logs)
    assert len(records) == 12 and all(len(r["actions"]) == 6 for r in records)
    pre = BotPreprocessor.fit(records)
    numeric, categorical = action_features(logs)
    assert np.array_equal(pre.transform(records)[1].numpy(), categorical)
    assert np.array_equal(pre.mean, numeric.reshape(-1, len(NUMERIC)).mean(0))


def test_predictions_are_bot_probabilities(dm):
    assert dm.preprocessor().predictions(torch.tensor([0.0, -100.0])) == [0.5, 0.0]


@pytest.mark.slow
def test_app_run_exports_with_parity_and_prints_records(tmp_path, capsys):
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "guardrail.train", "recipe=bot", "trainer.max_epochs=1",
         "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
         "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false",
         "guardrails.callbacks.config_lock.mode=warn", f"hydra.run.dir={run}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not [f for f in map(json.loads, (run / "findings.jsonl").read_text().splitlines())
                if f["check"] == "data.contract"]  # held-out players fit the contract
    contract = json.loads((run / "contract.json").read_text())
    assert contract["fields"]["actions"]["accepts"] == {"min_length": 64, "max_length": 64}
    example = exported_with_parity(run, capsys)
    assert 0 < example["prediction"] < 1
