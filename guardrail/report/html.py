"""report.html: one self-contained page, a product owner's summary first, an engineer's detail next.

No network resources; every string from the run is escaped, so a feature name or a config value
containing markup shows as text.

Example:
    >>> page = render_html({"recipe": "<b>x</b>", "status": "completed"}, [])
    >>> "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    True

"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from guardrail.checks.effort import EFFORT_FILE
from guardrail.findings import Finding, Severity
from guardrail.privacy import PRIVACY_FILE
from guardrail.report.privacy import privacy_section
from guardrail.report.score import score_section
from guardrail.report.sections import (
    attribution_section,
    effort_section,
    manifest_section,
    read_json,
    resources_section,
    sanity_sentence,
)
from guardrail.report.text import escape as _e
from guardrail.report.text import number as _num
from guardrail.report.text import tidy, with_code
from guardrail.score import FILE as SCORE_FILE

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:60rem;color:#1f2328;padding:0 1rem}h1{font-size:1.6rem}
h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
td,th{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top;
overflow-wrap:anywhere}th,td.sev,td.check{overflow-wrap:normal}td.sev{white-space:nowrap}
svg{max-width:100%;height:auto}svg.curve{display:block;width:100%;font-family:inherit}
th{background:#f6f8fa}.light{display:inline-block;width:.9rem;height:.9rem;border-radius:50%;
margin-right:.5rem;vertical-align:middle}.green{background:#1a7f37}.amber{background:#bf8700}
.red{background:#cf222e}.grey{background:#8c959f}.summary td{border:none;padding:.25rem .5rem}
code{background:#f6f8fa;padding:0 .2rem}td.check code{overflow-wrap:normal}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap;overflow-wrap:normal}
.error{color:#cf222e;font-weight:600}.warning{color:#9a6700;font-weight:600}.info{color:#57606a}
figure{margin:1rem 0}figure img{max-width:100%;height:auto}
figcaption{color:#57606a;font-size:.9rem}
"""


