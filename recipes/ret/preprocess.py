"""RET raw records (a customer's first-week log) -> the network's inputs, fitted on training users.

A *record* is what the shop or the app has of a user when week 1 is over, and nothing of what
came after (the label is activity on days 7-13):

- ``source=cdnow``: the customer's CDNOW purchase rows of days 0-6 after the first purchase,
  as the log writes them (``date`` as ``YYYYMMDD``), in log order:
  ``{"purchases": [{"date": 19970101, "number_of_cds": 2, "dollar_value": 25.0}, ...]}``.
- ``source=synthetic``: the install weekday, the quasi-identifiers gender, age band and city
  (unless ``quasi_identifiers=False``: then the client does not send them), and the events of
  days 0-6 in time order: ``{"install_weekday": "Mon", ..., "events": [{"day": 0, "event":
  "open"}, ...]}``.

:class:`RetentionPreprocessor` derives from the records what the cohort code derives from the
whole log (:mod:`~guardrail.recipes.ret.cohort`: daily sums over days 0-6, the first purchase's
weekday, month and basket size) by running that same code on them, then applies the encodings
fitted on the training users (``log1p``, standardisation, category codes). Its JSON state is the
source, the static fields and the two encodings (a few hundred bytes).

Example:
    >>> from guardrail.recipes.ret.generator import synthetic_app_events
    >>> records = synthetic_records(*synthetic_app_events(n_users=40, seed=1))
    >>> sorted(records[0]), records[0]["events"][0]
    (['age_band', 'city', 'events', 'gender', 'install_weekday'], {'day': 0, 'event': 'open'})
    >>> pre = RetentionPreprocessor.fit(records[:30], "synthetic")
    >>> [tuple(t.shape) for t in pre.transform(records[30:])]
    [(10, 7, 5), (10, 0), (10, 4)]
    >>> pre.predictions(torch.tensor([0.0, 2.0]))  # the probability of activity on days 7-13
    [0.5, 0.8807970285415649]

"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from guardrail.errors import DataError
from guardrail.preprocess import Encoding, Preprocessor, Record
from guardrail.recipes.ret.cohort import (
    N_OBSERVED,
    Cohort,
    cdnow_cohort,
    synthetic_cohort,
)
from guardrail.recipes.ret.generator import EVENT_TYPES, QUASI_IDENTIFIERS

__all__ = ["PURCHASE_FIELDS", "RetentionPreprocessor", "cdnow_records", "encode", "encoded",
           "records_cohort", "synthetic_records"]

PURCHASE_FIELDS = ("date", "number_of_cds", "dollar_value")  # CDNOW's own column names
STATIC = ("install_weekday", *QUASI_IDENTIFIERS)  # synthetic static fields, in cohort order


def cdnow_records(frame: pd.DataFrame, days: int = N_OBSERVED) -> list[dict[str, Any]]:
    """Per customer, in cohort order (sorted ids): the purchases of days 0-6, in log order.

    ``days`` < 7 keeps only the purchases of the first ``days`` days (what a shorter logging
    window would have recorded).

    Example:
        >>> cdnow_records(pd.DataFrame({"customer_id": ["01", "01", "01"],
        ...     "date": [19970101, 19970103, 19970109], "number_of_cds": [2, 1, 4],
        ...     "dollar_value": [25.0, 9.5, 40.0]}))  # doctest: +NORMALIZE_WHITESPACE
        [{'purchases': [{'date': 19970101, 'number_of_cds': 2, 'dollar_value': 25.0},
                        {'date': 19970103, 'number_of_cds': 1, 'dollar_value': 9.5}]}]

    """
    ids, user = np.unique(frame["customer_id"].to_numpy(str), return_inverse=True)
    date = pd.to_datetime(frame["date"].astype(str), format="%Y%m%d")
    epoch_day = ((date - pd.Timestamp("1997-01-01")).dt.days).to_numpy()
    first_day = np.full(len(ids), np.iinfo(np.int64).max)
    np.minimum.at(first_day, user, epoch_day)
    rows = np.flatnonzero(epoch_day - first_day[user] < days)  # week 1 at most: no label
    rows = rows[np.argsort(user[rows], kind="stable")]  # by customer, log order kept
    columns = [frame[c].to_numpy()[rows].tolist() for c in PURCHASE_FIELDS]  # Python scalars
    purchases = [dict(zip(PURCHASE_FIELDS, values, strict=True))
                 for values in zip(*columns, strict=True)]
    starts = np.searchsorted(user[rows], np.arange(len(ids) + 1))
    return [{"purchases": purchases[a:b]} for a, b in itertools.pairwise(starts)]


def synthetic_records(users: pd.DataFrame, events: pd.DataFrame, quasi_identifiers: bool = True,
                      days: int = N_OBSERVED) -> list[dict[str, Any]]:
    """Per user, in ``users`` order: static fields and the events of days 0-6 in time order.

    ``days`` < 7 keeps only the events of the first ``days`` days.

    Without ``quasi_identifiers`` the records hold no gender, age band or city: what the
    privacy rule hid is not sent either.
    """
    static = [c for c in STATIC if quasi_identifiers or c not in QUASI_IDENTIFIERS]
    user = pd.Index(users["user_id"]).get_indexer(events["user_id"])
    if (user < 0).any():
        raise DataError(f"synthetic events: {int((user < 0).sum())} events have a user_id "
                        "that is not in the users table.")
    rows = np.flatnonzero(events["day"].to_numpy() < days)
    rows = rows[np.argsort(user[rows], kind="stable")]
    logged = [{"day": d, "event": e} for d, e in zip(
        events["day"].to_numpy()[rows].tolist(),
        events["event"].astype(str).to_numpy()[rows].tolist(), strict=True)]
    starts = np.searchsorted(user[rows], np.arange(len(users) + 1))
    values = users[static].astype(str).to_dict("records")
    return [{**v, "events": logged[a:b]}
            for v, (a, b) in zip(values, itertools.pairwise(starts), strict=True)]


def records_cohort(records: Sequence[Record], source: str,
                   static: Sequence[str] = STATIC) -> Cohort:
    """The cohort of ``records`` by the code that derives it from the whole log (no labels).

    Raises:
        DataError: A record is not an object, lacks its log or a static field, has an empty
            log, or holds a value the derivation cannot read (a date that is no
            ``YYYYMMDD``, an event type the app does not log).
    """
    key = "purchases" if source == "cdnow" else "events"
    fields = PURCHASE_FIELDS if source == "cdnow" else ("day", "event")
    logs = []
    for i, record in enumerate(records):
        log = record.get(key) if isinstance(record, Mapping) else None
        if not isinstance(log, list) or not log or not all(
                isinstance(e, Mapping) and all(f in e for f in fields) for e in log):
            raise DataError(
                f"RET record {i} has no usable '{key}': it must be a non-empty list of objects "
                f"with {', '.join(fields)} (week 1 of the user's log); got {_show(log)}.")
        logs.append(log)
    n = np.array([len(log) for log in logs])
    owner = np.repeat([f"{i:09d}" for i in range(len(logs))], n)  # sorts in record order
    flat = [e for log in logs for e in log]
    if source == "cdnow":
        frame = pd.DataFrame({"customer_id": owner,
                              **{f: [e[f] for e in flat] for f in PURCHASE_FIELDS}})
        empty = frame.columns[frame.isna().any()].tolist()
        if empty:
            raise DataError(f"RET records: purchase field(s) {empty} hold null values; every "
                            f"purchase carries {', '.join(PURCHASE_FIELDS)}.")
        dates = pd.to_datetime(frame["date"].astype(str), format="%Y%m%d", errors="coerce")
        if dates.isna().any():
            row = int(np.flatnonzero(dates.isna().to_numpy())[0])
            raise DataError(f"RET record {int(owner[row])} has a purchase dated "
                            f"{flat[row]['date']!r}, which is no YYYYMMDD date; send "
                            "the log's date as it is (19970101).")
        try:
            return cdnow_cohort(frame)
        except (ValueError, TypeError) as err:
            line = (str(err).splitlines() or [""])[0]
            raise DataError(f"RET records: a purchase cannot be read ({type(err).__name__}: "
                            f"{line}); 'number_of_cds' and 'dollar_value' are numbers.") from None
    missing = [(i, c) for c in static for i, r in enumerate(records) if c not in r]
    if missing:
        raise DataError(f"RET record {missing[0][0]} has no '{missing[0][1]}'; every record "
                        f"carries {', '.join(static)} and events.")
    kinds = [e["event"] for e in flat]
    unknown = sorted({str(k) for k in kinds} - set(EVENT_TYPES))
    if unknown:
        raise DataError(f"RET records: event type(s) {unknown} are not logged by the app; the "
                        f"types are {', '.join(EVENT_TYPES)}.")
    days = [e["day"] for e in flat]
    early = next((i for i, d in enumerate(days) if isinstance(d, int | float) and d < 0), None)
    if early is not None:
        raise DataError(f"RET record {int(owner[early])} has an event on day {days[early]!r}, "
                        "before the install (day 0); 'day' counts days since install.")
    users = pd.DataFrame({"user_id": [f"{i:09d}" for i in range(len(records))],
                          **{c: [r[c] for r in records] for c in static}})
    events = pd.DataFrame({"user_id": owner, "day": np.asarray(days),
                           "event": pd.Categorical(kinds, categories=list(EVENT_TYPES))})
    try:
        return synthetic_cohort(users, events, quasi_identifiers=len(static) > 1)
    except (ValueError, TypeError, IndexError) as err:
        raise DataError(f"RET records: an event cannot be read ({type(err).__name__}: {err}); "
                        "'day' is a whole number of days since install (0-6).") from None


def encode(cohort: Cohort, train: np.ndarray) -> tuple[Encoding, Encoding]:
    """Encodings of the daily counts and of the static features, fitted on ``train`` rows.

    Counts and static numbers are ``log1p``-ed, then standardised; categories get codes
    (``0``: unseen in training). Apply them with :func:`encoded`.

    Example:
        >>> c = Cohort(np.array(["a", "b"]), np.ones((2, 7, 1)), ["n"],
        ...            pd.DataFrame({"x": [0.0, 2.0]}), pd.DataFrame({"k": ["p", "q"]}),
        ...            np.array([True, False]))
        >>> seq, num, cat = encoded(c, *encode(c, np.array([0])))
        >>> seq.shape, num.tolist(), cat.tolist()
        ((2, 7, 1), [[0.0], [1.0986123085021973]], [[1], [0]])
    """
    static = _static(cohort).iloc[train]
    numeric, categorical = list(cohort.static_num.columns), list(cohort.static_cat.columns)
    return (Encoding.fit(_days(cohort.counts[train], cohort), cohort.seq_features, [],
                         cohort.seq_features),
            Encoding.fit(static, numeric, categorical, log_features=numeric))


def encoded(cohort: Cohort, days: Encoding,
            static: Encoding) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(seq float32 [N, 7, F], num float32 [N, S], cat int64 [N, C])`` of ``cohort``."""
    seq = days.transform(_days(cohort.counts, cohort))[0].reshape(cohort.counts.shape)
    num, cat = static.transform(_static(cohort))
    return seq, num, cat


