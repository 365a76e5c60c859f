"""Judge an explanation (the result of :func:`guardrail.attribution.explain`).

Rules, each a documented heuristic with the evidence behind its threshold:

- ``attribution.sanity_failed`` (warning; info when only the similarity fails): the
  model-parameter randomisation test
  (Adebayo et al. 2018). What the trained weights make of the inputs (mean |gradient| per
  input element, averaged along the IG path) is compared, by Spearman, with what
  re-initialised copies make of them; keeping more than ``max_similarity`` (the paper's 0.5)
  of its ranking, and at least as much as two random copies keep of each other's (what the
  architecture alone decides), means the explanation does not show what was learned. A
  model whose loss on the explained samples is above ``max_loss_ratio`` of its random
  copies' has learned nothing worth explaining either (a randomised model fails here).
  Measured on healthy recipes: EST -0.05, CCF 0.09, BOT -0.01, RET -0.07, WEA 0.05, OIL
  0.53 (its random copies 0.70: the patch geometry). The error compared is 1 - AUROC for
  binary tasks and the error rate for multiclass (an overconfident classifier's loss can
  exceed a random copy's while it ranks well), the loss otherwise; measured on up to 1024
  validation samples, seeds 0-2: EST 0.04-0.07, WEA 0.007-0.009, OIL 0.08-0.09, BOT
  0.06-0.09, CCF 0.45-0.81, RET 0.79-0.91 (RET's model ranks users little better than copies
  of it with random weights: AUROC 0.62). A warning needs the loss criterion (the model is at
  fault); similarity alone, on a model that predicts better than its random copies, is an
  info: healthy small CNNs, LSTMs and conv autoencoders of the fault suite reach 0.51-0.74
  through their architecture alone.
- ``attribution.methods_disagree`` (warning): permutation importance and Integrated
  Gradients rank the features with Spearman below ``min_agreement`` (over at least
  ``min_features`` features); for grids, IG and occlusion heat maps that disagree are an
  info, and a warning only where the randomisation test also blames the model.
- ``attribution.incomplete`` (info): IG's attributions miss what they should add up to by
  more than ``max_completeness_error`` (raise ``n_steps``).
- ``attribution.low_support`` (info): explained samples far from all training samples
  (beyond the 99th percentile of training rows' own neighbour distances) or with ids or
  categories training never saw: their predictions, and explanations, stand on little data.
- ``attribution.skipped`` (info): what could not be attributed, and why.

Every number these rules compare against is a field of :class:`AttributionThresholds`.

Example:
    >>> sanity = {"method": "gradients", "similarity_to_randomised": 0.12, "loss_ratio": 0.98}
    >>> [f.check for f in attribution_findings({"sanity": sanity, "skipped": []})]
    ['attribution.sanity_failed']
    >>> sanity.update(loss_ratio=0.2)
    >>> attribution_findings({"sanity": sanity, "skipped": []})
    []

"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guardrail.findings import Finding, Severity
from guardrail.thresholds import Thresholds, limit


@dataclass(frozen=True)
class AttributionThresholds(Thresholds):
    """What the attribution rules compare against; see the module docstring for the evidence.

    Example:
        >>> AttributionThresholds.coerce({"min_agreement": 0.3}).min_agreement
        0.3
        >>> AttributionThresholds(max_similarity=1.5)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        guardrail.errors.ConfigError: AttributionThresholds: max_similarity=1.5 must be in ...

    """

    max_similarity: float = limit(
        0.5, "attribution.sanity_failed", "largest Spearman between the trained model's "
        "gradient profile and a random copy's", low=-1, high=1, shown="0.5")
    max_loss_ratio: float = limit(
        0.9, "attribution.sanity_failed", "largest error the model may have, as a share of "
        "its random copies'", low=0, open_low=True, shown="0.9")
    min_agreement: float = limit(
        0.2, "attribution.methods_disagree", "Spearman between two methods' rankings below "
        "which they disagree", low=-1, high=1, shown="0.2")
    min_features: int = limit(
        5, "attribution.methods_disagree", "features both methods rank, at least, before "
        "their agreement is judged", low=3, integer=True, shown="5")
    max_completeness_error: float = limit(
        0.05, "attribution.incomplete", "share of the output change IG's attributions may "
        "miss", low=-1, shown="5%")
    max_support_percentile: float = limit(
        99.0, "attribution.low_support", "percentile of training rows' own neighbour "
        "distances beyond which an explained sample lacks support", low=0, high=100,
        shown="99%")


DEFAULTS = AttributionThresholds()


def sanity_passed(sanity: dict[str, Any],
                  thresholds: AttributionThresholds = DEFAULTS) -> bool | None:
    """The randomisation test's verdict (None when it has no figures).

    Example:
        >>> sanity_passed({"similarity_to_randomised": 0.7, "similarity_between_randomised": 0.8})
        True
        >>> sanity_passed({"similarity_to_randomised": 0.1, "loss_ratio": 0.95})
        False

    """
    similarity, ratio = sanity.get("similarity_to_randomised"), sanity.get("loss_ratio")
    between = sanity.get("similarity_between_randomised")
    if similarity is None and ratio is None:
        return None
    # Random copies of one architecture already agree where its shape decides (receptive
    # fields, pooling): only a similarity that is high and at least theirs counts against.
    alike = similarity is not None and similarity > thresholds.max_similarity and \
        (between is None or similarity >= between)
    return not (alike or (ratio is not None and ratio > thresholds.max_loss_ratio))


def skipped(what: str) -> Finding:
    """``attribution.skipped``: what was not attributed, and why (one builder for every caller).

    Example:
        >>> skipped("plots (no matplotlib)").message
        'Not attributed: plots (no matplotlib).'

    """
    return Finding("attribution.skipped", Severity.INFO, f"Not attributed: {what}.",
                   hint="The rest of the attribution report stands.")


def attribution_findings(result: dict[str, Any],
                         thresholds: AttributionThresholds = DEFAULTS) -> list[Finding]:
    """Findings for one explanation; see the module docstring for each rule."""
    t = thresholds
    out = []
    sanity = result.get("sanity")
    model_at_fault = False  # the model predicts no better than copies with random weights
    if sanity and sanity_passed(sanity, t) is False:
        similarity, ratio = sanity.get("similarity_to_randomised"), sanity.get("loss_ratio")
        model_at_fault = ratio is not None and ratio > t.max_loss_ratio
        if model_at_fault:
            out.append(Finding(
                "attribution.sanity_failed", Severity.WARNING,
                f"The explanation does not show what the model learned: its model predicts no "
                f"better than copies with random weights (error ratio {ratio:.2f}). Do not base "
                "decisions on it.", where=sanity.get("method"), evidence=dict(sanity),
                hint="Check that the model beats its baseline; an explanation of a model that "
                     "learned little describes its inputs, not its reasoning."))
        else:  # the model learned; the gradient method mostly shows the architecture
            out.append(Finding(
                "attribution.sanity_failed", Severity.INFO,
                f"Copies of the model with random weights rank the inputs much as the trained "
                f"model does (Spearman {similarity:.2f}), though the trained model predicts "
                "better: the gradient ranking shows what the architecture emphasises more than "
                "what training taught.", where=sanity.get("method"), evidence=dict(sanity),
                hint="Prefer the permutation ranking, which measures the trained model's "
                     "predictions directly."))
    agreement = result.get("agreement") or {}
    rho, compared = agreement.get("features"), agreement.get("features_compared", 0)
    if rho is not None and compared >= t.min_features and rho < t.min_agreement:
        out.append(_disagree(f"permutation importance and Integrated Gradients rank the "
                             f"{compared} features with Spearman {rho:.2f}", "features", rho,
                             Severity.WARNING))
    pixels = agreement.get("pixels")
    if pixels is not None and pixels < t.min_agreement:
        # Heat maps of two methods differ on healthy image models too (fault suite: a healthy
        # 2x-pooling CNN and a textbook conv autoencoder): a warning only with evidence that
        # the model, not the method pair, is at fault.
        out.append(_disagree(f"IG and occlusion heat maps agree with median Spearman "
                             f"{pixels:.2f} over pixels", "pixels", pixels,
                             Severity.WARNING if model_at_fault else Severity.INFO))
    ig = result.get("methods", {}).get("integrated_gradients") or {}
    error = ig.get("completeness_error")
    if error is not None and error > t.max_completeness_error:
        reduced = (result.get("budget") or {}).get("reduced", {}).get("n_steps")
        steps = reduced["to"] if reduced else (result.get("settings") or {}).get("n_steps")
        lowered = f" (lowered from {reduced['from']} by the time budget)" if reduced else ""
        out.append(Finding(
            "attribution.incomplete", Severity.INFO,
            f"Integrated Gradients' attributions miss {error:.0%} of the output change they "
            "should add up to.", where="integrated_gradients",
            evidence={"completeness_error": error, "n_steps": steps},
            hint=f"Integrated Gradients ran {steps} steps{lowered}; raise "
                 "`guardrails.callbacks.attribution.n_steps`" + (
                     " and `budget_share`" if lowered else "") + "."))
    local = result.get("local") or []
    weak = [row["sample"] for row in local if not supported(row, t)]
    if weak:
        out.append(Finding(
            "attribution.low_support", Severity.INFO,
            f"{len(weak)} of {len(local)} explained samples lie where training data was "
            f"sparse (farther from it than {t.max_support_percentile:g}% of training samples "
            "are from theirs, or with "
            "ids or categories never seen in training): their predictions and explanations "
            "are unreliable.", where=None, evidence={"samples": weak[:20], "count": len(weak)},
            hint="The per-sample table of the explanation names them; collect data where "
                 "they lie."))
    out.extend(skipped(reason) for reason in result.get("skipped", []))
    return out


def supported(row: dict[str, Any], thresholds: AttributionThresholds = DEFAULTS) -> bool:
    """Whether an explained sample (a row of ``result["local"]``) stands on training data.

    Example:
        >>> supported({"unseen_values": 0, "percentile": 99.5})
        False
        >>> supported({"unseen_values": 0, "percentile": 42.0})
        True

    """
    percentile = row.get("percentile")
    if percentile is None:
        return row.get("unseen_values", 0) == 0 and row.get("supported", True)
    return row.get("unseen_values", 0) == 0 and percentile <= thresholds.max_support_percentile


def _disagree(what: str, where: str, rho: float, severity: Severity) -> Finding:
    return Finding(
        "attribution.methods_disagree", severity,
        f"Two attribution methods disagree: {what}; neither ranking is reliable alone.",
        where=where, evidence={"spearman": rho},
        hint="Read the two rankings side by side; features both put on top are the safe "
             "conclusions. Strong interactions or correlated features make methods disagree.")