def traffic_lights(report: dict[str, Any], findings: Sequence[Finding],
                   attribution: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """The summary's lights: (colour, plain sentence) per question a product owner asks.

    Did it train, does it beat its baseline, what did the guardrails find, and, when the run
    has an explanation, can it be trusted.

    Example:
        >>> traffic_lights({"status": "failed", "error": "boom"}, [])[0]
        ('red', 'Training failed: boom')

    """
    status = report.get("status", "running")
    lights = [{
        "completed": ("green", "Training completed."),
        "running": ("grey", "Training is still running (or stopped without a word)."),
        "interrupted": ("amber", "Training was interrupted before it finished."),
    }.get(status, ("red", f"Training failed: {report.get('error') or 'see the log'}"))]

    lights.append(baseline_light(findings))

    errors = sum(f.severity is Severity.ERROR for f in findings)
    warnings = sum(f.severity is Severity.WARNING for f in findings)
    if errors:
        lights.append(("red", f"The guardrails found {errors} error(s) and {warnings} warning(s)."))
    elif warnings:
        lights.append(("amber", f"The guardrails found {warnings} warning(s), no errors."))
    else:
        lights.append(("green", "The guardrails found no problems."))
    if attribution and attribution.get("ranking"):
        lights.append(sanity_sentence(attribution))
    return lights


def baseline_light(findings: Sequence[Finding]) -> tuple[str, str]:
    """(colour, sentence) on the baselines, read from the findings alone.

    Red: a trivial baseline is not beaten. Amber: a simpler reference model is as good.
    Green: a comparison was made (``baseline.compared``) and every baseline is beaten. Grey:
    nothing was compared (no baselines, or none of their metrics could be compared).

    Example:
        >>> baseline_light([Finding("baseline.not_compared", "info", "rmse not logged.")])[0]
        'grey'
        >>> baseline_light([Finding("baseline.compared", "info", "Compared.",
        ...                         evidence={"beaten": "mean", "stage": "test"})])
        ('green', 'The model beats every baseline (mean) on the held-out test split.')

    """

    def messages(check: str) -> str:
        return " ".join([f.message for f in findings if f.check == check][:3])

    if any(f.check == "baseline.not_beaten" for f in findings):
        return "red", ("The model does not beat a trivial baseline: "
                       f"{messages('baseline.not_beaten')}")
    if any(f.check == "baseline.simpler_model_suffices" for f in findings):
        return "amber", ("A simpler model is as good as this one: "
                         f"{messages('baseline.simpler_model_suffices')}")
    compared = [f for f in findings if f.check == "baseline.compared"]
    if not compared:
        why = ("the datamodule has no baselines()" if any(
            f.check == "baseline.missing" for f in findings) else
            "none of the baselines' metrics could be compared with the model's" if any(
                f.check == "baseline.not_compared" for f in findings) else
            "no baseline check ran")
        return "grey", f"The model was not compared with a baseline: {why}."
    last = next((f for f in compared if f.evidence.get("stage") == "test"), compared[-1])
    split = "held-out test" if last.evidence.get("stage", "test") == "test" else "validation"
    sentence = (f"The model beats every baseline ({last.evidence.get('beaten', '')}) on the "
                f"{split} split.")
    ties = sorted({f.where or "" for f in findings if f.check == "baseline.not_separable"})
    if ties:
        sentence += f" Some metrics tie and cannot separate them: {', '.join(ties)}."
    return "green", sentence


def baseline_label(report: dict[str, Any], name: str) -> str:
    """``baseline: NAME``, or ``reference model: NAME`` for a reference (report.json's roles).

    Example:
        >>> baseline_label({"baseline_roles": {"ridge": "reference"}}, "ridge")
        'reference model: ridge'

    """
    role = (report.get("baseline_roles") or {}).get(name, "trivial")
    return f"{'reference model' if role == 'reference' else 'baseline'}: {name}"


def _metrics_table(report: dict[str, Any]) -> str:
    metrics: dict[str, dict[str, Any]] = report.get("metrics") or {}
    baselines: dict[str, dict[str, Any]] = report.get("baselines") or {}
    names = sorted({n for split in metrics.values() for n in split})
    if not names:
        return "<p>No metrics were recorded.</p>"
    splits = [s for s in ("train", "val", "test") if s in metrics]
    head = "".join(f"<th>{_e(s)}</th>" for s in splits)
    head += "".join(f"<th>{_e(baseline_label(report, b))} (test)</th>" for b in baselines)
    rows = []
    for name in names:
        cells = "".join(f"<td class='num'>{_num(metrics[s].get(name, ''))}</td>" for s in splits)
        cells += "".join(f"<td class='num'>{_num(baselines[b].get(name, ''))}</td>"
                         for b in baselines)
        rows.append(f"<tr><td class='check'><code>{_e(name)}</code></td>{cells}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


LOG_RATIO = 50.0  # largest / smallest positive value above which the y axis is logarithmic
# (about 1.7 decades: WEA's loss falls 97x and lies flat on a linear axis after epoch 10)
COLOURS = ("#0969da", "#cf222e", "#1a7f37", "#8250df")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering ``[low, high]``.

    Example:
        >>> nice_ticks(0.0167, 1.624)
        [0.0, 0.5, 1.0, 1.5, 2.0]
        >>> nice_ticks(0, 119)
        [0.0, 20.0, 40.0, 60.0, 80.0, 100.0, 120.0]
        >>> nice_ticks(3.0, 3.0)
        [2.0, 2.5, 3.0, 3.5, 4.0]

    """
    if high <= low:
        span = abs(low) or 1.0
        return nice_ticks(low - span / 3, high + span / 3, count)
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = power * next(m for limit, m in ((1.5, 1), (3, 2), (7, 5), (math.inf, 10))
                        if raw / power < limit)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [round(k * step, 12) + 0.0 for k in range(first, last + 1)]


def log_ticks(low: float, high: float) -> list[float]:
    """Ticks of a log axis over ``[low, high]`` (both > 0): powers of ten.

    With 2 and 5 between them when the range spans fewer than 2.5 decades.

    Example:
        >>> log_ticks(0.0167, 1.62)
        [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
        >>> log_ticks(1e-4, 3.0)
        [0.0001, 0.001, 0.01, 0.1, 1.0, 10.0]

    """
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    steps = (1, 2, 5) if math.log10(high / low) < 2.5 else (1,)
    ticks = [float(f"{m}e{p}") for p in range(first, last + 1) for m in steps]
    below = max((t for t in ticks if t <= low), default=ticks[0])
    above = min((t for t in ticks if t >= high), default=ticks[-1])
    return [t for t in ticks if below <= t <= above]


def _tick_label(value: float) -> str:
    """A tick's text: plain and short (``0.05``, ``1,000``, ``1e-05``)."""
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e15:
        return _num(value) if abs(value) >= 1000 else f"{value:g}"
    return f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e")


def learning_curve_svg(history: Sequence[dict[str, Any]], keys: Sequence[str] = ("train/loss",
                       "val/loss"), width: int = 900, height: int = 300) -> str:
    """An inline SVG line chart of ``keys`` over epochs ('' when there is nothing to draw).

    Round ticks with grid lines on both axes and axis titles; the y axis is logarithmic (and
    says so) when every value is positive and the largest is more than ``LOG_RATIO`` times the
    smallest. The legend sits right of the plot area, never over the data. ``width`` and
    ``height`` only set the drawing's proportions (its ``viewBox``): the chart fills the width
    of the page.

    Example:
        >>> svg = learning_curve_svg([{"epoch": 0, "val/loss": 1.0}, {"epoch": 1, "val/loss": 0.5}])
        >>> svg[:4], "viewBox='0 0 900 300'" in svg, "log scale" in svg
        ('<svg', True, False)
        >>> "log scale" in learning_curve_svg([{"epoch": e, "val/loss": 10.0 ** -e}
        ...                                    for e in range(4)])
        True

    """
    series = {k: [(float(r["epoch"]), float(r[k])) for r in history
                  if isinstance(r.get(k), int | float) and not isinstance(r.get(k), bool)
                  and math.isfinite(r[k]) and isinstance(r.get("epoch"), int | float)]
              for k in keys}
    series = {k: v for k, v in series.items() if len(v) >= 2}
    if not series:
        return ""
    xs = [x for v in series.values() for x, _ in v]
    ys = [y for v in series.values() for _, y in v]
    log = min(ys) > 0 and max(ys) / min(ys) > LOG_RATIO
    xt = [t for t in nice_ticks(min(xs), max(xs), count=min(6, int(max(xs) - min(xs)) or 1))
          if t == int(t)] or [min(xs), max(xs)]
    yt = log_ticks(min(ys), max(ys)) if log else nice_ticks(min(ys), max(ys))
    x0, x1 = min(xt[0], min(xs)), max(xt[-1], max(xs))
    scale: Any = math.log10 if log else (lambda v: v)
    y0, y1 = scale(yt[0]), scale(yt[-1])
    left, right, top, bottom = 70, 150, 12, 48  # the plot area's margins; legend on the right
    plot_w, plot_h = width - left - right, height - top - bottom

    def fx(x: float) -> float:
        return left + (x - x0) / ((x1 - x0) or 1) * plot_w

    def fy(y: float) -> float:
        return top + plot_h - (scale(y) - y0) / ((y1 - y0) or 1) * plot_h

    parts = [f"<rect x='{left}' y='{top}' width='{plot_w}' height='{plot_h}' fill='none' "
             "stroke='#8c959f'/>"]
    for t in yt:
        y = fy(t)
        parts.append(f"<line x1='{left}' y1='{y:.1f}' x2='{left + plot_w}' y2='{y:.1f}' "
                     f"stroke='#d0d7de' stroke-width='0.7'/><text x='{left - 6}' y='{y + 4:.1f}' "
                     f"font-size='12' text-anchor='end'>{_e(_tick_label(t))}</text>")
    for t in xt:
        x = fx(t)
        parts.append(f"<line x1='{x:.1f}' y1='{top}' x2='{x:.1f}' y2='{top + plot_h}' "
                     f"stroke='#d0d7de' stroke-width='0.7'/><text x='{x:.1f}' "
                     f"y='{top + plot_h + 17}' font-size='12' text-anchor='middle'>"
                     f"{_e(_tick_label(t))}</text>")
    y_title = "loss (log scale)" if log else "loss"
    parts.append(f"<text x='{left + plot_w / 2:.1f}' y='{height - 8}' font-size='13' "
                 "text-anchor='middle'>epoch</text>"
                 f"<text transform='translate(16 {top + plot_h / 2:.1f}) rotate(-90)' "
                 f"font-size='13' text-anchor='middle'>{_e(y_title)}</text>")
    for i, (key, pts) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        points = " ".join(f"{fx(x):.1f},{fy(y):.1f}" for x, y in pts)
        parts.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' "
                     f"points='{points}'/>")
        ly = top + 14 + 20 * i
        parts.append(f"<line x1='{left + plot_w + 14}' y1='{ly - 4}' x2='{left + plot_w + 34}' "
                     f"y2='{ly - 4}' stroke='{colour}' stroke-width='3'/><text "
                     f"x='{left + plot_w + 40}' y='{ly}' font-size='12'>{_e(key)}</text>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' "
            f"width='100%' role='img' aria-label='learning curves ({_e(y_title)} over epochs)' "
            f"class='curve'>{''.join(parts)}</svg>")


def page(title: str, body: str, css: str = CSS) -> str:
    """A whole self-contained page: ``title`` as its title and heading, then ``body``.

    Example:
        >>> page("a <run>", "<p>hi</p>").count("a &lt;run&gt;")
        2

    """
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{css}</style></head>
<body>
<h1>{_e(title)}</h1>
{body}</body></html>
"""


def findings_table(findings: Sequence[Finding]) -> str:
    """The findings as a table, most severe first (the run report's and the loop page's)."""
    if not findings:
        return "<p>No findings.</p>"
    ordered = sorted(findings, key=lambda f: (-f.severity.rank, f.check))
    rows = "".join(
        f"<tr><td class='sev {_e(f.severity.value)}'>{_e(f.severity.value)}</td>"
        f"<td class='check'><code>{_e(f.check)}</code></td><td>{_e(f.where or '')}</td>"
        f"<td>{with_code(tidy(f.message))}</td><td>{with_code(tidy(f.hint))}</td>"
        f"<td class='num'>{_e('' if f.step is None else f.step)}</td></tr>"
        for f in ordered
    )
    return ("<table><tr><th>severity</th><th>check</th><th>where</th><th>what</th>"
            f"<th>what to do</th><th>step</th></tr>{rows}</table>")


def render_html(report: dict[str, Any], findings: Sequence[Finding],
                run_dir: str | Path | None = None) -> str:
    """The whole report page for a run's ``report`` dict and ``findings``.

    With ``run_dir``, the artefacts there are shown too: ``attribution/attribution.json``
    with its plots, the effort forecast (``effort.json``), the ML Test Score (``score.json``,
    written by ``guardrail score``) and ``manifest.json``.
    """
    recipe = report.get("recipe") or "custom model"
    folder = Path(run_dir) if run_dir is not None else None
    attribution = read_json(folder / "attribution" / "attribution.json") if folder else None
    if attribution and "explained" not in attribution and any(
            f.check == "attribution.skipped" and "training samples are explained" in f.message
            for f in findings):  # AttributionReport fell back to training samples
        attribution["explained"] = "training"
    manifest = read_json(folder / "manifest.json") if folder else None
    lights = "".join(f"<tr><td><span class='light {c}'></span></td><td>{_e(tidy(text))}</td>"
                     "</tr>"
                     for c, text in traffic_lights(report, findings, attribution))
    explained = attribution_section(attribution, folder / "attribution" if folder else None) \
        if attribution else ""
    resources = resources_section(report.get("resources"))
    pinned = manifest_section(manifest)
    overrides = report.get("overrides") or []
    run_rows = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in (
            ("recipe", recipe), ("status", report.get("status", "running")),
            ("command-line overrides", " ".join(overrides) or "(none)"),
            ("started", report.get("started_at", "")), ("finished", report.get("finished_at", "")),
            ("guardrail", report.get("guardrail_version", "")))
    )
    curve = learning_curve_svg(report.get("history") or [])
    effort = effort_section(read_json(folder / EFFORT_FILE)) if folder else ""
    privacy = privacy_section(read_json(folder / PRIVACY_FILE)) if folder else ""
    scored = read_json(folder / SCORE_FILE) if folder else None
    score = score_section(scored) if scored else ""
    return page(f"guardrail report: {recipe}", f"""<section id="summary"><h2>Summary</h2>
<table class="summary">{lights}</table></section>
<section id="metrics"><h2>Metrics</h2>{_metrics_table(report)}
{f'<h3>Learning curves</h3>{curve}' if curve else ''}</section>
<section id="findings"><h2>Findings</h2>{findings_table(findings)}</section>
{f'<section id="attribution"><h2>What the model relies on</h2>{explained}</section>'
 if explained else ''}
{f'<section id="resources"><h2>Resources</h2>{resources}</section>' if resources else ''}
{f'<section id="effort"><h2>When will it be good enough?</h2>{effort}</section>'
 if effort else ''}
{f'<section id="privacy"><h2>Privacy</h2>{privacy}</section>' if privacy else ''}
{f'<section id="score"><h2>ML Test Score</h2>{score}</section>' if score else ''}
<section id="run"><h2>Run</h2><table>{run_rows}</table>
{f'<h3>What pins this result</h3>{pinned}' if pinned else ''}</section>
""")
