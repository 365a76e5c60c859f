"""monitor.html: what ``guardrail monitor`` found, as one self-contained page.

The page reads the plain data ``guardrail monitor`` writes (``monitor.json``: the windows'
headlines, the findings, the training reference's distributions) and, where given, the full
windows of ``windows.jsonl`` (each feature's current distribution on the reference's bins). It
shows, in the run report's style: a summary (the verdict and exit code, the windows, the fields
that drifted), a timeline of the windows (records, and which checks fired in each), each
field's training distribution against the served one (all windows together and the window
that drifted most), and the findings. No script, no network resource; every string from the
data is escaped, so a field name or a category holding markup shows as text.

Example:
    >>> result = {"status": "warnings", "exit_code": 1, "records": 300,
    ...           "windowing": {"window": 300}, "windows": [
    ...               {"index": 0, "records": 300, "drifted": ["<b>area</b>"],
    ...                "findings": {"error": 0, "warning": 1, "info": 0}}],
    ...           "findings": [{"check": "drift.feature", "severity": "warning",
    ...                         "message": "Field drifted.", "where": "<b>area</b>",
    ...                         "evidence": {"window": {"index": 0}}}]}
    >>> page = render_monitor(result)
    >>> "&lt;b&gt;area&lt;/b&gt;" in page and "<b>area</b>" not in page
    True

"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from guardrail.io import write_text
from guardrail.report.feedback import feedback_section
from guardrail.report.html import CSS as _BASE_CSS
from guardrail.report.html import nice_ticks, page
from guardrail.report.text import escape as _e
from guardrail.report.text import number as _num
from guardrail.report.text import tidy, with_code

__all__ = ["MONITOR_HTML", "render_monitor", "write_monitor_html"]

MONITOR_HTML = "monitor.html"
CHECKS = ("drift.feature", "drift.prediction", "skew.unseen_categories", "drift.performance",
          "monitor.thin_window")
MAX_COLUMNS = 240  # timeline columns; more windows are drawn in buckets of several
MAX_WINDOW_ROWS = 200  # rows of the windows table
MAX_FINDING_ROWS = 300  # rows of the findings table
MAX_CATEGORIES = 12  # category bars per field
SEVERITY_COLOURS = {"error": "#cf222e", "warning": "#bf8700", "info": "#8c959f", "ok": "#1a7f37"}
SERIES = (("reference", "training", "#8c959f"), ("all", "served, all windows", "#0969da"),
          ("worst", "served, the window that drifted most", "#cf222e"))

_CSS = _BASE_CSS + """
svg.chart{display:block;width:100%;font-family:inherit}details{margin:.5rem 0}
summary{cursor:pointer;font-weight:600}.field h3{margin-bottom:.2rem}.field p{margin:.2rem 0}
.drifted{color:#cf222e;font-weight:600}.muted{color:#57606a}
"""


# -------------------------------------------------------------------------------- helpers
def _severity_of(counts: Mapping[str, Any] | None) -> str:
    """The worst severity of a window's finding counts, ``ok`` when it has none.

    Example:
        >>> _severity_of({"error": 0, "warning": 2, "info": 1}), _severity_of(None)
        ('warning', 'ok')

    """
    counts = counts or {}
    return next((s for s in ("error", "warning", "info") if counts.get(s)), "ok")


def _float(value: Any) -> float | None:
    """A finite float, or None (missing values, ``"nan"`` strings, booleans)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _window_of(finding: Mapping[str, Any]) -> Any:
    window = (finding.get("evidence") or {}).get("window")
    return window.get("index") if isinstance(window, Mapping) else None


def _label(headline: Mapping[str, Any]) -> str:
    """How a window is named: its day or week when cut by time, else ``#index``."""
    return str(headline.get("key") or f"#{headline.get('index', '')}")


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def bin_labels(edges: Sequence[float]) -> list[str]:
    """Names of the reference's numeric bins (the last one holds missing values).

    Example:
        >>> bin_labels([1.0, 2.5])
        ['< 1', '1 to 2.5', '≥ 2.5', 'missing']
        >>> bin_labels([])
        ['all values', 'missing']

    """
    if not edges:
        return ["all values", "missing"]
    text = [_num(e) for e in edges]
    inner = [f"{a} to {b}" for a, b in itertools.pairwise(text)]
    return [f"< {text[0]}", *inner, f"≥ {text[-1]}", "missing"]


# ----------------------------------------------------------------------- distributions
class _Aggregate:
    """One feature's served distribution over all windows, and its most drifted window."""

    def __init__(self) -> None:
        self.kind = ""
        self.field = ""
        self.summary: str | None = None
        self.total = 0.0
        self.sums: dict[str, float] = {}
        self.worst: tuple[float, Any, dict[str, float]] | None = None
        self.maxima: dict[str, float] = {}
        self.judged = 0

    def add(self, window: Mapping[str, Any], item: Mapping[str, Any],
            limits: Mapping[str, Any]) -> None:
        current = item.get("current") or {}
        total = float((current.get("n") or 0) + (current.get("missing") or 0))
        self.kind, self.field = item.get("kind", ""), item.get("field", "")
        self.summary = item.get("summary")
        if not total:
            return
        shares = _shares(self.kind, current)
        self.total += total
        for key, share in shares.items():
            self.sums[key] = self.sums.get(key, 0.0) + share * total
        stats = item.get("statistics") or {}
        for key, value in stats.items():
            number = _float(value)
            if number is not None and abs(number) >= abs(self.maxima.get(key, 0.0)):
                self.maxima[key] = number  # the largest in size (a shift may be negative)
        if window.get("records", 0) >= limits.get("min_records", 100):
            self.judged += 1
        score = _score(self.kind, stats, limits)
        if self.worst is None or score > self.worst[0]:
            self.worst = (score, _label(window), shares)

    def shares(self) -> dict[str, float]:
        return {k: v / self.total for k, v in self.sums.items()} if self.total else {}


def _shares(kind: str, current: Mapping[str, Any]) -> dict[str, float]:
    """A window's current distribution as ``{bin or category: share}``."""
    if kind == "numeric":
        return {str(i): float(s) for i, s in enumerate(current.get("shares") or [])
                if _float(s) is not None}
    total = (current.get("n") or 0) + (current.get("missing") or 0)
    out = {str(k): float(v) for k, v in (current.get("shares") or {}).items()
           if _float(v) is not None}
    out["<unseen>"] = float(_float(current.get("unseen")) or 0.0)
    out["<missing>"] = (current.get("missing") or 0) / total if total else 0.0
    return out


def _score(kind: str, stats: Mapping[str, Any], limits: Mapping[str, Any]) -> float:
    """How far past its thresholds a window's feature is (1 = at a warning threshold)."""
    pairs = (("psi", "psi_warning", 0.175), ("ks", "ks_warning", 0.175)) if kind == "numeric" \
        else (("js", "js_warning", 0.4), ("linf", "linf_warning", 0.25),
              ("unseen_share", "unseen_share", 0.02))
    return max((_float(stats.get(k)) or 0.0) / float(limits.get(t) or d) for k, t, d in pairs)


def aggregate_windows(windows: Iterable[Mapping[str, Any]],
                      limits: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Per group (``features``, ``predictions``) and feature: the served distribution.

    Streams ``windows`` (full windows, as in ``windows.jsonl``) once; memory holds one
    distribution per feature. Each feature gets ``shares`` over all windows, ``worst``
    (``{"window", "shares"}`` of the window furthest past its thresholds), ``maxima`` of its
    statistics, and ``judged`` (windows with enough records).

    Example:
        >>> w = {"index": 0, "records": 200, "features": {"x": {"kind": "numeric", "field": "x",
        ...      "statistics": {"psi": 0.01}, "current": {"n": 200, "missing": 0,
        ...                                               "shares": [0.5, 0.5, 0.0]}}}}
        >>> aggregate_windows([w])["features"]["x"]["shares"]
        {'0': 0.5, '1': 0.5, '2': 0.0}

    """
    limits = limits or {}
    acc: dict[str, dict[str, _Aggregate]] = {"features": {}, "predictions": {}}
    for window in windows:
        for group in acc:
            for name, item in (window.get(group) or {}).items():
                acc[group].setdefault(name, _Aggregate()).add(window, item, limits)
    return {group: {name: {"kind": a.kind, "field": a.field, "summary": a.summary,
                           "shares": a.shares(), "maxima": a.maxima, "judged": a.judged,
                           "worst": {"window": a.worst[1], "shares": a.worst[2]}
                           if a.worst else None}
                    for name, a in items.items()} for group, items in acc.items()}


def _bars_svg(labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float | None]]],
              title: str) -> str:
    """Horizontal grouped bars: one row per bin or category, one bar per series (shares)."""
    shown = [s for s in series if any(v is not None for v in s[2])]
    if not labels or not shown:
        return ""
    width, left, right, bar, gap, top = 900, 210, 30, 7, 8, 26
    plot = width - left - right
    top_value = max((v for _, _, vs in shown for v in vs if v is not None), default=0.0)
    ticks = nice_ticks(0.0, top_value if top_value > 0 else 1.0, count=5)
    scale = ticks[-1] or 1.0
    row = bar * len(shown) + gap
    bottom = top + row * len(labels)
    height = bottom + 24
    parts = []
    for t in ticks:  # a share axis under the bars, with grid lines
        x = left + t / scale * plot
        parts.append(f"<line x1='{x:.1f}' y1='{top - 4}' x2='{x:.1f}' y2='{bottom}' "
                     f"stroke='#d0d7de' stroke-width='0.7'/><text x='{x:.1f}' y='{bottom + 16}' "
                     f"font-size='12' text-anchor='middle'>{t:.0%}</text>")
    x = left
    for colour, name, _ in shown:  # legend along the top
        parts.append(f"<rect x='{x}' y='6' width='12' height='10' fill='{colour}'/>"
                     f"<text x='{x + 16}' y='15' font-size='12'>{_e(name)}</text>")
        x += 30 + 7 * len(name)
    for r, label in enumerate(labels):
        y0 = top + r * row
        parts.append(f"<text x='{left - 8}' y='{y0 + row / 2:.1f}' font-size='12' "
                     f"text-anchor='end'><title>{_e(label)}</title>{_e(_short(label))}</text>")
        for s, (colour, name, values) in enumerate(shown):
            value = values[r] if r < len(values) else None
            if value is None:
                continue
            w = max(value / scale * plot, 0.0)
            y = y0 + s * bar
            parts.append(f"<rect x='{left}' y='{y}' width='{w:.1f}' height='{bar - 1}' "
                         f"fill='{colour}'><title>{_e(name)}: {_e(label)} {value:.1%}</title>"
                         "</rect>")
    parts.append(f"<line x1='{left}' y1='{top - 4}' x2='{left}' y2='{bottom}' "
                 "stroke='#8c959f'/>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' "
            f"width='100%' role='img' aria-label='{_e(title)}' class='chart'>"
            f"{''.join(parts)}</svg>")


def _distribution(name: str, ref: Mapping[str, Any] | None,
                  served: Mapping[str, Any] | None) -> str:
    """The chart of one feature: training shares against served ones."""
    if ref is None and served is None:
        return ""
    kind = (ref or served or {}).get("kind")
    all_shares = (served or {}).get("shares") or {}
    worst = (served or {}).get("worst") or {}
    if kind == "numeric":
        ref_shares = list((ref or {}).get("shares") or [])
        edges = (ref or {}).get("edges") or []
        count = max(len(ref_shares), len(all_shares), len(worst.get("shares") or {}))
        labels = bin_labels(edges) if len(edges) + 2 == count else [
            f"bin {i + 1}" for i in range(count)]
        keys = [str(i) for i in range(count)]
        ref_values: list[float | None] = [ref_shares[i] if i < len(ref_shares) else None
                                          for i in range(count)]
        if ref_values and ref_values[-1] is not None and not ref_values[-1] and \
                not all_shares.get(keys[-1]) and labels[-1] == "missing":
            labels, keys, ref_values = labels[:-1], keys[:-1], ref_values[:-1]  # none missing
    else:
        ref_shares = dict((ref or {}).get("shares") or {})
        if ref is not None:
            ref_shares["<missing>"] = (ref or {}).get("missing") or 0.0
        ranked = sorted(ref_shares, key=lambda k: -ref_shares[k])
        keys = [k for k in ranked if k != "<missing>"][:MAX_CATEGORIES] + \
            [k for k in ("<unseen>", "<missing>") if ref_shares.get(k) or all_shares.get(k) or
             (worst.get("shares") or {}).get(k)]
        labels = ["never seen in training" if k == "<unseen>" else "missing" if k == "<missing>"
                  else k for k in keys]
        ref_values = [ref_shares.get(k, 0.0) if ref is not None else None for k in keys]
    worst_shares = worst.get("shares") or {}
    series = [(SERIES[0][2], SERIES[0][1], ref_values),
              (SERIES[1][2], SERIES[1][1], [all_shares.get(k) for k in keys] if all_shares
               else [None] * len(keys)),
              (SERIES[2][2], f"served, window {worst.get('window')} (drifted most)",
               [worst_shares.get(k) for k in keys] if worst_shares else [None] * len(keys))]
    return _bars_svg(labels, series, f"{name}: training against served shares")


# -------------------------------------------------------------------------------- sections
def _lights(result: Mapping[str, Any], drifted: Mapping[str, list[Any]]) -> list[tuple[str,
                                                                                      str]]:
    code = result.get("exit_code")
    counts = (result.get("counts") or {}).get("by_severity") or {}
    if code is None:
        code = 2 if counts.get("error") else 1 if counts.get("warning") else 0
    windows = result.get("windows") or []
    verdict = {0: ("green", "Nothing found: the served records look like training (exit code "
                            "0)."),
               1: ("amber", f"Warnings (exit code 1): {counts.get('warning', 0)} warning(s), "
                            "no errors."),
               2: ("red", f"Errors (exit code 2): {counts.get('error', 0)} error(s) and "
                          f"{counts.get('warning', 0)} warning(s).")}.get(
        int(code), ("grey", f"Exit code {code}."))
    lights = [verdict]
    if not windows:
        lights.append(("grey", "No records were read: there was nothing to judge."))
        return lights
    for check, colour, what in (("drift.feature", "amber", "Input fields drifted"),
                                ("skew.unseen_categories", "amber",
                                 "Categories never seen in training arrived in"),
                                ("drift.prediction", "amber", "The predictions drifted"),
                                ("drift.performance", "red", "The model's error grew")):
        fields = drifted.get(check) or []
        if not fields:
            continue
        places = ", ".join(f"{w} (in {n} of {len(windows)} windows)" for w, n in fields[:8])
        more = f", and {len(fields) - 8} more" if len(fields) > 8 else ""
        lights.append((colour, f"{what}: {places}{more}." if check != "drift.prediction" else
                       f"{what} in {fields[0][1]} of {len(windows)} windows."))
    if not drifted.get("drift.feature"):
        lights.append(("green", "No input field drifted."))
    thin = sum(n for _, n in drifted.get("monitor.thin_window") or [])
    least = (result.get("thresholds") or {}).get("min_records", 100)
    if thin:
        lights.append(("grey", f"{thin} window(s) had too few records to be judged (fewer "
                               f"than {_num(least)}): they are shown, not judged."))
    return lights


def _drifted(findings: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[str, int]]]:
    """Per check: ``(where, windows it fired in)``, most windows first."""
    seen: dict[str, dict[str, set[Any]]] = {}
    for f in findings:
        if f.get("severity") == "info" and f.get("check") != "monitor.thin_window":
            continue
        where = str(f.get("where") or "-")
        seen.setdefault(str(f.get("check")), {}).setdefault(where, set()).add(_window_of(f))
    return {check: sorted(((w, len(s)) for w, s in by.items()), key=lambda p: (-p[1], p[0]))
            for check, by in seen.items()}


def _timeline(result: Mapping[str, Any], fired: Mapping[Any, set[str]]) -> str:
    """The timeline: per window (or bucket of windows) its records and the checks that fired.

    Bars are coloured by the window's worst finding; one row per check marks its windows.
    """
    windows = list(result.get("windows") or [])
    if not windows:
        return ""
    size = math.ceil(len(windows) / MAX_COLUMNS)
    columns = [windows[i:i + size] for i in range(0, len(windows), size)]
    order = {"ok": 0, "info": 1, "warning": 2, "error": 3}
    width, left, right, top = 900, 190, 10, 8
    bars_h, row_h = 80, 16
    plot = width - left - right
    step = plot / len(columns)
    most = max(max(sum(h.get("records") or 0 for h in c) / len(c) for c in columns), 1)
    checks = [c for c in CHECKS if any(c in fired.get(h.get("index"), ()) for h in windows)]
    height = top + bars_h + 22 + row_h * len(checks) + 26
    parts = [f"<text x='{left - 8}' y='{top + 12}' font-size='12' text-anchor='end'>records"
             f"</text><text x='{left - 8}' y='{top + 26}' font-size='11' text-anchor='end' "
             f"fill='#57606a'>(up to {_num(most)})</text>"]
    for i, column in enumerate(columns):
        records = sum(h.get("records") or 0 for h in column) / len(column)
        worst = max((_severity_of(h.get("findings")) for h in column), key=order.__getitem__)
        h = max(records / most * bars_h, 1.0)
        x = left + i * step
        names = ", ".join(_label(w) for w in (column[0], column[-1]) if w) if size > 1 else \
            _label(column[0])
        parts.append(f"<rect x='{x + 0.1 * step:.1f}' y='{top + bars_h - h:.1f}' "
                     f"width='{max(0.8 * step, 0.5):.1f}' height='{h:.1f}' "
                     f"fill='{SEVERITY_COLOURS[worst]}'><title>window {_e(names)}: "
                     f"{_num(records)} records, {worst}</title></rect>")
    for r, check in enumerate(checks):
        y = top + bars_h + 22 + r * row_h
        parts.append(f"<text x='{left - 8}' y='{y + 11}' font-size='12' text-anchor='end'>"
                     f"{_e(check)}</text><line x1='{left}' y1='{y + 7}' x2='{left + plot}' "
                     f"y2='{y + 7}' stroke='#d0d7de'/>")
        for i, column in enumerate(columns):
            if any(check in fired.get(h.get("index"), ()) for h in column):
                colour = "#8c959f" if check == "monitor.thin_window" else "#cf222e" if \
                    check == "drift.performance" else "#bf8700"
                parts.append(f"<rect x='{left + i * step + 0.1 * step:.1f}' y='{y + 2}' "
                             f"width='{max(0.8 * step, 1.5):.1f}' height='10' fill='{colour}'>"
                             f"<title>{_e(check)} in window {_e(_label(column[0]))}</title>"
                             "</rect>")
    axis = top + bars_h + 22 + row_h * len(checks) + 16
    first, last = _label(windows[0]), _label(windows[-1])
    unit = f"window (each column: {size} windows)" if size > 1 else "window"
    parts.append(f"<text x='{left}' y='{axis}' font-size='12'>{_e(first)}</text>"
                 f"<text x='{left + plot / 2:.1f}' y='{axis}' font-size='12' "
                 f"text-anchor='middle' fill='#57606a'>{_e(unit)}</text>"
                 f"<text x='{left + plot}' y='{axis}' font-size='12' text-anchor='end'>"
                 f"{_e(last)}</text>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' "
            f"width='100%' role='img' aria-label='timeline of windows' class='chart'>"
            f"{''.join(parts)}</svg>")


def _windows_table(result: Mapping[str, Any], fired: Mapping[Any, set[str]]) -> str:
    windows = list(result.get("windows") or [])
    if not windows:
        return "<p>No windows.</p>"
    noisy = [h for h in windows if _severity_of(h.get("findings")) != "ok"]
    shown = windows if len(windows) <= MAX_WINDOW_ROWS else noisy[:MAX_WINDOW_ROWS]
    perf = any((h.get("performance") or {}).get("metric") for h in windows)
    timed = any(h.get("start") or h.get("end") for h in windows)
    rows = []
    for h in shown:
        severity = _severity_of(h.get("findings"))
        span = " to ".join(str(t) for t in dict.fromkeys((h.get("start"), h.get("end"))) if t)
        checks = ", ".join(f"<code>{_e(c)}</code>" for c in CHECKS
                           if c in fired.get(h.get("index"), ()))
        p = h.get("performance") or {}
        error = (f"<td class='num'>{_num(p.get('value'))}"
                 + (f" ({_num(p.get('worse_by', 0) * 100)}% vs test)" if _float(
                     p.get("worse_by")) is not None else "") + "</td>") if perf else ""
        when = f"<td class='muted'>{_e(span)}</td>" if timed else ""
        rows.append(f"<tr><td>{_e(_label(h))}</td>{when}"
                    f"<td class='num'>{_num(h.get('records'))}</td>"
                    f"<td class='sev {_e(severity)}'>{_e(severity)}</td><td>{checks}</td>"
                    f"<td>{_e(', '.join(map(str, h.get('drifted') or [])))}</td>{error}</tr>")
    note = "" if shown is windows else (
        f"<p class='muted'>{len(windows)} windows: the {len(shown)} with findings are listed"
        f"{' (the first ' + str(MAX_WINDOW_ROWS) + ')' if len(noisy) > MAX_WINDOW_ROWS else ''}"
        f"; {len(windows) - len(noisy)} had none.</p>")
    head = "<th>error</th>" if perf else ""
    return (f"{note}<table><tr><th>window</th>{'<th>time</th>' if timed else ''}"
            "<th>records</th><th>worst</th>"
            f"<th>checks that fired</th><th>drifted fields</th>{head}</tr>{''.join(rows)}"
            "</table>")


def _findings_table(findings: Sequence[Mapping[str, Any]]) -> str:
    if not findings:
        return "<p>No findings.</p>"
    rank = {"error": 0, "warning": 1, "info": 2}
    ordered = sorted(findings, key=lambda f: (rank.get(str(f.get("severity")), 3),
                                              str(f.get("check")),
                                              str(_window_of(f) or "")))
    rows = "".join(
        f"<tr><td class='sev {_e(f.get('severity', ''))}'>{_e(f.get('severity', ''))}</td>"
        f"<td class='check'><code>{_e(f.get('check', ''))}</code></td>"
        f"<td>{_e(f.get('where') or '')}</td><td class='num'>{_num(_window_of(f))}</td>"
        f"<td>{with_code(tidy(str(f.get('message') or '')))}</td>"
        f"<td>{with_code(tidy(str(f.get('hint') or '')))}</td></tr>"
        for f in ordered[:MAX_FINDING_ROWS])
    more = (f"<p class='muted'>The first {MAX_FINDING_ROWS} of {len(findings)} findings, most "
            "severe first; all are in findings.jsonl.</p>") if len(findings) > \
        MAX_FINDING_ROWS else ""
    return (f"{more}<table><tr><th>severity</th><th>check</th><th>where</th><th>window</th>"
            f"<th>what</th><th>what to do</th></tr>{rows}</table>")


def _stats_line(kind: str, served: Mapping[str, Any] | None, ref: Mapping[str, Any] | None,
                flagged: int, windows: int) -> str:
    parts = []
    if ref and kind == "numeric" and _float(ref.get("mean")) is not None:
        parts.append(f"training mean {_num(ref.get('mean'))}, SD {_num(ref.get('sd'))}")
    maxima = (served or {}).get("maxima") or {}
    names = (("psi", "PSI"), ("ks", "KS"), ("shift_sd", "mean shift (training SDs)")) \
        if kind == "numeric" else (("js", "Jensen-Shannon"), ("linf", "L-infinity"),
                                   ("unseen_share", "unseen share"))
    stats = ", ".join(f"{label} {_num(maxima[k])}" for k, label in names if k in maxima)
    if stats:
        parts.append(f"largest over the windows: {stats}")
    parts.append(f"flagged in {flagged} of {windows} windows" if flagged else
                 "never flagged")
    return "; ".join(parts) + "."


def _fields_section(result: Mapping[str, Any], served: Mapping[str, Any] | None,
                    findings: Sequence[Mapping[str, Any]]) -> str:
    reference = result.get("reference") or {}
    windows = len(result.get("windows") or [])
    flagged: dict[tuple[str, str], set[Any]] = {}
    for f in findings:
        if f.get("severity") == "info" or not str(f.get("check", "")).startswith(
                ("drift.", "skew.")):
            continue
        group = "predictions" if f.get("check") == "drift.prediction" else "features"
        name = (f.get("evidence") or {}).get("feature") or f.get("where") or ""
        flagged.setdefault((group, str(name)), set()).add(_window_of(f))
    out = []
    for group, title in (("features", "Inputs"), ("predictions", "Predictions")):
        refs = reference.get(group) or {}
        got = (served or {}).get(group) or {}
        names = list(dict.fromkeys([*refs, *got]))
        if not names:
            continue
        drifted = sorted((n for n in names if flagged.get((group, n))),
                         key=lambda n: -len(flagged[(group, n)]))
        quiet = [n for n in names if n not in drifted]
        blocks = []
        for name in [*drifted, *quiet]:
            ref, cur = refs.get(name), got.get(name)
            kind = (ref or cur or {}).get("kind", "")
            count = len(flagged.get((group, name), ()))
            chart = _distribution(name, ref, cur) or "<p class='muted'>No distribution was " \
                "recorded for this field.</p>"
            mark = " <span class='drifted'>drifted</span>" if count else ""
            blocks.append(f"<div class='field'><h3><code>{_e(name)}</code>{mark} "
                          f"<span class='muted'>({_e(kind)})</span></h3><p class='muted'>"
                          f"{_stats_line(kind, cur, ref, count, windows)}</p>{chart}</div>")
        head = blocks[:len(drifted)]
        tail = blocks[len(drifted):]
        body = "".join(head)
        if tail:
            body += (f"<details><summary>{len(tail)} "
                     f"{'field' if len(tail) == 1 else 'fields'} never flagged</summary>"
                     f"{''.join(tail)}</details>")
        out.append(f"<h3>{title}</h3>{body}" if group == "predictions" else body)
    if not out:
        return "<p>No reference distributions were recorded.</p>"
    legend = ("<p class='muted'>Shares of the records in each training-decile bin (numeric) or "
              "category (the most frequent in training), for the training records, all served "
              "windows together, and the window furthest past its thresholds.</p>")
    if served is None:
        legend += ("<p class='muted'>The served distributions are in windows.jsonl, which was "
                   "not given: only the training side is drawn.</p>")
    return legend + "".join(out)


# ------------------------------------------------------------------------------------ page
def render_monitor(result: Mapping[str, Any],
                   windows: Iterable[Mapping[str, Any]] | None = None) -> str:
    """The whole monitor.html page for ``monitor.json``'s data.

    Args:
        result: What ``guardrail monitor`` writes as ``monitor.json`` (a mapping).
        windows: The full windows (``windows.jsonl``, streamed once); by default those of
            ``result["windows"]`` that hold ``features``.

    Returns:
        The page, one self-contained HTML string.
    """
    findings = [f for f in result.get("findings") or [] if isinstance(f, Mapping)]
    fired: dict[Any, set[str]] = {}
    for f in findings:
        fired.setdefault(_window_of(f), set()).add(str(f.get("check")))
    if windows is None:
        full = [w for w in result.get("windows") or [] if "features" in w]
        windows = full or None
    served = aggregate_windows(windows, result.get("thresholds")) if windows is not None \
        else None
    drifted = _drifted(findings)
    lights = "".join(f"<tr><td><span class='light {c}'></span></td><td>{_e(tidy(t))}</td></tr>"
                     for c, t in _lights(result, drifted))
    windowing = result.get("windowing") or {}
    cut = (f"by {windowing['by']}" if windowing.get("by") else
           f"of {_num(windowing.get('window'))} records" if windowing.get("window") else "")
    source = result.get("source") or {}
    facts = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in (
        ("run", result.get("run_dir") or ""),
        ("source", f"{source.get('path', '')} ({source.get('kind', '')})" if source else ""),
        ("records", _num(result.get("records", 0))),
        ("windows", f"{len(result.get('windows') or [])} {cut}".strip()),
        ("written to", result.get("folder") or "")) if v)
    thresholds = result.get("thresholds") or {}
    limits = "".join(f"<tr><th><code>{_e(k)}</code></th><td class='num'>{_num(v)}</td></tr>"
                     for k, v in thresholds.items())
    title = f"guardrail monitor: {Path(str(result.get('run_dir') or 'run')).name}"
    feedback = feedback_section(result.get("feedback"), round_label="window")
    return page(title, f"""<section id="summary"><h2>Summary</h2>
<table class="summary">{lights}</table><table>{facts}</table></section>
<section id="timeline"><h2>Windows</h2>{_timeline(result, fired)}
{_windows_table(result, fired)}</section>
<section id="fields"><h2>Training against served, per field</h2>
{_fields_section(result, served, findings)}</section>
<section id="findings"><h2>Findings</h2>{_findings_table(findings)}</section>
{f'<section id="feedback"><h2>Feedback loop</h2>{feedback}</section>' if feedback else ''}
{f'<section id="thresholds"><h2>Thresholds</h2><table>{limits}</table></section>'
 if limits else ''}
""", css=_CSS)


def _read_windows(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # a torn last line of a run still writing: skip it


def write_monitor_html(folder: str | Path, result: Mapping[str, Any]) -> Path:
    """Write ``folder/monitor.html`` for ``result`` (monitor.json's data); returns its path.

    The windows' distributions are streamed from ``folder/windows.jsonl`` when it exists.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> write_monitor_html(d, {"status": "ok", "exit_code": 0, "windows": []}).name
        'monitor.html'

    """
    folder = Path(folder)
    lines = folder / "windows.jsonl"
    windows = _read_windows(lines) if lines.is_file() else None
    out = folder / MONITOR_HTML
    write_text(out, render_monitor(result, windows))
    return out
