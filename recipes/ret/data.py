"""First-week activity -> active in week 2, for the RET recipe: CDNOW purchases or app events.

Both sources become a cohort: per user a daily sequence over days 0-6 after the first event
(the first feature counts activity), static features, and the label "any activity on days
7-13". The split is by user and checked; scaling and vocabularies come from training users.

Example:
    >>> dm = RetentionDataModule(source="synthetic", n_users=400, batch_size=32)
    >>> seq, num, cat, y = next(iter(dm.train_dataloader()))
    >>> seq.shape, num.shape, cat.shape, y.dtype
    (torch.Size([32, 7, 5]), torch.Size([32, 0]), torch.Size([32, 4]), torch.float32)
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.functional.classification import binary_auroc, binary_average_precision

from guardrail.errors import ConfigError, DataError, MissingDependencyError
from guardrail.recipes.ret.generator import (
    EVENT_TYPES,
    QUASI_IDENTIFIERS,
    WEEKDAYS,
    synthetic_app_events,
)
from guardrail.recipes.splits import BatchedTensors, SplitLoaders, collate

SOURCES = ("cdnow", "synthetic")
SPLITS = ("train", "val", "test")
N_OBSERVED = 7  # days 0-6 are the model's input
LABEL_DAYS = (7, 13)  # activity on any of these days is a positive
UNKNOWN = 0  # embedding index of a category unseen in training
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def load_cdnow() -> pd.DataFrame:
    """The CDNOW master log (69,659 purchases) as shipped in ``lifetimes``, ids as strings.

    ``lifetimes`` is never imported (its ``datasets`` module needs ``pkg_resources``); only its
    installed files are read.

    Example:
        >>> frame = load_cdnow()
        >>> frame.shape, frame["customer_id"].iloc[0]
        ((69659, 4), '00001')
    """
    spec = importlib.util.find_spec("lifetimes")  # None when not installed
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "lifetimes", "the RET recipe's CDNOW purchase log", "lifetimes==0.11.3")
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "CDNOW_master.txt")
    if not os.path.isfile(path):
        raise DataError(f"{path} is missing from the lifetimes package; reinstall it with "
                        "`pip install --force-reinstall lifetimes==0.11.3`.")
    # The ids have leading zeros ("00001"); read as str they stay distinct and exact.
    return pd.read_csv(path, sep=r"\s+", dtype={"customer_id": str})


@dataclasses.dataclass
class Cohort:
    """Per-user raw features and labels, rows in ``user_ids`` order.

    Attributes:
        user_ids: ``[N]`` user ids (str).
        counts: ``[N, 7, F]`` raw per-day sums; feature 0 counts events (CDNOW) or sessions.
        seq_features: The ``F`` names of the per-day features.
        static_num: ``[N, S]`` raw numeric static features.
        static_cat: ``[N, C]`` categorical static features (str).
        label: ``[N]`` bool, any activity on days 7-13.
    """

    user_ids: np.ndarray
    counts: np.ndarray
    seq_features: list[str]
    static_num: pd.DataFrame
    static_cat: pd.DataFrame
    label: np.ndarray


def daily_sums(user: np.ndarray, day: np.ndarray, values: np.ndarray, n_users: int) -> np.ndarray:
    """Sum ``values [E, F]`` per user and day into ``[n_users, 7, F]``; days >= 7 are dropped.

    Example:
        >>> daily_sums(np.array([0, 0, 1]), np.array([0, 9, 6]), np.ones((3, 1)), 2)[:, :, 0]
        array([[1., 0., 0., 0., 0., 0., 0.],
               [0., 0., 0., 0., 0., 0., 1.]])
    """
    out = np.zeros((n_users, N_OBSERVED, values.shape[1]))
    seen = day < N_OBSERVED
    np.add.at(out, (user[seen], day[seen]), values[seen])
    return out


def _label(user: np.ndarray, day: np.ndarray, n_users: int) -> np.ndarray:
    label = np.zeros(n_users, dtype=bool)
    label[user[(day >= LABEL_DAYS[0]) & (day <= LABEL_DAYS[1])]] = True
    return label


def cdnow_cohort(frame: pd.DataFrame) -> Cohort:
    """Per customer: days 0-6 of (n_events, cds, dollars), weekday/month/basket size, label.

    Example:
        >>> c = cdnow_cohort(pd.DataFrame({"customer_id": ["01", "01"], "date": [19970101,
        ...     19970109], "number_of_cds": [2, 1], "dollar_value": [25.0, 9.5]}))
        >>> c.counts[0, 0].tolist(), c.static_cat.iloc[0].tolist(), c.label.tolist()
        ([1.0, 2.0, 25.0], ['Wed', 'Jan'], [True])
    """
    for col in ("customer_id", "date", "number_of_cds", "dollar_value"):
        bad = int(frame[col].isna().sum())
        if bad:
            raise DataError(f"CDNOW (lifetimes) column {col!r} has {bad} missing values; "
                            "reinstall `pip install lifetimes==0.11.3`.")
    date = pd.to_datetime(frame["date"].astype(str), format="%Y%m%d")
    ids, user = np.unique(frame["customer_id"].to_numpy(str), return_inverse=True)
    epoch_day = ((date - pd.Timestamp("1997-01-01")).dt.days).to_numpy()
    first_day = np.full(len(ids), np.iinfo(np.int64).max)
    np.minimum.at(first_day, user, epoch_day)
    day = epoch_day - first_day[user]
    values = np.column_stack([np.ones(len(frame)), frame["number_of_cds"].to_numpy(float),
                              frame["dollar_value"].to_numpy(float)])
    # The first purchase of each customer: the first row (file order) on their first day.
    day0 = np.flatnonzero(day == 0)
    first_row = day0[np.unique(user[day0], return_index=True)[1]]  # [N], every user has one
    first_date = pd.Timestamp("1997-01-01") + pd.to_timedelta(first_day, unit="D")
    return Cohort(
        user_ids=ids,
        counts=daily_sums(user, day, values, len(ids)),
        seq_features=["n_events", "cds", "dollars"],
        static_num=pd.DataFrame({"basket_size": values[first_row, 1]}),
        static_cat=pd.DataFrame({"weekday": np.array(WEEKDAYS)[first_date.day_of_week],
                                 "month": np.array(MONTHS)[first_date.month - 1]}),
        label=_label(user, day, len(ids)),
    )


def synthetic_cohort(users: pd.DataFrame, events: pd.DataFrame,
                     quasi_identifiers: bool = True) -> Cohort:
    """Per user: days 0-6 of event-type counts (``open`` = sessions), static features, label.

    The static features are the install weekday and, unless ``quasi_identifiers`` is false,
    gender, age band and city.

    Example:
        >>> c = synthetic_cohort(*synthetic_app_events(n_users=50), quasi_identifiers=False)
        >>> c.counts.shape, list(c.static_cat.columns)
        ((50, 7, 5), ['install_weekday'])
    """
    user = pd.Index(users["user_id"]).get_indexer(events["user_id"])
    if (user < 0).any():
        raise DataError(f"synthetic events: {int((user < 0).sum())} events have a user_id "
                        "that is not in the users table.")
    onehot = np.eye(len(EVENT_TYPES))[events["event"].cat.codes.to_numpy()]  # [E, 5]
    day = events["day"].to_numpy()
    cat = ["install_weekday", *(QUASI_IDENTIFIERS if quasi_identifiers else ())]
    return Cohort(
        user_ids=users["user_id"].to_numpy(str),
        counts=daily_sums(user, day, onehot, len(users)),
        seq_features=list(EVENT_TYPES),
        static_num=pd.DataFrame(index=range(len(users))),
        static_cat=users[cat].astype(str).reset_index(drop=True),
        label=_label(user, day, len(users)),
    )


def split_users(user_ids: np.ndarray, seed: int, val_fraction: float,
                test_fraction: float) -> dict[str, np.ndarray]:
    """Seeded random split of rows by user; raises ``DataError`` if a user is on two sides.

    Example:
        >>> parts = split_users(np.array(list("abcdefghij")), 0, 0.2, 0.2)
        >>> [len(parts[s]) for s in SPLITS]
        [6, 2, 2]
    """
    order = np.random.default_rng(seed).permutation(len(user_ids))
    n_val, n_test = round(val_fraction * len(order)), round(test_fraction * len(order))
    parts = dict(zip(SPLITS, np.split(order, [len(order) - n_val - n_test, len(order) - n_test]),
                     strict=True))
    for i, a in enumerate(SPLITS):
        if not len(parts[a]):
            raise DataError(f"the {a} split is empty ({len(order)} users); use more users "
                            "(`data.n_users=20000`) or other `data.val_fraction`.")
        for b in SPLITS[i + 1:]:
            shared = np.intersect1d(user_ids[parts[a]], user_ids[parts[b]])
            if len(shared):
                raise DataError(f"{len(shared)} users (e.g. {str(shared[0])!r}) are in both the "
                                f"{a} and {b} splits; the split leaks.")
    return parts


@dataclasses.dataclass
class Encoding:
    """``log1p`` + standardisation and vocabularies, fitted on training users only.

    Example:
        >>> c = Cohort(np.array(["a", "b"]), np.ones((2, 7, 1)), ["n"],
        ...            pd.DataFrame({"x": [0.0, 2.0]}), pd.DataFrame({"k": ["p", "q"]}),
        ...            np.array([True, False]))
        >>> seq, num, cat = Encoding.fit(c, np.array([0])).transform(c)
        >>> seq.shape, cat.tolist()
        ((2, 7, 1), [[1], [0]])
    """

    seq_mean: np.ndarray  # [F]
    seq_std: np.ndarray  # [F]
    num_mean: np.ndarray  # [S]
    num_std: np.ndarray  # [S]
    vocab: dict[str, dict[str, int]]

    @classmethod
    def fit(cls, cohort: Cohort, train: np.ndarray) -> Encoding:
        """Statistics of the ``train`` rows of ``cohort``."""
        seq = np.log1p(cohort.counts[train]).reshape(-1, cohort.counts.shape[-1])
        num = np.log1p(cohort.static_num.to_numpy(float)[train])
        vocab = {c: {v: i + 1 for i, v in enumerate(sorted(set(cohort.static_cat[c].iloc[train])))}
                 for c in cohort.static_cat.columns}
        return cls(seq.mean(0), _safe_std(seq), num.mean(0), _safe_std(num), vocab)

    def transform(self, cohort: Cohort) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(seq float32 [N, 7, F], num float32 [N, S], cat int64 [N, C])``."""
        seq = (np.log1p(cohort.counts) - self.seq_mean) / self.seq_std
        num = (np.log1p(cohort.static_num.to_numpy(float)) - self.num_mean) / self.num_std
        cat = np.column_stack([cohort.static_cat[c].map(v).fillna(UNKNOWN).to_numpy(np.int64)
                               for c, v in self.vocab.items()] or [np.zeros((len(seq), 0))])
        return seq.astype(np.float32), num.astype(np.float32), cat.astype(np.int64)

    @property
    def cardinalities(self) -> list[int]:
        """Embedding rows per categorical column, the unknown index included."""
        return [len(v) + 1 for v in self.vocab.values()]


