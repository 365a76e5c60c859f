"""The run report's Privacy section, from the run's ``privacy.json`` (``PrivacyGuard``).

What the personal-data scan found, the re-identification risk and the generalisations that
lower it, the DP budget spent and what it cost, and the membership attacks' figures.
"""

from __future__ import annotations

from typing import Any

from guardrail.report.text import escape as _e
from guardrail.report.text import table


def _utility(audit: dict[str, Any]) -> str:
    cost = audit.get("utility")
    if not cost:
        return (" The utility cost: compare the test metrics above with the same run without "
                "DP (guardrail diff), or audit it (privacy=audit) to measure it here.")
    return (f" The utility cost, measured by the audit: the unseen records' mean loss is "
            f"{cost['private_loss']:.4f} under this model and {cost['nonprivate_loss']:.4f} "
            "under the same model trained on the same data without DP.")


def privacy_section(privacy: dict[str, Any] | None) -> str:
    """'Privacy': the declared roles, personal data found, re-identification risk, the audit.

    ``privacy`` is the run's ``privacy.json`` (written by ``PrivacyGuard``); '' without one.

    Example:
        >>> html = privacy_section({"roles": {"quasi_identifiers": ["city"]}, "scan": {
        ...     "scanned": 10, "total": 10, "fields": {"note": 10}, "matches": [{
        ...         "field": "note", "pattern": "email", "records": 2, "example": "a@b.se"}]}})
        >>> "a@b.se" in html and "city" in html
        True

    """
    if not privacy:
        return ""
    roles = privacy.get("roles") or {}
    parts = ["<p>" + _e("; ".join(f"{role.replace('_', ' ')}: {', '.join(fields) or 'none'}"
                                  for role, fields in roles.items())) + ".</p>"]
    scan = privacy.get("scan")
    if scan:
        found = scan.get("matches") or []
        parts.append(f"<h3>Personal data in the training records</h3><p>{scan['scanned']:,}"
                     f" of {scan['total']:,} records scanned, {len(scan.get('fields', {}))} "
                     f"string field(s): {'nothing found' if not found else 'found'}.</p>")
        if found:
            parts.append(table(("field", "pattern", "records", "example (redacted)"),
                                [(m["field"], m["pattern"].replace("_", " "), m["records"],
                                  m["example"]) for m in found]))
    risk = privacy.get("anonymity")
    if risk:
        l_part = f", l-diversity {risk['l']}" if "l" in risk else ""
        parts.append(
            f"<h3>Re-identification risk</h3><p>Over {_e(', '.join(risk['quasi_identifiers']))}"
            f": k = {risk['k']} (target {risk['target_k']}){_e(l_part)}; {risk['below_k']:,} of "
            f"{risk['records']:,} records in classes under the target, {risk['unique']:,} "
            f"unique.</p>")
        options = risk.get("generalisations") or []
        if options:
            parts.append(table(("generalisation", "k reached", "records under target",
                                 "classes left"),
                                [("; ".join(g["changes"]) or "(none)", g["k"],
                                  f"{g['below_k']:.2%}", g["classes"]) for g in options]))
    dp = privacy.get("dp")
    if dp and dp.get("epsilon") is not None:
        per_epoch = ", ".join(f"{e['epsilon']:.2f}" for e in dp.get("per_epoch", []))
        parts.append(
            f"<h3>Differential privacy</h3><p>Trained with DP-SGD: <strong>ε = "
            f"{dp['epsilon']:.2f}</strong> at δ = {dp['delta']:.2g} after {dp['steps']:,} steps"
            f" (noise multiplier {dp['noise_multiplier']:.3f}, per-example clipping norm "
            f"{dp['max_grad_norm']:g}, Poisson sampling rate {dp['sample_rate']:.4f}). ε after "
            f"each epoch: {_e(per_epoch)}.{_e(_utility(privacy.get('audit') or {}))}</p>")
    audit = privacy.get("audit")
    if audit:
        rows = []
        for name, m in audit["attacks"].items():
            low, high = m["tpr_interval"]["0.01"]
            rows.append((name, f"{m['auc']:.3f} ({m['auc_interval'][0]:.3f}-"
                               f"{m['auc_interval'][1]:.3f})", f"{m['tpr']['0.001']:.2%}",
                         f"{m['tpr']['0.01']:.2%} ({low:.2%}-{high:.2%})"))
        parts.append(
            f"<h3>Membership inference</h3><p>{audit['records']:,} training records against "
            f"{audit['records']:,} test records; mean loss {audit['member_loss']:.4f} against "
            f"{audit['nonmember_loss']:.4f}; {audit['references']} reference model(s) of "
            f"{audit['reference_epochs']} epoch(s). A model that memorised nothing has a true-"
            "positive rate equal to the false-positive rate.</p>"
            + table(("attack", "AUC (90%)", "TPR at 0.1% FPR", "TPR at 1% FPR (90%)"), rows))
    return "".join(parts)
