"""report.html's "ML Test Score" section, from ``score.json`` (what ``guardrail score`` wrote).

Like the other sections (:mod:`guardrail.report.sections`): a dict in, an escaped HTML fragment
out, '' when there is nothing to show. The page's caller wraps it in its ``<section>``.

Example:
    >>> from guardrail.score import empty_evidence, judge
    >>> html = score_section(judge(empty_evidence("<run>")))
    >>> html.startswith("<p>ML Test Score <b>0</b>") and "<run>" not in html
    True
    >>> score_section({})
    ''

"""

from __future__ import annotations

from typing import Any

from guardrail.report.text import escape as _e

SECTIONS = ("data", "model", "infrastructure", "monitoring")


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else ""


def score_section(result: dict[str, Any]) -> str:
    """The final score, the four section sums, and a table of the 28 tests with their evidence.

    A test shows its points, why, the files and keys it rests on, and what would earn more.
    """
    items, sections = result.get("items") or [], result.get("sections") or {}
    if not items or not sections:
        return ""
    sums = ", ".join(f"{_e(s)} {_fmt(sections[s]['score'])}" for s in SECTIONS if s in sections)
    parts = [f"<p>ML Test Score <b>{_fmt(result.get('final'))}</b> (Breck et al. 2017: the "
             f"lowest of the four section sums: {sums}). A test earns 0.5 when it was done by "
             "hand or once, 1 when it runs automatically on every run, 0 without evidence.</p>"]
    for section in SECTIONS:
        rows = []
        for item in (i for i in items if i.get("section") == section):
            evidence = "<br>".join(f"<code>{_e(c['file'])}</code> [{_e(c['key'])}]"
                                   for c in item.get("evidence") or [])
            more = item.get("to_earn") if item.get("judged", True) else None
            why = _e(item.get("why", "")) + (f"<br><i>To earn more:</i> {_e(more)}"
                                             if more else "")
            rows.append(f"<tr><td class='check'>{_e(item.get('id', ''))}</td>"
                        f"<td>{_e(item.get('name', ''))}</td>"
                        f"<td class='num'>{_fmt(item.get('score'))}</td><td>{why}</td>"
                        f"<td>{evidence}</td></tr>")
        info = sections.get(section) or {}
        parts.append(f"<h3>{_e(info.get('title', section))}: {_fmt(info.get('score'))} of 7"
                     "</h3><table><tr><th>test</th><th>name</th><th>points</th><th>why</th>"
                     f"<th>evidence (file [key])</th></tr>{''.join(rows)}</table>")
    return "".join(parts)