def _safe_std(x: np.ndarray) -> np.ndarray:
    std = x.std(0)
    return np.where(std > 0, std, 1.0)  # a constant training column stays finite


def binary_scores(scores: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """``auroc`` and ``average_precision`` of ``scores`` (the module's metric definitions).

    Example:
        >>> binary_scores(np.array([0.1, 0.9, 0.4]), np.array([False, True, False]))
        {'auroc': 1.0, 'average_precision': 1.0}
    """
    s, y = torch.as_tensor(scores, dtype=torch.float32), torch.as_tensor(label).long()
    return {"auroc": float(binary_auroc(s, y)), "average_precision":
            float(binary_average_precision(s, y))}


def repeat_rule(activity: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """The rule "active again on days 1-6" (score 1 or 0) scored against ``label``.

    Args:
        activity: ``[N, 7]`` events (or sessions) per day 0-6.
        label: ``[N]`` bool, active on days 7-13.

    Example:
        >>> act = np.array([[1, 0, 0, 0, 0, 0, 0], [1, 2, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 1]])
        >>> repeat_rule(act, np.array([False, True, False]))
        {'auroc': 0.75, 'average_precision': 0.5}
    """
    return binary_scores((np.asarray(activity)[:, 1:] > 0).any(1).astype(float), label)


class RetentionDataModule(SplitLoaders, pl.LightningDataModule):
    """Users as ``(seq, static_num, static_cat, label)`` batches, split by user.

    ``source="cdnow"`` (default): the real CDNOW purchase log (Fader & Hardie, via
    ``lifetimes``); 23,570 customers, 5.4 % active on days 7-13. ``source="synthetic"``: the
    app-event generator (:func:`synthetic_app_events`), about 30 % active, with the
    quasi-identifiers gender, age band and city as static features.
    ``quasi_identifiers=False`` drops them, as the paper's privacy rules did (CDNOW has none,
    so there it changes nothing).

    Args:
        source: ``cdnow`` or ``synthetic``.
        quasi_identifiers: Synthetic only: keep gender, age band and city as features.
        n_users: Synthetic only: number of users generated.
        batch_size: Users per batch.
        num_workers: DataLoader workers (the tensors are in memory; 0 is fastest here).
        seed: Seed of the user split, the training shuffle and the generator.
        val_fraction: Fraction of users for validation.
        test_fraction: Fraction of users for test.

    Example:
        >>> dm = RetentionDataModule(source="synthetic", n_users=300, quasi_identifiers=False)
        >>> dm.module_kwargs()["feature_names"]
        ['open', 'level_start', 'level_complete', 'purchase', 'social', 'install_weekday']
    """

    def __init__(
        self, source: str = "cdnow", quasi_identifiers: bool = True, n_users: int = 20_000,
        batch_size: int = 256, num_workers: int = 0, seed: int = 42,
        val_fraction: float = 0.15, test_fraction: float = 0.15,
    ) -> None:
        super().__init__()
        problems = []
        if source not in SOURCES:
            problems.append(f"`data.source={source}` is not a RET source; choose one of "
                            f"{', '.join(SOURCES)} (e.g. `data.source=synthetic`)")
        if batch_size < 1:
            problems.append(f"`data.batch_size` must be >= 1, got {batch_size} "
                            "(e.g. `data.batch_size=256`)")
        if n_users < 20:
            problems.append(f"`data.n_users` must be >= 20, got {n_users} "
                            "(e.g. `data.n_users=20000`)")
        for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 < value < 0.5:
                problems.append(f"`data.{key}` must be in (0, 0.5), got {value} "
                                f"(e.g. `data.{key}=0.15`)")
        if problems:
            raise ConfigError("; ".join(problems) + ".")
        self.save_hyperparameters(logger=False)
        self.cohort: Cohort | None = None
        self.split: dict[str, np.ndarray] = {}
        self.datasets: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        """Load, derive, split and encode once; later calls return at once."""
        if self.cohort is not None:
            return
        hp = self.hparams
        if hp.source == "cdnow":
            cohort = cdnow_cohort(load_cdnow())
        else:
            users, events = synthetic_app_events(hp.n_users, hp.seed)
            cohort = synthetic_cohort(users, events, hp.quasi_identifiers)
        self.split = split_users(cohort.user_ids, hp.seed, hp.val_fraction, hp.test_fraction)
        for name, idx in self.split.items():
            if not cohort.label[idx].any():
                raise DataError(f"data.source={hp.source}: the {name} split has no positive "
                                "users (active on days 7-13); use more users.")
        self.encoding = Encoding.fit(cohort, self.split["train"])
        seq, num, cat = (torch.from_numpy(a) for a in self.encoding.transform(cohort))
        y = torch.from_numpy(cohort.label.astype(np.float32))
        self.datasets = {n: BatchedTensors(seq[i], num[i], cat[i], y[i])
                         for n, i in self.split.items()}
        self.cohort = cohort

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        self.setup()
        generator = torch.Generator().manual_seed(self.hparams.seed) if shuffle else None
        return DataLoader(self.datasets[split], batch_size=self.hparams.batch_size,
                          shuffle=shuffle, generator=generator, collate_fn=collate,
                          num_workers=self.hparams.num_workers,
                          persistent_workers=self.hparams.num_workers > 0)

    # ------------------------------------------------------------------------ the contract
    def net_kwargs(self) -> dict[str, Any]:
        """Data-derived network arguments: sequence shape, static widths, cardinalities."""
        self.setup()
        return {"n_seq_features": len(self.cohort.seq_features), "n_days": N_OBSERVED,
                "n_static_num": self.cohort.static_num.shape[1],
                "cardinalities": self.encoding.cardinalities}

    def module_kwargs(self) -> dict[str, Any]:
        """``feature_names`` (per-day, numeric static, categorical) and ``pos_weight``.

        ``pos_weight`` is the number of training negatives per training positive.
        """
        self.setup()
        c, y = self.cohort, self.cohort.label[self.split["train"]]
        return {"feature_names": [*c.seq_features, *c.static_num.columns, *c.static_cat.columns],
                "pos_weight": float((~y).sum() / max(int(y.sum()), 1))}

    def baselines(self) -> dict[str, dict[str, float]]:
        """Test-split ``auroc`` and ``average_precision`` of the repeat rule and the base rate.

        The base rate scores every user with the training positive rate (a constant).
        """
        self.setup()
        test = self.split["test"]
        label = self.cohort.label[test]
        base_rate = float(self.cohort.label[self.split["train"]].mean())
        return {"repeat_rule": repeat_rule(self.cohort.counts[test, :, 0], label),
                "base_rate": binary_scores(np.full(len(test), base_rate), label)}
