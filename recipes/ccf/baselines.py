"""CCF baselines the fraud model must beat: the training prior, a rule set, logistic regression.

Fitted on the training split only and scored by the module's own metrics
(:func:`~guardrail.recipes.ccf.metrics.score_predictions`); the datamodule's
``compute_baselines`` puts them together.

Example:
    >>> import numpy as np
    >>> x, y = np.array([[-2.0], [-1.0], [1.0], [2.0]]), np.array([0, 0, 1, 1])
    >>> w, b = fit_logistic_regression(x, y)
    >>> score_predictions(x @ w + b, y)["average_precision"]
    1.0

"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from guardrail.recipes.ccf.metrics import score_predictions

__all__ = ["ROLES", "fit_logistic_regression", "rule_set_scores", "score_predictions"]

# A hand-written credit rule set, the kind a model replaces: one red flag per rule.
RULE_GRADES = ("D", "E", "F", "G")  # Lending Club's subprime grades
RULE_INT_RATE = 15.0  # interest rate, %, at or above which a loan is flagged
RULE_DEBT_TO_INCOME = 0.5  # (loan + installment balances) / annual income
ROLES = {"training_prior": "trivial", "rule_set": "trivial", "logistic_regression": "reference"}


def fit_logistic_regression(
    x: np.ndarray, y: np.ndarray, l2: float = 1e-2, max_iter: int = 500
) -> tuple[np.ndarray, float]:
    """Weights and intercept of L2-penalised logistic regression, by full-batch L-BFGS (float64).

    Minimises ``mean BCE(x @ w + b, y) + l2 * ||w||^2`` (intercept unpenalised, no class
    weights): the textbook baseline, fitted on whatever rows it is given (the training split).

    Example:
        >>> x = np.array([[-2.0], [-1.0], [1.0], [2.0]])
        >>> w, b = fit_logistic_regression(x, np.array([0, 0, 1, 1]))
        >>> bool(w[0] > 0)
        True

    """
    xt, yt = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    w = torch.zeros(xt.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=max_iter, tolerance_grad=1e-10,
                                  tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt)
        loss = loss + l2 * w.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach().numpy(), float(b.detach())


def rule_set_scores(frame: pd.DataFrame) -> np.ndarray:
    """Red flags per Lending Club loan (0-3): subprime grade, high rate, debt above half of income.

    The rules are fixed, not fitted: grade D or worse, interest rate of 15 % or more, and the
    loan plus installment balances at half the annual income or more. The flag count is a
    monotone score (more flags, riskier), so average precision and recall at 1 % false
    positives are defined for it; its many ties are the rule set's coarseness.

    Example:
        >>> loans = pd.DataFrame({"sub_grade": ["A1", "E3"], "int_rate": [6.0, 22.0],
        ...                       "funded_amnt": [5000, 30000], "total_bal_il": [0, 20000],
        ...                       "annual_inc": [80000.0, 60000.0]})
        >>> rule_set_scores(loans).tolist()
        [0.0, 3.0]

    """
    debt = (frame["funded_amnt"] + frame["total_bal_il"]) / frame["annual_inc"].clip(lower=1.0)
    flags = (frame["sub_grade"].astype(str).str[0].isin(RULE_GRADES).astype(int)
             + (frame["int_rate"] >= RULE_INT_RATE).astype(int)
             + (debt >= RULE_DEBT_TO_INCOME).astype(int))
    return flags.to_numpy(np.float64)
