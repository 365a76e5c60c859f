"""Feedback loops on a page: the loop's report.html and the feedback section of monitor.html.

:func:`feedback_section` shows what :meth:`guardrail.feedback.FeedbackMonitor.summary` measured
-- the anchoring estimate, the spread indicators round by round, each metric on influenced
against untouched data -- and :func:`render_loop` wraps it, with the rounds' metrics and the
findings, into the page ``python -m guardrail.loop`` writes as ``DIR/report.html``. Every
string from the data is escaped.

Example:
    >>> summary = {"anchoring": {"estimate": 0.31, "low": 0.22, "high": 0.4,
    ...                          "confidence": 0.95, "method": "holdout", "n": 2000},
    ...            "exposure": [], "metrics": {"rmse_log": {
    ...                "higher_is_better": False, "influenced": [0.1, 0.09],
    ...                "untouched": [0.14, 0.15]}}}
    >>> "0.31" in feedback_section(summary) and "rmse_log" in feedback_section(summary)
    True

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from guardrail.checks.feedback import SPREAD_INDICATORS
from guardrail.findings import Finding
from guardrail.io import write_text
from guardrail.report.html import findings_table, page
from guardrail.report.text import escape as _e
from guardrail.report.text import number as _num
from guardrail.report.text import table, tidy

__all__ = ["LOOP_HTML", "feedback_section", "render_loop", "write_loop_html"]

LOOP_HTML = "report.html"


def _anchoring(anchoring: Any) -> str:
    if not isinstance(anchoring, Mapping):
        return f"<p>Anchoring: {_e(anchoring)}.</p>" if anchoring else ""
    return ("<h3>Do new labels follow the model?</h3><p>Anchoring A (the share of a new label "
            "that is the served prediction; 0 when the world ignores the model): "
            f"<b>{_num(anchoring.get('estimate'))}</b>, "
            f"{_num(100 * float(anchoring.get('confidence') or 0.95))}% "
            f"interval {_num(anchoring.get('low'))} to {_num(anchoring.get('high'))} "
            f"({_e(anchoring.get('method'))} estimate on {_num(anchoring.get('n'))} "
            "records).</p>")


def _exposure(rounds: Sequence[Mapping[str, Any]]) -> str:
    if not rounds:
        return ""
    names = [n for n in SPREAD_INDICATORS if any(n in r for r in rounds)]
    rows = [[i + 1, *(r.get(n, "") for n in names)] for i, r in enumerate(rounds)]
    legend = "; ".join(f"{n}: {SPREAD_INDICATORS[n]}" for n in names)
    return ("<h3>Is what users see narrowing?</h3><p>Spread of each round's recommendations "
            f"(lower is more concentrated). {_e(legend)}.</p>" + table(["round", *names], rows))


def _metrics(metrics: Mapping[str, Mapping[str, Any]], round_label: str) -> str:
    out = []
    for name, m in metrics.items():
        better = "higher" if m.get("higher_is_better") else "lower"
        pairs = list(zip(m.get("influenced") or [], m.get("untouched") or [], strict=False))
        keys = m.get("rounds") or range(1, len(pairs) + 1)
        rows = [[k, a, b] for k, (a, b) in zip(keys, pairs, strict=False)]
        out.append(f"<h3>Is the model grading its own homework? <code>{_e(name)}</code></h3>"
                   f"<p>Per {_e(round_label)}, on data the model influenced against data it "
                   f"did not touch ({better} is better).</p>"
                   + table([round_label, "influenced", "untouched"], rows))
    return "".join(out)


def feedback_section(summary: Mapping[str, Any] | None, round_label: str = "round") -> str:
    """HTML for a :meth:`FeedbackMonitor.summary` (``""`` when there is nothing to show).

    ``round_label`` names a round (``"window"`` on monitor.html); notes of what was not judged
    (``self_evaluation``, ``anchoring_rows_left_out``) are shown as written.
    """
    if not summary:
        return ""
    if summary.get("skipped"):
        return f"<p>{_e(tidy(str(summary['skipped'])))}</p>"
    notes = "".join(f"<p>{_e(k.replace('_', ' ').capitalize())}: {_e(summary[k])}.</p>"
                    for k in ("self_evaluation", "anchoring_rows_left_out") if summary.get(k))
    return (_anchoring(summary.get("anchoring")) + _exposure(summary.get("exposure") or [])
            + _metrics(summary.get("metrics") or {}, round_label) + notes)


def render_loop(result: Mapping[str, Any]) -> str:
    """The page of one simulated loop (``loop.json``'s data).

    Example:
        >>> page = render_loop({"recipe": "est", "seed": 0, "loop": {"anchoring": 0.3},
        ...                     "rounds": [{"round": 1, "rmse_market": 0.14}],
        ...                     "summary": {}, "findings": []})
        >>> "rmse_market" in page and "No findings." in page
        True

    """
    findings = [Finding.from_dict(f) for f in result.get("findings") or []]
    rounds = list(result.get("rounds") or [])
    keys = [k for k in (rounds[0] if rounds else {}) if k != "round"]
    # one column per round, one row per measure: a page's width holds the rounds, not the
    # measures
    measures = table(["round", *(str(r.get("round", "")) for r in rounds)],
                   [[k, *(r.get(k, "") for r in rounds)] for k in keys]) \
        if rounds else "<p>No rounds.</p>"
    settings = table(["setting", "value"], sorted(
        (k, str(v)) for k, v in (result.get("loop") or {}).items()))
    title = f"guardrail loop: {result.get('recipe', '')}, seed {result.get('seed', '')}"
    verdict = (f"{len(findings)} feedback finding(s): "
               + ", ".join(sorted({f.check for f in findings})) if findings else
               "No feedback loop detected.")
    return page(title, f"""<section id="summary"><h2>Summary</h2><p>{_e(verdict)}</p></section>
<section id="findings"><h2>Findings</h2>{findings_table(findings)}</section>
<section id="feedback"><h2>Feedback loop</h2>{feedback_section(result.get("summary"))}</section>
<section id="rounds"><h2>Rounds</h2>{measures}</section>
<section id="settings"><h2>Settings</h2>{settings}</section>
""")


def write_loop_html(folder: str | Path, result: Mapping[str, Any]) -> Path:
    """Write ``folder/report.html`` for ``result`` (``loop.json``'s data); returns its path."""
    out = Path(folder) / LOOP_HTML
    write_text(out, render_loop(result))
    return out
