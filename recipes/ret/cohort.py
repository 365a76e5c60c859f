"""Raw RET logs -> a cohort: per user, days 0-6 of activity, static features and the label.

CDNOW purchases (Fader & Hardie, shipped in ``lifetimes``) and the synthetic app events
(:func:`~guardrail.recipes.ret.generator.synthetic_app_events`) both become a :class:`Cohort`:
a daily sequence over days 0-6 after the user's first event (the first feature counts
activity), static features, and the label "any activity on days 7-13".

Example:
    >>> from guardrail.recipes.ret.generator import synthetic_app_events
    >>> c = synthetic_cohort(*synthetic_app_events(n_users=50), quasi_identifiers=False)
    >>> c.counts.shape, c.seq_features[0], c.label.dtype
    ((50, 7, 5), 'open', dtype('bool'))
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os

import numpy as np
import pandas as pd

from guardrail.errors import DataError, MissingDependencyError
from guardrail.recipes.ret.generator import (
    EVENT_TYPES,
    QUASI_IDENTIFIERS,
    WEEKDAYS,
)

N_OBSERVED = 7  # days 0-6 are the model's input
LABEL_DAYS = (7, 13)  # activity on any of these days is a positive
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
        >>> from guardrail.recipes.ret.generator import synthetic_app_events
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
