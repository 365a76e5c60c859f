"""Membership inference: whether an attacker can tell the records a model was trained on.

Two attacks on per-example losses, members (the training split) against non-members (records
the model never saw):

- the **loss threshold** (Yeom et al. 2018): a low loss says "member";
- a **calibrated per-example** attack (LiRA, Carlini et al. 2022), with reference models each
  trained on a random half of members and non-members together: for every example, how its
  loss under the target model compares with its loss under the reference models that did and
  did not train on it (one global variance per side, as LiRA advises for few references). An
  example that is easy for every model stops looking like a member; one the target model alone
  fits stands out.

Both are judged as Carlini et al. ask, by the true-positive rate at a low false-positive rate
(0.1%, 1%), not by AUC alone; :func:`attack_metrics` gives each with a bootstrap interval.
``privacy.membership_risk`` (:func:`membership_findings`) is a warning when the interval of the
stronger attack's TPR at 1% FPR lies above ``tpr_ratio`` times that FPR.

Example:
    >>> rng = np.random.default_rng(0)
    >>> members, others = rng.exponential(0.2, 2000), rng.exponential(0.6, 2000)
    >>> m = attack_metrics(-members, -others, seed=0)  # lower loss: higher score
    >>> round(m["auc"], 2), m["tpr"]["0.01"] > 0.01
    (0.75, True)

"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from guardrail.findings import Finding, Severity
from guardrail.thresholds import Thresholds, limit

__all__ = ["FPRS", "MembershipThresholds", "attack_metrics", "confidence", "lira_scores",
           "membership_findings", "roc_auc", "tpr_at_fpr"]

FPRS = (0.001, 0.01)


@dataclasses.dataclass(frozen=True)
class MembershipThresholds(Thresholds):
    """When the membership audit warns.

    Example:
        >>> MembershipThresholds().tpr_ratio
        3.0

    """

    tpr_ratio: float = limit(
        3.0, "privacy.membership_risk", "lower bound of the TPR at 1% FPR, as a multiple of "
        "1%, above which members are exposed (a model that leaks nothing has TPR = FPR)",
        low=1, open_low=True, shown="3x")
    interval: float = limit(
        0.9, "privacy.membership_risk", "coverage of the bootstrap interval whose lower bound "
        "is judged", low=0, high=1, open_low=True)


def roc_auc(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """Probability that a member outscores a non-member (ties count half).

    Example:
        >>> roc_auc(np.array([3.0, 2.0]), np.array([1.0, 2.0]))
        0.875

    """
    n, m = len(members), len(nonmembers)
    if not n or not m:
        return float("nan")
    scores = np.concatenate([members, nonmembers])
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]  # 1-based, ties share their mean
    return float((ranks[:n].sum() - n * (n + 1) / 2) / (n * m))


def tpr_at_fpr(members: np.ndarray, nonmembers: np.ndarray, fpr: float) -> float:
    """Share of members scored above the threshold that only ``fpr`` of non-members pass.

    Example:
        >>> tpr_at_fpr(np.arange(10.0), np.arange(100.0) / 20, 0.01)  # above 4.9
        0.5

    """
    if not len(members) or not len(nonmembers):
        return float("nan")
    allowed = int(np.floor(fpr * len(nonmembers)))  # non-members the threshold may let through
    ranked = np.sort(nonmembers)[::-1]
    threshold = ranked[allowed] if allowed < len(ranked) else -np.inf
    return float((members > threshold).mean())


def attack_metrics(members: np.ndarray, nonmembers: np.ndarray, fprs: Sequence[float] = FPRS,
                   bootstrap: int = 200, interval: float = 0.9, seed: int = 0) -> dict[str, Any]:
    """AUC and TPR at each FPR, each with a bootstrap interval (both groups resampled).

    Args:
        members: Attack scores of members (higher: more likely a member).
        nonmembers: Attack scores of non-members.
        fprs: False-positive rates the TPR is read at.
        bootstrap: Resamples.
        interval: Coverage of the percentile intervals.
        seed: Seed of the resampling.

    """
    members, nonmembers = np.asarray(members, float), np.asarray(nonmembers, float)
    rng = np.random.default_rng(seed)
    point = {"auc": roc_auc(members, nonmembers),
             **{str(f): tpr_at_fpr(members, nonmembers, f) for f in fprs}}
    draws: dict[str, list[float]] = {k: [] for k in point}
    for _ in range(bootstrap):
        a = members[rng.integers(0, len(members), len(members))]
        b = nonmembers[rng.integers(0, len(nonmembers), len(nonmembers))]
        draws["auc"].append(roc_auc(a, b))
        for f in fprs:
            draws[str(f)].append(tpr_at_fpr(a, b, f))
    tail = (1 - interval) / 2 * 100

    def bounds(key: str) -> list[float]:
        return [round(float(np.percentile(draws[key], q)), 6) for q in (tail, 100 - tail)]

    return {"auc": round(point["auc"], 6), "auc_interval": bounds("auc"),
            "tpr": {str(f): round(point[str(f)], 6) for f in fprs},
            "tpr_interval": {str(f): bounds(str(f)) for f in fprs},
            "members": len(members), "nonmembers": len(nonmembers), "interval": interval}


def confidence(losses: np.ndarray, task: str | None) -> np.ndarray:
    """LiRA's statistic: the logit of the true label's probability, from a log-loss.

    For a classifier the loss is ``-log p``, and ``log(p / (1 - p)) = -log(expm1(loss))``
    is close to Gaussian across models; any other loss is used negated.

    Example:
        >>> confidence(np.array([np.log(2)]), "binary").round(6)  # p = 0.5
        array([-0.])

    """
    losses = np.asarray(losses, float)
    if task in ("binary", "multiclass"):
        return -np.log(np.expm1(np.clip(losses, 1e-12, 50.0)))
    return -losses


def lira_scores(target: np.ndarray, references: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Per-example log likelihood ratio of "member" against "non-member" (online LiRA).

    Args:
        target: ``[N]`` the target model's statistic (:func:`confidence`) per example.
        references: ``[K, N]`` each reference model's statistic.
        inside: ``[K, N]`` whether reference ``k`` trained on example ``n``.

    Examples with no reference on one side take that side's mean over all examples; the
    variances are global (one per side), which LiRA recommends for few references.

    Example:
        >>> refs = np.array([[2.1, 0.1], [1.9, -0.1], [0.1, 2.1], [-0.1, 1.9]])
        >>> inside = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], bool)
        >>> lira_scores(np.array([2.0, 0.0]), refs, inside).round(2)  # a member, a non-member
        array([ 100., -100.])

    """
    target, references = np.asarray(target, float), np.asarray(references, float)
    inside = np.asarray(inside, bool)

    def side(mask: np.ndarray) -> tuple[np.ndarray, float]:
        count = mask.sum(0)
        total = np.where(mask, references, 0.0).sum(0)
        overall = total.sum() / max(count.sum(), 1)
        mean = np.where(count > 0, total / np.maximum(count, 1), overall)
        spread = np.where(mask, references - mean, 0.0)
        var = (spread ** 2).sum() / max(count.sum() - (count > 0).sum(), 1)
        return mean, max(float(var), 1e-6)

    mu_in, var_in = side(inside)
    mu_out, var_out = side(~inside)
    return (-(target - mu_in) ** 2 / (2 * var_in) - 0.5 * np.log(var_in)
            + (target - mu_out) ** 2 / (2 * var_out) + 0.5 * np.log(var_out))


