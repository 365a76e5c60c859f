"""Tabular encoding shared by the recipes (EST, CCF, RET): fitted on training rows only.

:class:`~guardrail.preprocess.Encoding` (re-exported here) turns named columns into the
networks' ``(x_num, x_cat)`` inputs;
:func:`one_hot_design` turns those into the design matrix of a linear baseline (logistic or
ridge regression), so a baseline sees the same encoded inputs as the network.

Example:
    >>> import pandas as pd
    >>> enc = Encoding.fit(pd.DataFrame({"x": [1.0, 3.0], "c": ["a", None]}), ["x"], ["c"])
    >>> enc.cardinalities
    [3]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from guardrail.preprocess import Encoding

__all__ = ["Encoding", "one_hot_design"]


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
