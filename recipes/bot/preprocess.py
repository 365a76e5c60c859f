"""BOT raw records (a player's session: the list of their actions) -> the network's inputs.

A *record* is what the poker client logs of one player's session, one object per decision
with the log's own fields, the street, position and action by name:
``{"actions": [{"street": "flop", "position": "BTN", "action": "call", "bet_frac": 0.61,
"strength": 0.42, "difficulty": 0.37, "time_to_act_ms": 2417.0, "click_dx": -3.1,
"click_dy": 5.2, "path_px": 312.5, "straight_px": 250.0, "table_id": 1000321,
"timestamp_ms": 1700003600000}, ...]}`` (``n_actions`` of them, in time order). The player's id
and kind are not in it.

:class:`BotPreprocessor` derives the per-action features (:func:`action_features`: logs of
sizes and times, the gap since the previous action, a table-switch flag) and standardises them
with the training players' mean and deviation; the categories are coded by the game's fixed
vocabularies. Its JSON state is the session length and the 10 means and deviations.

Example:
    >>> from guardrail.recipes.bot.generator import generate_logs
    >>> records = player_records(generate_logs(n_players=20, n_actions=8, bot_rate=0.1))
    >>> len(records[0]["actions"]), records[0]["actions"][0]["street"] in STREETS
    (8, True)
    >>> pre = BotPreprocessor.fit(records[:15])
    >>> [tuple(t.shape) for t in pre.transform(records[15:])]
    [(5, 8, 10), (5, 8, 3)]

"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from guardrail.errors import DataError
from guardrail.preprocess import Preprocessor, Record

from .generator import ACTIONS, POSITIONS, STREETS, PokerLogs

__all__ = ["ACTION_FIELDS", "CATEGORICAL", "NUMERIC", "VOCABULARIES", "BotPreprocessor",
           "action_features", "player_records"]

# Model inputs: each numeric column is derived from the original log field named here.
NUMERIC = ("bet_frac", "strength", "difficulty", "time_to_act_ms", "click_dx", "click_dy",
           "path_px", "straight_px", "timestamp_ms", "table_id")
CATEGORICAL = ("street", "position", "action")
VOCABULARIES = {"street": STREETS, "position": POSITIONS, "action": ACTIONS}  # fixed by the game
# A record's action: the categorical fields by name, then the numeric log fields.
ACTION_FIELDS = (*CATEGORICAL, "bet_frac", "strength", "difficulty", "time_to_act_ms",
                 "click_dx", "click_dy", "path_px", "straight_px", "table_id", "timestamp_ms")


def action_features(logs: PokerLogs | Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Raw per-action inputs: ``(numeric [P, T, 10] float64, categorical [P, T, 3] int64)``.

    Numeric columns follow :data:`NUMERIC`: sizes, times and lengths are logged (they are
    skewed; time-to-act is log-normal by nature); ``timestamp_ms`` becomes the log seconds
    since the player's previous action and ``table_id`` a 0/1 "switched table" flag, because
    absolute times and table numbers mean nothing across players. ``logs`` is a
    :class:`~guardrail.recipes.bot.generator.PokerLogs` or a mapping of its per-action arrays.

    Example:
        >>> from guardrail.recipes.bot.generator import generate_logs
        >>> num, cat = action_features(generate_logs(n_players=3, n_actions=5))
        >>> num.shape, cat.shape, float(num[0, 0, -1])
        ((3, 5, 10), (3, 5, 3), 0.0)

    """
    get = logs.__getitem__ if isinstance(logs, Mapping) else logs.__getattribute__
    stamp, table = get("timestamp_ms"), get("table_id")
    gap_s = np.diff(stamp, axis=1, prepend=stamp[:, :1]) / 1000.0
    switched = np.diff(table, axis=1, prepend=table[:, :1]) != 0
    numeric = np.stack([
        np.log1p(get("bet_frac")), get("strength"), get("difficulty"),
        np.log(get("time_to_act_ms")), get("click_dx"), get("click_dy"),
        np.log1p(get("path_px")), np.log1p(get("straight_px")), np.log1p(gap_s),
        switched.astype(float),
    ], axis=-1)
    categorical = np.stack([get("street"), get("position"), get("action")],
                           axis=-1).astype(np.int64)
    return numeric, categorical


def player_records(logs: PokerLogs) -> list[dict[str, Any]]:
    """One record per player, in ``logs`` order: the session's actions as the client logs them.

    Example:
        >>> from guardrail.recipes.bot.generator import generate_logs
        >>> action = player_records(generate_logs(n_players=2, n_actions=3))[0]["actions"][0]
        >>> list(action) == list(ACTION_FIELDS), type(action["table_id"]).__name__
        (True, 'int')

    """
    names = {f: np.asarray(v, dtype=object)[getattr(logs, f)]
             for f, v in VOCABULARIES.items()}  # [P, T] of level names
    columns = [(names[f] if f in names else getattr(logs, f)).tolist() for f in ACTION_FIELDS]
    return [{"actions": [dict(zip(ACTION_FIELDS, values, strict=True))
                         for values in zip(*(c[p] for c in columns), strict=True)]}
            for p in range(len(logs.label))]