def membership_findings(attacks: Mapping[str, Mapping[str, Any]],
                        thresholds: MembershipThresholds | None = None) -> list[Finding]:
    """``privacy.membership_risk`` (warning) when an attack's TPR at 1% FPR is well above 1%.

    ``attacks`` maps an attack's name (``loss``, ``lira``) to :func:`attack_metrics`.
    """
    t = thresholds or MembershipThresholds()
    fpr = "0.01"
    judged = {name: m for name, m in attacks.items() if fpr in m.get("tpr", {})}
    if not judged:
        return []
    name, m = max(judged.items(), key=lambda item: item[1]["tpr_interval"][fpr][0])
    low, high = m["tpr_interval"][fpr]
    if low <= t.tpr_ratio * float(fpr):
        return []
    return [Finding(
        "privacy.membership_risk", Severity.WARNING,
        f"The {name} attack tells training records from unseen ones: at 1% false positives it "
        f"finds {m['tpr'][fpr]:.1%} of the members ({low:.1%}-{high:.1%}), "
        f"{m['tpr'][fpr] / float(fpr):.0f}x what a model that memorised nothing allows; "
        f"AUC {m['auc']:.3f}.",
        where=name,
        evidence={"attack": name, "tpr_at_1pct_fpr": m["tpr"][fpr],
                  "interval": [low, high], "auc": m["auc"], "members": m["members"],
                  "nonmembers": m["nonmembers"], "threshold": t.tpr_ratio * float(fpr)},
        hint="The model memorises individual records: regularise (weight decay, dropout, "
             "fewer epochs, early stopping), train on more data, or train with differential "
             "privacy before it ships.")]