def _days(counts: np.ndarray, cohort: Cohort) -> pd.DataFrame:
    """``[N, 7, F]`` counts as ``N * 7`` rows of ``F`` named columns (one scaling per feature)."""
    return pd.DataFrame(counts.reshape(-1, counts.shape[-1]), columns=cohort.seq_features)


def _static(cohort: Cohort) -> pd.DataFrame:
    return pd.concat([cohort.static_num, cohort.static_cat], axis=1)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class RetentionPreprocessor(Preprocessor):
    """A user's first-week record -> ``(seq [N, 7, F], static_num [N, S], static_cat [N, C])``.

    Args:
        source: ``cdnow`` (records of purchases) or ``synthetic`` (app events and static
            fields).
        static: Synthetic only: the static fields a record carries (install weekday, then
            the quasi-identifiers when they are features).
        days: Encoding of the daily sums, fitted on training users.
        static_encoding: Encoding of the static features, fitted on training users.

    The model's output is a logit; :meth:`predictions` answers the probability of activity on
    days 7-13.
    """

    def __init__(self, source: str, static: Sequence[str], days: Encoding,
                 static_encoding: Encoding) -> None:
        if source not in ("cdnow", "synthetic"):
            raise DataError(f"RetentionPreprocessor: source {source!r} is not a RET source; "
                            "choose cdnow or synthetic.")
        self.source, self.static = source, list(static) if source == "synthetic" else []
        self.days, self.static_encoding = days, static_encoding

    @classmethod
    def fit(cls, records: Sequence[Record], source: str,
            quasi_identifiers: bool = True) -> RetentionPreprocessor:
        """Fitted on the training users' ``records`` (scalings and vocabularies)."""
        static = [c for c in STATIC if quasi_identifiers or c not in QUASI_IDENTIFIERS]
        cohort = records_cohort(records, source, static)
        days, static_encoding = encode(cohort, np.arange(len(records)))
        return cls(source, static, days, static_encoding)

    def fields(self) -> dict[str, str]:
        """The log (a sequence of objects), then the synthetic static fields."""
        if self.source == "cdnow":
            return {"purchases": "sequence"}
        return {"events": "sequence", **{c: "categorical" for c in self.static}}

    def transform(self, records: Sequence[Record]) -> tuple[torch.Tensor, ...]:
        """``(seq float32 [N, 7, F], static_num float32 [N, S], static_cat int64 [N, C])``."""
        cohort = records_cohort(records, self.source, self.static)
        return tuple(torch.from_numpy(a) for a in encoded(cohort, self.days,
                                                           self.static_encoding))

    def predictions(self, output: torch.Tensor) -> list[float]:
        """The probability of activity on days 7-13, per record (the model gives logits)."""
        return torch.sigmoid(output.detach().cpu().float().reshape(-1)).tolist()

    def state_dict(self) -> dict[str, Any]:
        """Source, static fields and the two encodings' state."""
        return {"source": self.source, "static": self.static,
                "days": self.days.state_dict(), "static_encoding":
                self.static_encoding.state_dict()}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> RetentionPreprocessor:
        """The preprocessor :meth:`state_dict` describes."""
        return cls(state["source"], state["static"], Encoding.from_state_dict(state["days"]),
                   Encoding.from_state_dict(state["static_encoding"]))
