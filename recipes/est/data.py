"""Ames housing sales (De Cock 2011) for the EST recipe, split chronologically.

``AmesDataModule(shuffle_before_split=True)`` replays the paper's incident on purpose.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import TensorDataset

from guardrail.datamodule import SPLITS, RecipeDataModule, loader_problems
from guardrail.errors import ConfigError
from guardrail.preprocess import TabularPreprocessor, records_of
from guardrail.recipes.est.baselines import neighbourhood_median, ridge
from guardrail.recipes.est.sources import TARGET, load_ames
from guardrail.recipes.tabular import one_hot_design

NEIGHBOURHOOD = "Neighborhood"
# The sale date defines the split; the two floor areas add up to Gr_Liv_Area (with
# Low_Qual_Fin_SF), so as features they only split living area's weight three ways.
DEFAULT_EXCLUDE = ("Year_Sold", "Mo_Sold", "First_Flr_SF", "Second_Flr_SF")
DEFAULT_LOG = ("Lot_Area", "Lot_Frontage", "Gr_Liv_Area", "Mas_Vnr_Area")


def _unknown(names: Sequence[str], columns: Sequence[str], key: str) -> list[str]:
    problems = []
    for name in names:
        if name not in columns:
            near = difflib.get_close_matches(name, columns, n=3)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            problems.append(f"`data.{key}` names unknown column {name!r}{hint}")
    return problems


class AmesDataModule(RecipeDataModule):
    """Ames sales as ``(x_num, x_cat, log_price)`` batches, split chronologically.

    Training holds the sales before ``val_start_year``/``val_start_month``, validation the
    sales from then until ``test_start_year``, test every later sale (2010): the model is
    judged on the future, as a valuation model will be used.

    ``shuffle_before_split=True`` replays the paper's incident: rows are shuffled (seeded)
    *before* the split is cut with the same sizes, so future sales leak into training, the
    test set is no longer the future, and test metrics promise more than the model delivers.

    ``Year_Sold`` and ``Mo_Sold`` are not features by default: they define the split, and
    every test sale has a year never seen in training (the network would extrapolate a
    2006-2009 trend that includes the crash). Nor are ``First_Flr_SF`` and ``Second_Flr_SF``:
    with ``Low_Qual_Fin_SF`` they add up to ``Gr_Liv_Area``. The assessor's quality ratings
    that modeldata's copy drops (``Overall_Qual``, ``Exter_Qual``, ``Kitchen_Qual``) are
    joined from openintro's (:func:`with_quality_ratings`).

    Args:
        batch_size: Rows per batch.
        num_workers: DataLoader workers (the tensors are in memory; 0 is fastest here).
        shuffle_before_split: Shuffle rows before cutting the split (the incident).
        seed: Seed of that shuffle. The training shuffle draws from torch's global RNG
            (:meth:`shuffle_generator`), seeded by the run's ``seed``.
        val_start_year: Year of the first validation sale.
        val_start_month: Month (1-12) of the first validation sale.
        test_start_year: Sales from this year on are the test split.
        features: Feature columns; ``None``: every column but the target and ``exclude``.
            Numeric columns are standardised, the others embedded.
        exclude: Columns left out when ``features`` is ``None``.
        log_features: Right-skewed numeric columns passed through ``log1p`` first.
        max_train_living_area: Training sales with a larger ``Gr_Liv_Area`` are dropped
            (De Cock's advice: 5 huge houses, 3 of them partial sales); ``None`` keeps all.
            Validation and test rows are never dropped.
        ridge_baseline: Also return ridge regression from :meth:`compute_baselines`, as a reference
            model (:meth:`baseline_roles`): a network that is not clearly better than it gets
            ``baseline.simpler_model_suffices``.

    Example:
        >>> dm = AmesDataModule(batch_size=64)
        >>> x_num, x_cat, y = next(iter(dm.train_dataloader()))
        >>> x_num.shape[0], x_cat.dtype, "Gr_Liv_Area" in dm.module_kwargs()["feature_names"]
        (64, torch.int64, True)

    """

    def __init__(
        self,
        batch_size: int = 128,
        num_workers: int = 0,
        shuffle_before_split: bool = False,
        seed: int = 42,
        val_start_year: int = 2009,
        val_start_month: int = 7,
        test_start_year: int = 2010,
        features: Sequence[str] | None = None,
        exclude: Sequence[str] = DEFAULT_EXCLUDE,
        log_features: Sequence[str] = DEFAULT_LOG,
        max_train_living_area: float | None = 4000.0,
        ridge_baseline: bool = True,
    ) -> None:
        problems = loader_problems(batch_size, num_workers)
        if not 1 <= val_start_month <= 12:
            problems.append(f"`data.val_start_month` must be 1..12, got {val_start_month}")
        if (val_start_year, val_start_month) >= (test_start_year, 1):
            problems.append(f"validation must start before the test year, got `data.val_start_"
                            f"year={val_start_year}` `data.val_start_month={val_start_month}` "
                            f"`data.test_start_year={test_start_year}`")
        _raise(problems)
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.save_hyperparameters(logger=False)
        self.shuffle_before_split = bool(shuffle_before_split)
        self.val_start, self.test_start_year = (val_start_year, val_start_month), test_start_year
        self.features = list(features) if features is not None else None
        self.exclude, self.log_features = list(exclude), list(log_features)
        self.max_train_living_area, self.ridge_baseline = max_train_living_area, ridge_baseline
        self.frame = pd.DataFrame()  # filled by build_splits()
        self.split: dict[str, np.ndarray] = {}  # split name -> row positions in self.frame

    def build_splits(self) -> dict[str, TensorDataset]:
        """Load, split by sale date and encode with training statistics."""
        frame = load_ames()
        features = self.features if self.features is not None else [
            c for c in frame.columns if c not in (TARGET, *self.exclude)]
        problems = [p for key in ("features", "exclude", "log_features")
                    for p in _unknown(getattr(self, key) or [], list(frame.columns), key)]
        if TARGET in features:
            problems.append(f"`data.features` contains the target {TARGET!r}, which leaks "
                            "the answer into the inputs")
        problems += self._split(frame)
        _raise(problems)
        self.numeric = [c for c in features if pd.api.types.is_numeric_dtype(frame[c])]
        self.categorical = [c for c in features if c not in self.numeric]
        # what a client sends: one record per sale, the feature columns only
        self._records = records_of(frame, self.numeric + self.categorical)
        self._preprocessor = TabularPreprocessor.fit(
            [self._records[i] for i in self.split["train"]], self.numeric, self.categorical,
            self.log_features)
        self.encoding = self._preprocessor.encoding
        x_num, x_cat = self._preprocessor.transform(self._records)
        y = torch.from_numpy(np.log(frame[TARGET].to_numpy(np.float32)))
        self.frame = frame
        return {name: TensorDataset(x_num[idx], x_cat[idx], y[idx])
                for name, idx in self.split.items()}

    def records(self, split: str) -> list[dict[str, Any]]:
        """The sales of ``split`` as a client sends them: feature columns, missing as null."""
        self.setup()
        return [self._records[i] for i in self.split[split]]

    def preprocessor(self) -> TabularPreprocessor:
        """The encoding of records, fitted on the training sales."""
        self.setup()
        return self._preprocessor

    def shuffle_generator(self) -> None:
        """``None``: the training shuffle draws from torch's global RNG, as it always has."""
        return None

    def _split(self, frame: pd.DataFrame) -> list[str]:
        month = frame["Year_Sold"].to_numpy() * 12 + frame["Mo_Sold"].to_numpy() - 1
        val_from = self.val_start[0] * 12 + self.val_start[1] - 1
        test_from = self.test_start_year * 12
        order = np.argsort(month, kind="stable")  # row indices, chronological
        sizes = [(month < val_from).sum(), ((month >= val_from) & (month < test_from)).sum()]
        empty = [n for n, size in zip(SPLITS, [*sizes, len(frame) - sum(sizes)], strict=True)
                 if size == 0]
        if empty:
            years = sorted(set(frame["Year_Sold"]))
            return [f"the {'/'.join(empty)} split is empty with `data.val_start_year="
                    f"{self.val_start[0]}` `data.val_start_month={self.val_start[1]}` "
                    f"`data.test_start_year={self.test_start_year}`; sales span the years "
                    f"{years[0]}-{years[-1]} (e.g. `data.test_start_year={years[-1]}`)"]
        if self.shuffle_before_split:
            order = np.random.default_rng(self.seed).permutation(len(frame))
        parts = np.split(order, np.cumsum(sizes))
        if self.max_train_living_area is not None:
            area = frame["Gr_Liv_Area"].to_numpy()[parts[0]]
            parts[0] = parts[0][area <= self.max_train_living_area]
        # each split in date order (stable), whichever rows it holds
        self.split = {n: p[np.argsort(month[p], kind="stable")]
                      for n, p in zip(SPLITS, parts, strict=True)}
        return []

    # ------------------------------------------------------------------------ the contract
    def net_kwargs(self) -> dict[str, Any]:
        """Data-derived network arguments: ``n_num``, ``cardinalities``, target mean/std."""
        self.setup()
        y = self.datasets["train"].tensors[2]
        return {"n_num": len(self.numeric), "cardinalities": self.encoding.cardinalities,
                "target_mean": float(y.mean()), "target_std": float(y.std())}

    def module_kwargs(self) -> dict[str, Any]:
        """Data-derived module arguments: ``feature_names`` (numeric, then categorical)."""
        self.setup()
        return {"feature_names": self.numeric + self.categorical}

    def compute_baselines(self) -> dict[str, dict[str, float]]:
        """Test-split scores of baselines fitted on the training rows.

        ``neighbourhood_median`` (trivial): the training median price of the house's
        neighbourhood. ``ridge`` (with ``ridge_baseline=True``; a reference model): ridge
        regression (λ=10) on the standardised numeric and one-hot categorical columns, the
        simpler model a valuation network has to be clearly better than.
        """
        train, test = (self.frame.iloc[self.split[n]] for n in ("train", "test"))
        out = {"neighbourhood_median": neighbourhood_median(
            train[NEIGHBOURHOOD], train[TARGET], test[NEIGHBOURHOOD], test[TARGET])}
        if self.ridge_baseline:
            out["ridge"] = self.ridge_scores()
        return out

    def baseline_roles(self) -> dict[str, str]:
        """``ridge`` is a reference model; the neighbourhood median is trivial."""
        return {"neighbourhood_median": "trivial", "ridge": "reference"}

    def ridge_scores(self, lam: float = 10.0) -> dict[str, float]:
        """Test scores of ridge regression on the same encoded inputs as the network."""
        self.setup()
        (xn_tr, xc_tr, y_tr), (xn_te, xc_te, y_te) = (
            (t.numpy() for t in self.datasets[n].tensors) for n in ("train", "test"))
        card = self.encoding.cardinalities
        x_tr, x_te = (one_hot_design(xn, xc, card)  # [N, n_num + sum card]
                      for xn, xc in ((xn_tr, xc_tr), (xn_te, xc_te)))
        return ridge(x_tr, y_tr.astype(float), x_te, y_te.astype(float), lam)


def _raise(problems: list[str]) -> None:
    if problems:
        raise ConfigError(
            "EST recipe config: " + "; ".join(problems) + ". Fix each key named above with a "
            "Hydra override (`python -m guardrail.train recipe=est data.<key>=<value>`) or in "
            "configs/recipe/est.yaml."
        )
