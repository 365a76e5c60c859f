"""``estimate.html``: the metric against the swept quantity, the fitted band and the answer.

One self-contained page (the run report's style) for what ``guardrail estimate`` wrote to
``estimate.json``: the sentences, a plot on a logarithmic axis of the swept quantity (each
run a dot, the fitted curve's median and 80% band, the forecast points, the target), the
forecast table and the runs.

Example:
    >>> from guardrail.checks.scaling import scaling_forecast
    >>> fc = scaling_forecast([1, 1, 2, 2, 4, 4], [.5, .52, .6, .61, .66, .65], "test/ap",
    ...                       at=[8], target=0.7)
    >>> page = render_estimate({"recipe": "bot", "sweep": {"key": "data.train_fraction"},
    ...                         "forecast": fc, "summary": ["a sentence"], "runs": []})
    >>> page.startswith("<!DOCTYPE html>") and "<svg" in page and "a sentence" in page
    True

"""

from __future__ import annotations

import math
from typing import Any

from guardrail.report.html import COLOURS, _tick_label, log_ticks, nice_ticks, page
from guardrail.report.plots import legend_svg
from guardrail.report.text import escape as _e


def scaling_svg(result: dict[str, Any], width: int = 900, height: int = 320) -> str:
    """The runs, the fitted band and median, the forecasts and the target, log x axis."""
    fc = result.get("forecast") or {}
    quantity = (result.get("sweep") or {}).get("key", "x")
    points = [(p["x"], v) for p in fc.get("points") or [] for v in p.get("values") or []]
    if not points:
        return ""
    band = fc.get("band") or {}
    at = fc.get("at") or []
    target = fc.get("target")
    xs = [x for x, _ in points] + list(band.get("x") or []) + [p["x"] for p in at]
    ys = [y for _, y in points] + [v for k in ("low", "high") for v in band.get(k) or []] + \
        [v for p in at for v in (p["low"], p["high"])] + \
        ([float(target)] if isinstance(target, int | float) else [])
    xt, yt = log_ticks(min(xs), max(xs)), nice_ticks(min(ys), max(ys))
    x0, x1, y0, y1 = math.log(xt[0]), math.log(xt[-1]), yt[0], yt[-1]
    left, right, top, bottom = 70, 190, 12, 48
    plot_w, plot_h = width - left - right, height - top - bottom

    def fx(x: float) -> float:
        return left + (math.log(x) - x0) / ((x1 - x0) or 1) * plot_w

    def fy(y: float) -> float:
        return top + plot_h - (y - y0) / ((y1 - y0) or 1) * plot_h

    parts = [f"<rect x='{left}' y='{top}' width='{plot_w}' height='{plot_h}' fill='none' "
             "stroke='#8c959f'/>"]
    for t in yt:
        parts.append(f"<line x1='{left}' y1='{fy(t):.1f}' x2='{left + plot_w}' y2='{fy(t):.1f}' "
                     f"stroke='#d0d7de' stroke-width='0.7'/><text x='{left - 6}' "
                     f"y='{fy(t) + 4:.1f}' font-size='12' text-anchor='end'>"
                     f"{_e(_tick_label(t))}</text>")
    for t in xt:
        parts.append(f"<line x1='{fx(t):.1f}' y1='{top}' x2='{fx(t):.1f}' y2='{top + plot_h}' "
                     f"stroke='#d0d7de' stroke-width='0.7'/><text x='{fx(t):.1f}' "
                     f"y='{top + plot_h + 17}' font-size='12' text-anchor='middle'>"
                     f"{_e(_tick_label(t))}</text>")
    legend = [("#1f2328", "a run (measured)", "")]
    if band.get("x"):
        bx = band["x"]
        upper = " ".join(f"{fx(x):.1f},{fy(v):.1f}" for x, v in zip(bx, band["high"],
                                                                      strict=True))
        lower = " ".join(f"{fx(x):.1f},{fy(v):.1f}" for x, v in zip(reversed(bx),
                                                                      reversed(band["low"]),
                                                                      strict=True))
        mid = " ".join(f"{fx(x):.1f},{fy(v):.1f}" for x, v in zip(bx, band["mid"], strict=True))
        parts.append(f"<polygon points='{upper} {lower}' fill='{COLOURS[0]}' fill-opacity='0.18'"
                     f" stroke='none'/><polyline fill='none' stroke='{COLOURS[0]}' "
                     f"stroke-width='1.5' stroke-dasharray='6 4' points='{mid}'/>")
        legend += [(COLOURS[0], "fitted curve (median)", "6 4"), ("#b6d4f5", "80% band", "")]
    for p in at:
        parts.append(f"<line x1='{fx(p['x']):.1f}' y1='{fy(p['low']):.1f}' x2='{fx(p['x']):.1f}'"
                     f" y2='{fy(p['high']):.1f}' stroke='{COLOURS[3]}' stroke-width='3'/>"
                     f"<circle cx='{fx(p['x']):.1f}' cy='{fy(p['mid']):.1f}' r='4' "
                     f"fill='{COLOURS[3]}'/>")
    if at:
        legend.append((COLOURS[3], "forecast, 80%", ""))
    parts += [f"<circle cx='{fx(x):.1f}' cy='{fy(y):.1f}' r='3.5' fill='#1f2328'/>"
              for x, y in points]
    if isinstance(target, int | float) and y0 <= target <= y1:
        parts.append(f"<line x1='{left}' y1='{fy(target):.1f}' x2='{left + plot_w}' "
                     f"y2='{fy(target):.1f}' stroke='{COLOURS[1]}' stroke-width='1.5'/>")
        legend.append((COLOURS[1], f"target {_tick_label(float(target))}", ""))
    parts.append(legend_svg(legend, left + plot_w + 14, top))
    metric = fc.get("metric", "")
    parts.append(f"<text x='{left + plot_w / 2:.1f}' y='{height - 8}' font-size='13' "
                 f"text-anchor='middle'>{_e(quantity)} (log scale)</text>"
                 f"<text transform='translate(16 {top + plot_h / 2:.1f}) rotate(-90)' "
                 f"font-size='13' text-anchor='middle'>{_e(metric)}</text>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' "
            f"width='100%' role='img' aria-label='{_e(metric)} against {_e(quantity)}' "
            f"class='curve'>{''.join(parts)}</svg>")


