"""RET recipe: CDNOW derivation, split by user, the generator, the repeat rule, a tiny fit."""

import datetime
import json
import math
import os
import subprocess
import sys

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import pytest
import torch

from conftest import exported_with_parity, quiet_trainer
from guardrail.datamodule import SPLITS
from guardrail.errors import ConfigError, DataError, MissingDependencyError
from guardrail.preprocess import UNKNOWN, load_preprocessor, save_preprocessor
from guardrail.recipes.ret import (
    RetentionDataModule,
    RetentionModule,
    RetentionNet,
    synthetic_app_events,
)
from guardrail.recipes.ret.cohort import Cohort, cdnow_cohort, load_cdnow
from guardrail.recipes.ret.data import encode, encoded, repeat_rule, split_users
from guardrail.recipes.ret.generator import AGE_BANDS, QUASI_IDENTIFIERS
from guardrail.recipes.ret.preprocess import RetentionPreprocessor


@pytest.fixture(scope="module")
def dm():
    datamodule = RetentionDataModule()
    datamodule.setup()
    return datamodule


@pytest.fixture(scope="module")
def app_log():
    return synthetic_app_events(n_users=4000, seed=5)


def test_cdnow_counts_ids_and_label_rate(dm):
    frame = load_cdnow()
    assert frame.shape == (69_659, 4)
    cohort = dm.cohort
    assert len(cohort.user_ids) == 23_570 == frame["customer_id"].nunique()
    assert cohort.user_ids[0] == "00001"  # leading zeros survive: ids stay strings
    assert int(cohort.label.sum()) == 1265  # 5.37 % active on days 7-13
    # week 1 holds each customer's first purchase: at least one event on day 0, none missing
    assert (cohort.counts[:, 0, 0] >= 1).all()
    assert cohort.counts[:, :, 0].sum() <= len(frame)


def test_cdnow_derivation_on_a_hand_made_log():
    frame = pd.DataFrame({
        "customer_id": ["007", "007", "007", "007", "012", "012"],
        "date": [19970103, 19970103, 19970105, 19970111, 19970210, 19970220],
        "number_of_cds": [2, 1, 4, 1, 3, 1],
        "dollar_value": [20.0, 9.0, 40.0, 10.0, 30.0, 12.0],
    })
    cohort = cdnow_cohort(frame)
    assert cohort.user_ids.tolist() == ["007", "012"]
    np.testing.assert_array_equal(cohort.counts[0, 0], [2, 3, 29.0])  # two rows on day 0
    np.testing.assert_array_equal(cohort.counts[0, 2], [1, 4, 40.0])
    assert cohort.counts[1, 1:].sum() == 0  # day 10 is outside week 1
    assert cohort.label.tolist() == [True, True]  # day 8 and day 10
    assert cohort.static_num["basket_size"].tolist() == [2.0, 3.0]  # CDs of the first row
    assert cohort.static_cat.to_numpy().tolist() == [["Fri", "Jan"], ["Mon", "Feb"]]


def test_split_is_by_customer_and_disjoint(dm):
    ids = {s: set(dm.cohort.user_ids[dm.split[s]]) for s in SPLITS}
    assert not (ids["train"] & ids["val"] or ids["train"] & ids["test"]
                or ids["val"] & ids["test"])
    assert sum(map(len, ids.values())) == len(dm.cohort.user_ids)
    assert len(ids["test"]) == pytest.approx(0.15 * 23_570, abs=1)


def test_split_refuses_a_user_on_two_sides():
    with pytest.raises(DataError, match=r"1 users in both train and val \(e\.g\. x\)"):
        split_users(np.array(["x"] * 20), seed=0, val_fraction=0.2, test_fraction=0.2)


def test_setup_is_idempotent(dm):
    datasets, split = dm.datasets, {k: v.copy() for k, v in dm.split.items()}
    dm.setup("fit")
    dm.setup("test")
    assert dm.datasets is datasets
    assert all(np.array_equal(split[k], dm.split[k]) for k in split)