class BotPreprocessor(Preprocessor):
    """A player's action list -> ``(x_num [N, T, 10] float32, x_cat [N, T, 3] int64)``.

    Args:
        n_actions: Actions per session the model was trained on (every record has as many).
        mean: Per-feature mean of :func:`action_features` over the training players' actions.
        std: Their standard deviation (1 where a feature is constant in training).

    The model's output is a logit; :meth:`predictions` answers the probability that the player
    is a bot.
    """

    kinds = {"actions": "sequence"}

    def __init__(self, n_actions: int, mean: Sequence[float], std: Sequence[float]) -> None:
        self.n_actions = int(n_actions)
        self.mean, self.std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)

    @classmethod
    def fit(cls, records: Sequence[Record]) -> BotPreprocessor:
        """Fitted on the training players' records (means and deviations of the features)."""
        numeric, _ = action_features(_arrays(records, None))
        flat = numeric.reshape(-1, numeric.shape[-1])  # [P_train * T, F]
        mean, std = flat.mean(0), flat.std(0)
        return cls(numeric.shape[1], mean, np.where(std > 0, std, 1.0))

    def transform(self, records: Sequence[Record]) -> tuple[torch.Tensor, ...]:
        """``(x_num float32 [N, T, 10], x_cat int64 [N, T, 3])``, standardised by training."""
        numeric, categorical = action_features(_arrays(records, self.n_actions))
        x_num = ((numeric - self.mean) / self.std).astype(np.float32)
        return torch.from_numpy(x_num), torch.from_numpy(categorical)

    def predictions(self, output: torch.Tensor) -> list[float]:
        """The probability that each record's player is a bot (the model gives logits)."""
        return torch.sigmoid(output.detach().cpu().float().reshape(-1)).tolist()

    def state_dict(self) -> dict[str, Any]:
        """Session length, per-feature means and deviations."""
        return {"n_actions": self.n_actions, "features": list(NUMERIC),
                "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> BotPreprocessor:
        """The preprocessor :meth:`state_dict` describes."""
        return cls(state["n_actions"], state["mean"], state["std"])


def _arrays(records: Sequence[Record], n_actions: int | None) -> dict[str, np.ndarray]:
    """The records' actions as ``[P, T]`` arrays per field: float64, or int64 level codes.

    Raises:
        DataError: A record has no list of action objects, a session length other than
            ``n_actions`` (or than the first record's), a missing field, a value that is no
            number, or a street, position or action the game does not have.
    """
    actions = []
    for i, record in enumerate(records):
        acts = record.get("actions") if isinstance(record, Mapping) else None
        if not isinstance(acts, list):
            raise DataError(_NO_ACTIONS.format(i=i))
        want = n_actions if n_actions is not None else len(actions[0]) if actions else len(acts)
        if len(acts) != want or len(acts) < 2:
            raise DataError(f"BOT record {i} has {len(acts)} actions; the model takes sessions "
                            f"of {max(want, 2)} actions (`data.n_actions`).")
        actions.append(acts)
    flat = [a for acts in actions for a in acts]  # [P * T] action objects
    try:
        numbers = [_NUMBERS(a) for a in flat]
        levels = [_LEVELS(a) for a in flat]
    except (KeyError, TypeError) as err:  # TypeError: an action that is no object
        i = next(i for i, acts in enumerate(actions) if not all(
            isinstance(a, Mapping) and all(f in a for f in ACTION_FIELDS) for a in acts))
        if isinstance(err, TypeError):
            raise DataError(_NO_ACTIONS.format(i=i)) from None
        raise DataError(f"BOT record {i} has an action without {err.args[0]!r}; every action "
                        f"carries {', '.join(ACTION_FIELDS)}.") from None
    try:
        numeric = np.array(numbers, dtype=np.float64).reshape(len(flat), len(_NUMERIC_FIELDS))
        bad = np.argwhere(~np.isfinite(numeric))
        field = _NUMERIC_FIELDS[int(bad[0, 1])] if len(bad) else None
    except (TypeError, ValueError):  # text, a list or an object where a number belongs
        field = next(f for row in numbers for f, v in zip(_NUMERIC_FIELDS, row, strict=True)
                     if not isinstance(v, int | float))
    if field is not None:
        raise DataError(f"BOT records: an action's {field} is not a finite number (null, "
                        "text or NaN); send the numbers as the client logs them.")
    shape = (len(actions), len(flat) // max(len(actions), 1))
    arrays = {f: numeric[:, j].reshape(shape) for j, f in enumerate(_NUMERIC_FIELDS)}
    for j, field in enumerate(CATEGORICAL):
        codes = _CODES[field]
        try:
            arrays[field] = np.array([codes[row[j]] for row in levels],
                                     dtype=np.int64).reshape(shape)
        except (KeyError, TypeError):
            bad = next(row[j] for row in levels if not isinstance(row[j], str)
                       or row[j] not in codes)
            raise DataError(f"BOT records: {field} {bad!r} is not one of the game's "
                            f"{', '.join(VOCABULARIES[field])}; the model has no code for "
                            "it.") from None
    return arrays


_NO_ACTIONS = ("BOT record {i} has no 'actions' list of objects (one per decision, with "
               + ", ".join(ACTION_FIELDS) + ").")
_NUMERIC_FIELDS = tuple(f for f in ACTION_FIELDS if f not in CATEGORICAL)
_NUMBERS, _LEVELS = operator.itemgetter(*_NUMERIC_FIELDS), operator.itemgetter(*CATEGORICAL)
_CODES = {f: {level: c for c, level in enumerate(v)} for f, v in VOCABULARIES.items()}
