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

from guardrail.findings import Finding, Severity
from guardrail.report.sections import (
    attribution_section,
    manifest_section,
    read_json,
    resources_section,
    sanity_sentence,
)
from guardrail.report.text import escape as _e
from guardrail.report.text import number as _num

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:60rem;color:#1f2328;padding:0 1rem}h1{font-size:1.6rem}
h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
td,th{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top;
overflow-wrap:anywhere}svg{max-width:100%;height:auto}
th{background:#f6f8fa}.light{display:inline-block;width:.9rem;height:.9rem;border-radius:50%;
margin-right:.5rem;vertical-align:middle}.green{background:#1a7f37}.amber{background:#bf8700}
.red{background:#cf222e}.grey{background:#8c959f}.summary td{border:none;padding:.25rem .5rem}
code{background:#f6f8fa;padding:0 .2rem}.num{text-align:right;font-variant-numeric:tabular-nums}
.error{color:#cf222e;font-weight:600}.warning{color:#9a6700;font-weight:600}.info{color:#57606a}
figure{margin:1rem 0}figure img{max-width:100%;height:auto}
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
        rows.append(f"<tr><td><code>{_e(name)}</code></td>{cells}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


def learning_curve_svg(history: Sequence[dict[str, Any]], keys: Sequence[str] = ("train/loss",
                       "val/loss"), width: int = 640, height: int = 240) -> str:
    """An inline SVG line chart of ``keys`` over epochs ('' when there is nothing to draw).

    Example:
        >>> learning_curve_svg([{"epoch": 0, "val/loss": 1.0}, {"epoch": 1, "val/loss": 0.5}])[:4]
        '<svg'

    """
    series = {k: [(r["epoch"], float(r[k])) for r in history
                  if isinstance(r.get(k), int | float) and math.isfinite(r[k])] for k in keys}
    series = {k: v for k, v in series.items() if len(v) >= 2}
    if not series:
        return ""
    xs = [x for v in series.values() for x, _ in v]
    ys = [y for v in series.values() for _, y in v]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    pad, colours = 40, ("#0969da", "#cf222e", "#1a7f37", "#8250df")

    def px(x: float, y: float) -> str:
        fx = pad + (x - x0) / ((x1 - x0) or 1) * (width - 2 * pad)
        fy = height - pad - (y - y0) / ((y1 - y0) or 1) * (height - 2 * pad)
        return f"{fx:.1f},{fy:.1f}"

    lines, legend = [], []
    for i, (key, pts) in enumerate(series.items()):
        colour = colours[i % len(colours)]
        lines.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' "
                     f"points='{' '.join(px(x, y) for x, y in pts)}'/>")
        legend.append(f"<text x='{width - 150}' y='{20 + 16 * i}' fill='{colour}' "
                      f"font-size='12'>{_e(key)}</text>")
    axes = (f"<line x1='{pad}' y1='{height - pad}' x2='{width - pad}' y2='{height - pad}' "
            f"stroke='#8c959f'/><line x1='{pad}' y1='{pad}' x2='{pad}' y2='{height - pad}' "
            f"stroke='#8c959f'/><text x='{pad}' y='{height - 12}' font-size='11'>epoch {x0}"
            f"</text><text x='{width - pad - 40}' y='{height - 12}' font-size='11'>epoch {x1}"
            f"</text><text x='2' y='{pad}' font-size='11'>{_num(y1)}</text>"
            f"<text x='2' y='{height - pad}' font-size='11'>{_num(y0)}</text>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"role='img' aria-label='learning curves'>{axes}{''.join(lines)}"
            f"{''.join(legend)}</svg>")


def _findings_table(findings: Sequence[Finding]) -> str:
    if not findings:
        return "<p>No findings.</p>"
    ordered = sorted(findings, key=lambda f: (-f.severity.rank, f.check))
    rows = "".join(
        f"<tr><td class='{_e(f.severity.value)}'>{_e(f.severity.value)}</td>"
        f"<td><code>{_e(f.check)}</code></td><td>{_e(f.where or '')}</td>"
        f"<td>{_e(f.message)}</td><td>{_e(f.hint)}</td>"
        f"<td class='num'>{_e('' if f.step is None else f.step)}</td></tr>"
        for f in ordered
    )
    return ("<table><tr><th>severity</th><th>check</th><th>where</th><th>what</th>"
            f"<th>what to do</th><th>step</th></tr>{rows}</table>")


def render_html(report: dict[str, Any], findings: Sequence[Finding],
                run_dir: str | Path | None = None) -> str:
    """The whole report page for a run's ``report`` dict and ``findings``.

    With ``run_dir``, the artefacts there are shown too: ``attribution/attribution.json``
    with its plots, and ``manifest.json``.
    """
    recipe = report.get("recipe") or "custom model"
    folder = Path(run_dir) if run_dir is not None else None
    attribution = read_json(folder / "attribution" / "attribution.json") if folder else None
    manifest = read_json(folder / "manifest.json") if folder else None
    lights = "".join(f"<tr><td><span class='light {c}'></span></td><td>{_e(text)}</td></tr>"
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
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>guardrail report: {_e(recipe)}</title><style>{_CSS}</style></head>
<body>
<h1>guardrail report: {_e(recipe)}</h1>
<section id="summary"><h2>Summary</h2><table class="summary">{lights}</table></section>
<section id="metrics"><h2>Metrics</h2>{_metrics_table(report)}
{f'<h3>Learning curves</h3>{curve}' if curve else ''}</section>
<section id="findings"><h2>Findings</h2>{_findings_table(findings)}</section>
{f'<section id="attribution"><h2>What the model relies on</h2>{explained}</section>'
 if explained else ''}
{f'<section id="resources"><h2>Resources</h2>{resources}</section>' if resources else ''}
<section id="run"><h2>Run</h2><table>{run_rows}</table>
{f'<h3>What pins this result</h3>{pinned}' if pinned else ''}</section>
</body></html>
"""
