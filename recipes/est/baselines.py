"""EST baselines a valuation network must beat: neighbourhood medians, ridge regression.

Both are fitted on the training sales only and scored on the test sales by :func:`scores`
(``rmse_log``, ``mae_usd``: the module's metrics); the datamodule's ``compute_baselines`` puts
them together.

Example:
    >>> round(scores(np.log([100.0, 200.0]), np.log([100.0, 250.0]))["mae_usd"], 6)
    25.0

"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


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
