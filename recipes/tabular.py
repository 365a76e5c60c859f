"""Tabular encoding shared by the recipes (EST, CCF, RET): fitted on training rows only.

:class:`Encoding` turns named columns into the networks' ``(x_num, x_cat)`` inputs;
:func:`one_hot_design` turns those into the design matrix of a linear baseline (logistic or
ridge regression), so a baseline sees the same encoded inputs as the network.

Example:
    >>> import pandas as pd
    >>> enc = Encoding.fit(pd.DataFrame({"x": [1.0, 3.0], "c": ["a", None]}), ["x"], ["c"])
    >>> enc.cardinalities
    [3]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from guardrail.errors import DataError

UNKNOWN = 0  # embedding index of categories never seen in training rows
MISSING = "<missing>"  # a NaN category (e.g. no masonry veneer) is a level of its own


@dataclasses.dataclass
class Encoding:
    """Feature encoding fitted on training rows only (no statistic sees validation or test).

    Numeric columns: ``log1p`` for ``log_features``, then standardised by training mean/std.
    Categorical columns: code ``UNKNOWN`` (0) for levels unseen in training, 1.. otherwise.

    Example:
        >>> train = pd.DataFrame({"area": [1.0, 3.0], "kind": ["a", "b"]})
        >>> enc = Encoding.fit(train, ["area"], ["kind"])
        >>> x_num, x_cat = enc.transform(pd.DataFrame({"area": [2.0], "kind": ["z"]}))
        >>> x_num.tolist(), x_cat.tolist()
        ([[0.0]], [[0]])

    """

    numeric: list[str]
    categorical: list[str]
    log_features: list[str]
    mean: np.ndarray  # [n_num], after log1p
    std: np.ndarray  # [n_num]
    vocab: dict[str, dict[str, int]]  # column -> level -> code (1..)

    @classmethod
    def fit(cls, train: pd.DataFrame, numeric: list[str], categorical: list[str],
            log_features: Sequence[str] = ()) -> Encoding:
        """Fit means, standard deviations and vocabularies on ``train``."""
        enc = cls(numeric, categorical, [c for c in log_features if c in numeric],
                  np.zeros(len(numeric)), np.ones(len(numeric)), {})
        raw = enc._numeric(train)  # [N_train, n_num]
        enc.mean, std = raw.mean(0), raw.std(0)
        enc.std = np.where(std > 0, std, 1.0)  # a column constant in training stays finite
        for col in categorical:
            levels = sorted(set(_levels(train[col])))
            enc.vocab[col] = {level: i + 1 for i, level in enumerate(levels)}
        return enc

    @property
    def cardinalities(self) -> list[int]:
        """Embedding rows per categorical column, the unknown index included."""
        return [len(self.vocab[c]) + 1 for c in self.categorical]

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(x_num float32 [N, n_num], x_cat int64 [N, n_cat])`` of ``frame``."""
        x_num = ((self._numeric(frame) - self.mean) / self.std).astype(np.float32)
        codes = [[self.vocab[c].get(v, UNKNOWN) for v in _levels(frame[c])]
                 for c in self.categorical]
        x_cat = np.array(codes, dtype=np.int64).T.reshape(len(frame), len(self.categorical))
        return x_num, x_cat

    def _numeric(self, frame: pd.DataFrame) -> np.ndarray:
        values = frame[self.numeric].astype(float)
        bad = {c: int(n) for c, n in values.isna().sum().items() if n}
        if bad:
            raise DataError(
                f"Numeric feature columns contain NaN (column: count {bad}); the recipe does "
                f"not impute. Leave {next(iter(bad))!r} out of the features (`data.exclude` or "
                "`data.features`), or clean the data."
            )
        for col in self.log_features:
            if (values[col] < 0).any():
                raise DataError(f"Column {col!r} has negative values, so log1p is undefined; "
                                f"remove it from `data.log_features`.")
            values[col] = np.log1p(values[col])
        return values.to_numpy(float)


def one_hot_design(x_num: np.ndarray, x_cat: np.ndarray,
                   cardinalities: Sequence[int]) -> np.ndarray:
    """``[N, n_num + sum(cardinalities)]``: numeric columns, then each category one-hot.

    Args:
        x_num: ``[N, n_num]`` encoded numeric columns (:meth:`Encoding.transform`).
        x_cat: ``[N, n_cat]`` category codes, column ``j`` in ``[0, cardinalities[j])``.
        cardinalities: Levels per categorical column, the unknown code included.

    Example:
        >>> one_hot_design(np.array([[0.5], [1.5]]), np.array([[0], [2]]), [3]).tolist()
        [[0.5, 1.0, 0.0, 0.0], [1.5, 0.0, 0.0, 1.0]]

    """
    x_cat = np.asarray(x_cat).reshape(len(x_num), len(cardinalities))
    return np.hstack([x_num, *(np.eye(k)[x_cat[:, j]] for j, k in enumerate(cardinalities))])


def _levels(column: pd.Series) -> list[str]:
    return [MISSING if pd.isna(v) else str(v) for v in column]