def test_scaling_uses_training_users_only(dm):
    train = dm.split["train"]
    logs = np.log1p(dm.cohort.counts)
    np.testing.assert_allclose(dm.day_encoding.mean, logs[train].mean((0, 1)), rtol=1e-6)
    assert not np.allclose(dm.day_encoding.mean, logs.mean((0, 1)), rtol=1e-6, atol=0)
    seq = dm.datasets["train"].tensors[0]
    assert torch.allclose(seq.mean((0, 1)), torch.zeros(3), atol=1e-4)


def test_vocabulary_from_training_users_only():
    cohort = Cohort(np.array(["a", "b", "c"]), np.ones((3, 7, 1)), ["n"],
                    pd.DataFrame(index=range(3)),
                    pd.DataFrame({"city": ["Umea", "Malmo", "Kiruna"]}), np.zeros(3, bool))
    days, static = encode(cohort, np.array([0, 1]))
    _, num, cat = encoded(cohort, days, static)
    assert num.shape == (3, 0) and static.cardinalities == [3]
    assert cat[2, 0] == UNKNOWN and UNKNOWN not in cat[:2, 0]


def test_repeat_rule_on_a_hand_made_input():
    activity = np.zeros((5, 7))
    activity[:, 0] = [1, 9, 1, 1, 1]  # day 0 (the first purchase) never counts
    activity[1, 3] = activity[2, 6] = activity[3, 1] = 1  # rule fires for users 1, 2, 3
    label = np.array([False, False, True, True, False])
    # positives scored (1, 1), negatives (0, 1, 0): AUROC = (1 + 0.5 + 1 + 1 + 0.5 + 1) / 6
    got = repeat_rule(activity, label)
    assert got["auroc"] == pytest.approx(5 / 6)
    assert got["average_precision"] == pytest.approx(2 / 3)  # precision 2/3 at recall 1


def test_baselines_use_the_test_split_and_the_rule_is_informative(dm):
    test = dm.split["test"]
    baselines = dm.baselines()
    assert baselines["repeat_rule"] == repeat_rule(dm.cohort.counts[test, :, 0],
                                                   dm.cohort.label[test])
    assert baselines["base_rate"]["auroc"] == 0.5
    assert baselines["base_rate"]["average_precision"] == pytest.approx(
        dm.cohort.label[test].mean())
    # on all customers: back on days 1-6 -> 15.5 % active in week 2, else 4.8 %
    fired = (dm.cohort.counts[:, 1:, 0] > 0).any(1)
    assert dm.cohort.label[fired].mean() > 2.5 * dm.cohort.label[~fired].mean()


def test_module_kwargs_pos_weight_and_feature_names(dm):
    kwargs = dm.module_kwargs()
    y = dm.cohort.label[dm.split["train"]]
    assert kwargs["pos_weight"] == pytest.approx((~y).sum() / y.sum())
    assert kwargs["feature_names"] == ["n_events", "cds", "dollars", "basket_size", "weekday",
                                       "month"]


def test_generator_is_deterministic():
    a, b, c = (synthetic_app_events(n_users=300, seed=s) for s in (1, 1, 2))
    digest = [tuple(pd.util.hash_pandas_object(f, index=True).sum() for f in log)
              for log in (a, b, c)]
    assert digest[0] == digest[1] and digest[0] != digest[2]
    pd.testing.assert_frame_equal(a[1], b[1])


def test_generator_sessions_decay_vary_by_user_and_follow_the_week(app_log):
    users, events = app_log
    sessions = events[events["event"] == "open"]
    per_day = sessions.groupby("day").size().reindex(range(14), fill_value=0)
    assert per_day[0] > per_day[3] > per_day[6] > per_day[13] > 0  # decay since install
    week1 = sessions[sessions["day"] < 7].groupby("user_id").size().reindex(
        users["user_id"], fill_value=0)
    assert week1.var() > 2 * week1.mean()  # heterogeneous users: far from one Poisson
    weekday = (users.set_index("user_id")["install_weekday"].cat.codes.reindex(
        sessions["user_id"]).to_numpy() + sessions["day"].to_numpy()) % 7
    by_weekday = np.bincount(weekday, minlength=7)
    assert by_weekday[5] > by_weekday[1]  # Saturday busier than Tuesday


