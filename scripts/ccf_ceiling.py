"""How much a nonlinear model can gain over logistic regression on CCF's Lending Club data.

Usage:
    pip install scikit-learn   # not a guardrail dependency
    python scripts/ccf_ceiling.py

Five-fold stratified cross-validation at the natural bad-loan rate (5.25 %, 518 positives:
five times what the 1 % recipe has), on the recipe's encoding (one-hot categories, log1p of
the amounts, standardised): logistic regression against gradient-boosted trees. If the trees
cannot beat the linear model with all the positives, an MLP at 1 % cannot be expected to.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd


def main() -> int:
    """Print mean average precision and AUROC of both models over the folds."""
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import average_precision_score, roc_auc_score
        from sklearn.model_selection import StratifiedKFold
    except ImportError:
        print("ccf_ceiling: needs scikit-learn (`pip install scikit-learn`).", file=sys.stderr)
        return 2
    from guardrail.recipes.ccf.data import DEFAULT_LOG, TARGET, load_lending_club

    frame = load_lending_club().drop(columns="_order")
    y = frame.pop(TARGET).to_numpy()
    x = pd.get_dummies(frame, dtype=float)
    for column in DEFAULT_LOG["lending_club"]:
        x[column] = np.log1p(x[column])
    x = ((x - x.mean()) / (x.std() + 1e-9)).to_numpy()
    models = {
        "logistic regression": lambda: LogisticRegression(C=0.1, max_iter=2000),
        "gradient-boosted trees": lambda: HistGradientBoostingClassifier(
            max_iter=300, learning_rate=0.05, max_leaf_nodes=15, random_state=0),
    }
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(x, y))
    print(f"{len(y)} loans, {y.sum()} bad ({y.mean():.2%}); 5-fold means:")
    for name, make in models.items():
        scores = []
        for train, test in folds:
            p = make().fit(x[train], y[train]).predict_proba(x[test])[:, 1]
            scores.append((average_precision_score(y[test], p), roc_auc_score(y[test], p)))
        ap, auroc = np.mean(scores, axis=0)
        print(f"  {name}: average precision {ap:.3f}, AUROC {auroc:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
