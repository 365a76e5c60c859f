"""Judge an explanation (the result of :func:`guardrail.attribution.explain`).

Rules, each a documented heuristic with the evidence behind its threshold:

- ``attribution.sanity_failed`` (warning): the model-parameter randomisation test
  (Adebayo et al. 2018). The trained model's attributions are compared (Spearman over
  samples x input elements) with those of re-initialised copies, and the copies with each
  other. Explanations driven by the input alone (edges, magnitudes) look alike for any
  weights, so two random copies already agree somewhat; an explanation that is no further
  from a random copy than random copies are from each other (``margin``), or that keeps
  more than ``max_similarity`` of its ranking (the paper's 0.5), does not show what the
  model learned. Measured on MLPs over 10 features, 3 seeds each: trained 0.25-0.30 against
  0.45-0.49 between copies; untrained 0.51-0.67.
- ``attribution.methods_disagree`` (warning): permutation importance and Integrated
  Gradients rank the features with Spearman below ``min_agreement`` (over at least
  ``min_features`` features); or, for grids, IG and occlusion heat maps do.
- ``attribution.incomplete`` (info): IG's attributions miss what they should add up to by
  more than ``max_completeness_error`` (raise ``n_steps``).
- ``attribution.low_support`` (info): explained samples far from all training samples
  (beyond the 95th percentile of training rows' own neighbour distances) or with ids or
  categories training never saw: their predictions, and explanations, stand on little data.
- ``attribution.skipped`` (info): what could not be attributed, and why.

Example:
    >>> sanity = {"method": "integrated_gradients", "similarity_to_randomised": 0.62,
    ...           "similarity_between_randomised": 0.47, "output_change": 1.2}
    >>> [f.check for f in attribution_findings({"sanity": sanity, "skipped": []})]
    ['attribution.sanity_failed']
    >>> sanity.update(similarity_to_randomised=0.28)
    >>> attribution_findings({"sanity": sanity, "skipped": []})
    []

"""

from __future__ import annotations

from typing import Any

from guardrail.findings import Finding, Severity


def sanity_passed(sanity: dict[str, Any], max_similarity: float = 0.5,
                  margin: float = 0.05) -> bool | None:
    """The randomisation test's verdict (None when it has no figures)."""
    to_random = sanity.get("similarity_to_randomised")
    between = sanity.get("similarity_between_randomised")
    if to_random is None:
        return None
    if to_random > max_similarity:
        return False
    return between is None or to_random < between - margin


def attribution_findings(
    result: dict[str, Any], *, max_similarity: float = 0.5, margin: float = 0.05,
    min_agreement: float = 0.2, min_features: int = 5, max_completeness_error: float = 0.05,
) -> list[Finding]:
    """Findings for one explanation; see the module docstring for each rule."""
    out = []
    sanity = result.get("sanity")
    if sanity and sanity_passed(sanity, max_similarity, margin) is False:
        out.append(Finding(
            "attribution.sanity_failed", Severity.WARNING,
            "The explanation barely depends on what the model learned: with every weight "
            "re-initialised, attributions rank the inputs with Spearman "
            f"{sanity['similarity_to_randomised']:.2f} to the trained model's "
            f"({sanity.get('similarity_between_randomised')} between two random copies). "
            "Do not base decisions on it.",
            where=sanity.get("method"), evidence=dict(sanity),
            hint="Check that the model beats its baseline; an explanation of a model that "
                 "learned little describes its inputs, not its reasoning."))
    agreement = result.get("agreement") or {}
    rho, compared = agreement.get("features"), agreement.get("features_compared", 0)
    if rho is not None and compared >= min_features and rho < min_agreement:
        out.append(_disagree(f"permutation importance and Integrated Gradients rank the "
                             f"{compared} features with Spearman {rho:.2f}", "features", rho))
    pixels = agreement.get("pixels")
    if pixels is not None and pixels < min_agreement:
        out.append(_disagree(f"IG and occlusion heat maps agree with median Spearman "
                             f"{pixels:.2f} over pixels", "pixels", pixels))
    ig = result.get("methods", {}).get("integrated_gradients") or {}
    error = ig.get("completeness_error")
    if error is not None and error > max_completeness_error:
        out.append(Finding(
            "attribution.incomplete", Severity.INFO,
            f"Integrated Gradients' attributions miss {error:.0%} of the output change they "
            "should add up to.", where="integrated_gradients",
            evidence={"completeness_error": error},
            hint="Raise `guardrails.callbacks.attribution.n_steps`."))
    local = result.get("local") or []
    weak = [row["sample"] for row in local if not row.get("supported", True)]
    if weak:
        out.append(Finding(
            "attribution.low_support", Severity.INFO,
            f"{len(weak)} of {len(local)} explained samples lie where training data was "
            "sparse (farther from it than 95% of training samples are from theirs, or with "
            "ids or categories never seen in training): their predictions and explanations "
            "are unreliable.", where=None, evidence={"samples": weak[:20], "count": len(weak)},
            hint="See the per-sample table in report.html; collect data where they lie."))
    for reason in result.get("skipped", []):
        out.append(Finding("attribution.skipped", Severity.INFO, f"Not attributed: {reason}.",
                           where=None, hint="The rest of the report stands."))
    return out


def _disagree(what: str, where: str, rho: float) -> Finding:
    return Finding(
        "attribution.methods_disagree", Severity.WARNING,
        f"Two attribution methods disagree: {what}; neither ranking is reliable alone.",
        where=where, evidence={"spearman": rho},
        hint="Read the two rankings side by side; features both put on top are the safe "
             "conclusions. Strong interactions or correlated features make methods disagree.")