def test_generator_sessions_are_markov_chains_from_open(app_log):
    _, events = app_log
    first = events.groupby("session")["event"].first()
    assert (first == "open").all()
    assert (events["event"] == "open").sum() == events["session"].nunique()
    prev = events.groupby("session")["event"].shift()
    assert (prev[events["event"] == "level_complete"] == "level_start").all()
    social_share = (events.assign(social=events["event"] == "social")
                    .groupby("user_id")["social"].mean())
    assert social_share.quantile(0.9) > 2 * social_share.quantile(0.1)  # user-specific chains


def test_synthetic_label_rate_and_quasi_identifier_signal():
    dm = RetentionDataModule(source="synthetic", n_users=4000, seed=5)
    dm.setup()
    label = dm.cohort.label
    assert 0.2 <= label.mean() <= 0.4
    age = dm.cohort.static_cat["age_band"]
    young, old = label[age == AGE_BANDS[0]].mean(), label[age == AGE_BANDS[-1]].mean()
    assert old > young + 0.2  # who you are predicts coming back: what the privacy rule hid


def test_quasi_identifiers_false_drops_them():
    dm = RetentionDataModule(source="synthetic", n_users=500, quasi_identifiers=False)
    names = dm.module_kwargs()["feature_names"]
    assert not set(QUASI_IDENTIFIERS) & set(names)
    assert "install_weekday" in names and len(dm.net_kwargs()["cardinalities"]) == 1
    kept = RetentionDataModule(source="synthetic", n_users=500).module_kwargs()["feature_names"]
    assert set(QUASI_IDENTIFIERS) <= set(kept)


def test_missing_lifetimes_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "lifetimes", None)
    with pytest.raises(MissingDependencyError, match=r"pip install lifetimes==0\.11\.3"):
        load_cdnow()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"source": "cdnow2"}, r"data\.source=cdnow2.*cdnow, synthetic.*data\.source=synthetic"),
    ({"val_fraction": 0.7}, r"data\.val_fraction.*0\.7"),
    ({"batch_size": 0, "n_users": 5}, r"data\.batch_size.*0.*data\.n_users.*5"),
])
def test_bad_data_config_is_a_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        RetentionDataModule(**kwargs)


def test_bad_model_config_and_feature_name_mismatch():
    with pytest.raises(ConfigError, match=r"model\.dropout.*1\.5"):
        RetentionNet(n_seq_features=3, dropout=1.5)
    net = RetentionNet(n_seq_features=3, n_static_num=1, cardinalities=[8, 4])
    with pytest.raises(ConfigError, match=r"2 feature_names.*6 input features"):
        RetentionModule(net, feature_names=["n_events", "cds"])
    with pytest.raises(ConfigError, match=r"module\.pos_weight.*-1"):
        RetentionModule(net, pos_weight=-1.0)


def test_pos_weight_weights_positives_in_the_loss():
    net = RetentionNet(n_seq_features=3)
    logits, target = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0])
    plain = RetentionModule(net, pos_weight=5.0, balance_classes=False).compute_loss(logits, target)
    weighted = RetentionModule(net, pos_weight=5.0).compute_loss(logits, target)
    assert float(weighted) == pytest.approx(3 * float(plain))  # (5 + 1) / 2 vs (1 + 1) / 2


def test_tiny_fit_gives_finite_test_metrics():
    pl.seed_everything(0)
    dm = RetentionDataModule(source="synthetic", n_users=1500, batch_size=128)
    module = RetentionModule(RetentionNet(hidden=8, **dm.net_kwargs()), **dm.module_kwargs())
    seq, num, cat = module.example_input_array
    assert seq.shape == (2, 7, 5) and num.shape == (2, 0) and cat.dtype == torch.long
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=2,
                            limit_test_batches=2)
    trainer.fit(module, dm)
    (metrics,) = trainer.test(module, dm, verbose=False)
    assert {"test/auroc", "test/average_precision", "test/loss"} <= set(metrics)
    assert all(math.isfinite(v) for v in metrics.values())