def _f(value: Any, digits: int = 3) -> str:
    if not isinstance(value, int | float):
        return ""
    return "never" if not math.isfinite(value) else f"{value:.{digits}f}"


def render_estimate(result: dict[str, Any]) -> str:
    """The whole estimate.html page for ``estimate.json``'s data."""
    fc = result.get("forecast") or {}
    quantity = (result.get("sweep") or {}).get("key", "x")
    sentences = "".join(f"<li>{_e(s)}</li>" for s in result.get("summary") or [])
    forecasts = "".join(f"<tr><td class='num'>{p['x']:g}</td><td class='num'>{_f(p['low'])}"
                        f"</td><td class='num'>{_f(p['mid'])}</td><td class='num'>"
                        f"{_f(p['high'])}</td><td class='num'>{_f(p['fitted'])}</td></tr>"
                        for p in fc.get("at") or [])
    measured = "".join(f"<tr><td class='num'>{p['x']:g}</td><td class='num'>{p['runs']}</td>"
                       f"<td class='num'>{_f(p['mean'])}</td><td class='num'>{_f(p['sd'])}"
                       f"</td></tr>" for p in fc.get("points") or [])
    runs = "".join(f"<tr><td><code>{_e(r.get('dir', ''))}</code></td><td class='num'>"
                   f"{'' if r.get('x') is None else format(r['x'], 'g')}</td>"
                   f"<td class='num'>{_e(r.get('seed') or '')}</td><td>{_e(r.get('status'))}</td>"
                   f"<td class='num'>{_f(r.get('value'))}</td><td>{_e(r.get('reason', ''))}</td>"
                   "</tr>" for r in result.get("runs") or [])
    metric = fc.get("metric", "")
    title = f"guardrail estimate: {result.get('recipe', '')}, {metric} against {quantity}"
    at_table = (f"<h2>Forecast</h2><table><tr><th>{_e(quantity)}</th><th>10%</th>"
                f"<th>median</th><th>90%</th><th>fitted curve</th></tr>{forecasts}</table>"
                if forecasts else "")
    return page(title, f"""<section id="answer"><h2>The answer</h2><ul>{sentences}</ul>
{scaling_svg(result)}
<p>The curve is a saturating power law in the swept quantity (Hestness et al. 2017); the band
and the intervals come from refitting it to the runs redrawn with their run-to-run noise, and
an interval at a forecast point is where one run there would measure {_e(metric)}.</p>
{at_table}</section>
<section id="measured"><h2>Measured</h2><table><tr><th>{_e(quantity)}</th><th>runs</th>
<th>mean</th><th>sd</th></tr>{measured}</table>
<table><tr><th>run</th><th>{_e(quantity)}</th><th>seed</th><th>status</th>
<th>{_e(metric)}</th><th>note</th></tr>{runs}</table></section>
""")