# ------------------------------------------------------------------ raw records, preprocessor
def inputs_equal(pre, records, dataset):
    return all(torch.equal(a, b) for a, b in zip(pre.transform(records), dataset.tensors[:3],
                                                 strict=True))


def test_records_are_each_customers_week_one_log_row_for_row(dm):
    pre = dm.preprocessor()
    for split in SPLITS:
        records = dm.records(split)
        assert len(records) == len(dm.datasets[split])
        assert inputs_equal(pre, records, dm.datasets[split])  # bit for bit: the same code
    record = dm.records("test")[0]
    assert set(record) == {"purchases"}
    assert set(record["purchases"][0]) == {"date", "number_of_cds", "dollar_value"}


def test_records_hold_no_label_and_are_strict_json(dm):
    records = dm.records("test")
    for record in records:
        json.dumps(record, allow_nan=False)
        dates = [datetime.datetime.strptime(str(p["date"]), "%Y%m%d")
                 for p in record["purchases"]]
        assert (max(dates) - min(dates)).days < 7  # week 1 only: days 7-13 are the label
    assert {k for r in records for k in r} == {"purchases"}  # no label, no customer id


def test_preprocessor_state_round_trips_through_json(dm, tmp_path):
    pre = dm.preprocessor()
    text = json.dumps(pre.state_dict(), allow_nan=False)
    assert len(text) < 2000  # scalings and vocabularies, not data
    again = RetentionPreprocessor.from_state_dict(json.loads(text))
    assert again.fields() == {"purchases": "sequence"}
    records = dm.records("val")
    assert inputs_equal(again, records, dm.datasets["val"])
    save_preprocessor(pre, tmp_path / "preprocessor.json")
    assert inputs_equal(load_preprocessor(tmp_path / "preprocessor.json"), records,
                        dm.datasets["val"])


@pytest.mark.parametrize("quasi_identifiers", [True, False])
def test_synthetic_records_carry_what_the_client_has(quasi_identifiers):
    dm = RetentionDataModule(source="synthetic", n_users=600, seed=3,
                             quasi_identifiers=quasi_identifiers)
    static = {"install_weekday", *(QUASI_IDENTIFIERS if quasi_identifiers else ())}
    for split in SPLITS:
        records = dm.records(split)
        assert inputs_equal(dm.preprocessor(), records, dm.datasets[split])
        assert all(set(r) == {"events", *static} for r in records)
        assert all(0 <= e["day"] < 7 for r in records for e in r["events"])
    assert dm.records("test")[0]["events"][0] == {"day": 0, "event": "open"}
    assert set(dm.preprocessor().fields()) == {"events", *static}


def test_a_healthy_record_transforms_and_bad_ones_are_named(dm):
    good = {"purchases": [{"date": 19970105, "number_of_cds": 2, "dollar_value": 30.0},
                          {"date": 19970109, "number_of_cds": 1, "dollar_value": 9.5}]}
    seq, num, cat = dm.preprocessor().transform([good])
    assert seq.shape == (1, 7, 3) and num.shape == (1, 1) and cat[0].tolist() == [4, 2]  # Sun Jan
    with pytest.raises(DataError, match=r"RET record 1 has no usable 'purchases'.*non-empty"):
        dm.preprocessor().transform([good, {"purchases": []}])
    with pytest.raises(DataError, match=r"record 0 has a purchase dated 19971345, which is no"):
        dm.preprocessor().transform([{"purchases": [{**good["purchases"][0],
                                                     "date": 19971345}]}])
    with pytest.raises(DataError, match=r"a purchase cannot be read.*are numbers"):
        dm.preprocessor().transform([{"purchases": [{**good["purchases"][0],
                                                     "dollar_value": "30 USD"}]}])
    with pytest.raises(DataError, match=r"\['number_of_cds'\] hold null values"):
        dm.preprocessor().transform([{"purchases": [{**good["purchases"][0],
                                                     "number_of_cds": None}]}])
    synthetic = RetentionDataModule(source="synthetic", n_users=300).preprocessor()
    record = {"install_weekday": "Mon", "gender": "male", "age_band": "55+", "city": "Umea",
              "events": [{"day": 0, "event": "open"}]}
    assert synthetic.transform([record])[0][0, 0, 0] > 0  # one session on day 0
    with pytest.raises(DataError, match=r"event type\(s\) \['logout'\].*open, level_start"):
        synthetic.transform([{**record, "events": [{"day": 0, "event": "logout"}]}])
    with pytest.raises(DataError, match=r"RET record 0 has an event on day -1, before"):
        synthetic.transform([{**record, "events": [{"day": -1, "event": "open"}]}])
    with pytest.raises(DataError, match=r"an event cannot be read.*whole number of days"):
        synthetic.transform([{**record, "events": [{"day": 2.5, "event": "open"}]}])
    with pytest.raises(DataError, match=r"RET record 0 has no 'city'"):
        synthetic.transform([{k: v for k, v in record.items() if k != "city"}])


def test_predictions_are_probabilities_of_coming_back(dm):
    assert dm.preprocessor().predictions(torch.tensor([0.0, 100.0])) == [0.5, 1.0]


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [[], ["data.source=synthetic", "data.n_users=3000"]],
                         ids=["cdnow", "synthetic"])
def test_app_run_exports_with_parity_and_prints_records(overrides, tmp_path, capsys):
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "guardrail.train", "recipe=ret", *overrides,
         "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
         "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false",
         "guardrails.callbacks.config_lock.mode=warn", f"hydra.run.dir={run}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not [f for f in map(json.loads, (run / "findings.jsonl").read_text().splitlines())
                if f["check"] == "data.contract"]  # held-out users fit the contract
    example = exported_with_parity(run, capsys)
    assert 0 < example["prediction"] < 1


@pytest.mark.parametrize("source", ["cdnow", "synthetic"])
def test_fewer_logged_days_send_and_see_only_those_days(source):
    """`data.logged_days=2`: the records hold days 0-1 only, the inputs are those records
    encoded, and the repeat rule sees day 1 alone; labels and the split are unchanged."""
    full = RetentionDataModule(source=source, n_users=3000)
    short = RetentionDataModule(source=source, n_users=3000, logged_days=2)
    full.setup(), short.setup()
    records = short.records("test")
    if source == "cdnow":
        first = [min(p["date"] for p in r["purchases"]) for r in records]
        days = [(datetime.datetime.strptime(str(p["date"]), "%Y%m%d")
                 - datetime.datetime.strptime(str(f), "%Y%m%d")).days
                for r, f in zip(records, first, strict=True) for p in r["purchases"]]
    else:
        days = [e["day"] for r in records for e in r["events"]]
    assert max(days) == 1 and len(records) == len(full.records("test"))
    inputs = short.preprocessor().transform(records)
    for got, want in zip(inputs, short.datasets["test"].tensors[:3], strict=True):
        torch.testing.assert_close(got, want)
    assert torch.equal(short.datasets["test"].tensors[-1], full.datasets["test"].tensors[-1])
    rule = short.compute_baselines()["repeat_rule"]
    assert rule["auroc"] < full.compute_baselines()["repeat_rule"]["auroc"]


def test_a_logged_fraction_keeps_that_share_of_training_users_only():
    full = RetentionDataModule(source="synthetic", n_users=2000)
    half = RetentionDataModule(source="synthetic", n_users=2000, logged_fraction=0.5)
    full.setup(), half.setup()
    assert len(half.split["train"]) == round(0.5 * len(full.split["train"]))
    assert set(half.split["train"]) <= set(full.split["train"])
    for split in ("val", "test"):
        assert np.array_equal(half.split[split], full.split[split])


@pytest.mark.parametrize("kwargs, key", [({"logged_days": 0}, "data.logged_days"),
                                         ({"logged_days": 8}, "data.logged_days"),
                                         ({"logged_fraction": 0.0}, "data.logged_fraction"),
                                         ({"logged_fraction": 1.5}, "data.logged_fraction")])
def test_logging_knobs_out_of_range_are_refused(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        RetentionDataModule(source="synthetic", **kwargs)
