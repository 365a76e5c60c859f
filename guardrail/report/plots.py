"""Plots of the report: PNGs of an explanation, and the effort forecast as inline SVG.

Each PNG function (matplotlib's Agg backend, no display needed) writes one file atomically and
returns its name; :func:`attribution_plots` draws all that apply to a result of
:func:`guardrail.attribution.explain`. :func:`forecast_svg` returns the learning-curve forecast
of ``effort.json`` as an SVG string for the page itself.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> result = {"features": [{"name": "a"}, {"name": "b"}],
    ...           "methods": {"permutation": {"importance": [2.0, 1.0],
    ...                       "ci_low": [1.5, 0.5], "ci_high": [2.5, 1.5]}}}
    >>> attribution_plots(d, result, {"ig_maps": {}, "occlusion_maps": {}, "time_profiles": {}})
    {'global': 'global_importance.png'}

"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from guardrail.io import write_bytes

TOP = 15
LABELS = {"permutation": "permutation", "integrated_gradients": "Integrated Gradients"}


def _figure(width: float, height: float, layout: str | None = "constrained") -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout=layout)


def _save(fig: Any, path: Path) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_bytes(path, buf.getvalue())
    return path.name


def global_importance(path: Path, result: dict[str, Any]) -> str:
    """Bars of the top features by each method (scaled to the method's largest), with CIs."""
    names = [f["name"] for f in result["features"]]
    methods = {k: v for k, v in result["methods"].items() if v.get("importance")}
    first = methods.get("permutation") or next(iter(methods.values()))
    order = sorted(range(len(names)), key=lambda i: -(first["importance"][i] or 0))[:TOP]
    fig = _figure(8, 1.2 + 0.32 * len(order))
    ax = fig.add_subplot()
    height = 0.8 / len(methods)
    for m, (key, values) in enumerate(methods.items()):
        scale = max((v for v in values["importance"] if v is not None), default=1.0) or 1.0
        ys = [len(order) - 1 - r + (m - (len(methods) - 1) / 2) * height
              for r in range(len(order))]
        mid = [(values["importance"][i] or 0) / scale for i in order]
        low = [max(mid[r] - (values["ci_low"][i] or 0) / scale, 0) for r, i in enumerate(order)]
        high = [max((values["ci_high"][i] or 0) / scale - mid[r], 0)
                for r, i in enumerate(order)]
        ax.barh(ys, mid, height=height, xerr=[low, high], label=LABELS.get(key, key),
                capsize=2)
    ax.set_yticks(range(len(order)), [names[i] for i in reversed(order)])
    ax.set_xlabel("importance (share of the method's largest), 95% bootstrap interval")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # beside the bars
    return _save(fig, path)


def crop(grid_info: dict[str, Any] | None) -> tuple[slice, slice]:
    """The (rows, columns) slices of a grid's informative extent (``result["grids"][i]``).

    Example:
        >>> crop({"rows": [0, 36], "columns": [0, 48]})
        (slice(0, 37, None), slice(0, 49, None))
        >>> crop(None)
        (slice(None, None, None), slice(None, None, None))

    """
    if not grid_info or "rows" not in grid_info:
        return slice(None), slice(None)
    (r0, r1), (c0, c1) = grid_info["rows"], grid_info["columns"]
    return slice(r0, r1 + 1), slice(c0, c1 + 1)


def _panel(fig: Any, ax: Any, image: Any, title: str, cmap: str, label: str,
           origin: tuple[int, int]) -> None:
    """One image with its colour bar; ticks count rows and columns of the full grid."""
    from matplotlib.ticker import MaxNLocator

    h, w = image.shape
    shown = ax.imshow(image, cmap=cmap, interpolation="nearest",
                      extent=(origin[1] - 0.5, origin[1] + w - 0.5, origin[0] + h - 0.5,
                              origin[0] - 0.5))
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=6, length=2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    bar = fig.colorbar(shown, ax=ax, shrink=0.8, pad=0.02)
    bar.ax.tick_params(labelsize=6)
    bar.set_label(label, fontsize=7)


def heat_maps(path: Path, grid: Any, maps: dict[str, Any], samples: int = 4,
              grid_info: dict[str, Any] | None = None, channel: str = "channel 0") -> str:
    """Per sample: the input's first channel, then each method's heat map, with colour bars.

    Cropped to the grid's informative extent (``grid_info``: padding is left out); ticks
    number the rows and columns of the full grid, as the report's text does. ``channel``
    names the first channel (its feature name).
    """
    n = min(samples, *(len(m) for m in maps.values()))
    rows, columns = crop(grid_info)
    image = grid[:n, 0, rows, columns].float().cpu()
    aspect = image.shape[2] / max(image.shape[1], 1)
    width, height = min(2.3 * aspect + 1.0, 5.0) * (1 + len(maps)), 2.4 * n + 0.3
    # a fixed layout: constrained layout with a colour bar per panel doubles the drawing time
    fig = _figure(width, height, layout=None)
    axes = fig.subplots(n, 1 + len(maps), squeeze=False)
    fig.subplots_adjust(left=0.35 / width, right=1 - 0.6 / width, bottom=0.3 / height,
                        top=1 - 0.3 / height, wspace=0.35, hspace=0.4)
    origin = (rows.start or 0, columns.start or 0)
    labels = {"Integrated Gradients": "|attribution|", "occlusion": "|change of the output|"}
    for s in range(n):
        _panel(fig, axes[s][0], image[s].numpy(), f"sample {s}: input ({channel})", "viridis",
               "input value", origin)
        for ax, (name, m) in zip(axes[s][1:], maps.items(), strict=True):
            _panel(fig, ax, m[s][rows, columns].float().numpy(), f"sample {s}: {name}",
                   "magma", labels.get(name, "|attribution|"), origin)
    return _save(fig, path)


def region_map(path: Path, ig_map: Any, grid_info: dict[str, Any]) -> str:
    """Mean |Integrated Gradients| over the explained samples, with the regions' shares.

    The regions of ``grid_info`` (:func:`guardrail.attribution.features.grid_regions`) are
    outlined and labelled with their share of the attribution; the top one is drawn thicker.
    """
    from matplotlib.patches import Rectangle

    rows, columns = crop(grid_info)
    image = ig_map[:, rows, columns].float().mean(0).numpy()
    h, w = image.shape
    fig = _figure(min(4.4 * w / max(h, 1) + 1.6, 9.0), 4.6)
    ax = fig.add_subplot()
    _panel(fig, ax, image, f"mean over {len(ig_map)} samples: where the model looks",
           "magma", "mean |attribution| (Integrated Gradients)", (rows.start or 0,
                                                                   columns.start or 0))
    for region in grid_info.get("regions") or []:
        (r0, r1), (c0, c1) = region["rows"], region["columns"]
        top = region["name"] == grid_info.get("top_region")
        ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=False,
                               edgecolor="#1a7f37" if top else "white",
                               linewidth=2.5 if top else 0.8, linestyle="-" if top else "--"))
        if region.get("share") is not None:
            ax.text((c0 + c1) / 2, (r0 + r1) / 2, f"{region['share']:.0%}", ha="center",
                    va="center", fontsize=10 if top else 8, color="white",
                    fontweight="bold" if top else "normal")
    return _save(fig, path)


def time_profile(path: Path, profile: Any) -> str:
    """Mean |IG| per time step of a sequence input."""
    fig = _figure(6, 2.4)
    ax = fig.add_subplot()
    ax.bar(range(len(profile)), profile.numpy())
    ax.set_xlabel("time step")
    ax.set_ylabel("mean |attribution|")
    return _save(fig, path)


def attribution_plots(folder: Path, result: dict[str, Any], arrays: dict[str, Any]) -> dict[str,
                                                                                           str]:
    """Every plot that applies; returns ``{kind: file name}`` (files inside ``folder``).

    Feature bars when there are several features; for each grid, the map of where the
    attribution lies (with its regions) and per-sample heat maps, both without padding.
    """
    folder = Path(folder)
    files = {}
    if len(result["features"]) > 1:  # one bar (a one-channel grid) says nothing
        files["global"] = global_importance(folder / "global_importance.png", result)
    for i, ig_map in arrays["ig_maps"].items():
        grid_info = (result.get("grids") or {}).get(str(i))
        if grid_info and grid_info.get("regions"):
            files[f"regions_input{i}"] = region_map(folder / f"regions_input{i}.png", ig_map,
                                                    grid_info)
        maps = {"Integrated Gradients": ig_map}
        if i in arrays["occlusion_maps"]:
            maps["occlusion"] = arrays["occlusion_maps"][i]
        first = next((f["name"] for f in result["features"] if f.get("input") == i
                      and f.get("index") in (0, None) and f["name"] != f"x{i}[0]"), "channel 0")
        files[f"heat_maps_input{i}"] = heat_maps(folder / f"heat_maps_input{i}.png",
                                                 arrays["inputs"][i], maps, grid_info=grid_info,
                                                 channel=first)
    for i, profile in arrays["time_profiles"].items():
        files[f"time_profile_input{i}"] = time_profile(folder / f"time_profile_input{i}.png",
                                                       profile)
    return files


def legend_svg(legend: list[tuple[str, str, str]], x: float, top: float) -> str:
    """A plot's legend, one ``(colour, label, dash)`` line per row, from ``(x, top)``."""
    from guardrail.report.text import escape

    rows = []
    for i, (colour, label, dash) in enumerate(legend):
        ly = top + 14 + 20 * i
        rows.append(f"<line x1='{x}' y1='{ly - 4}' x2='{x + 20}' y2='{ly - 4}' "
                    f"stroke='{colour}' stroke-width='3'"
                    f"{f' stroke-dasharray={chr(39)}{dash}{chr(39)}' if dash else ''}/><text "
                    f"x='{x + 26}' y='{ly}' font-size='12'>{escape(label)}</text>")
    return "".join(rows)


def forecast_svg(effort: dict[str, Any], width: int = 900, height: int = 300) -> str:
    """The validation curve, the forecast's median and interval band, the target, as SVG.

    '' when ``effort`` (an ``effort.json``) has no observed points.

    Example:
        >>> svg = forecast_svg({"metric": "val/ap", "epochs": [1, 2, 3], "values": [.5, .6, .65],
        ...                     "band": {"epoch": [1, 2, 3, 4], "low": [.5, .6, .6, .6],
        ...                              "mid": [.5, .6, .65, .7], "high": [.5, .6, .7, .8]},
        ...                     "target": 0.8, "planned": 4})
        >>> svg[:4], "target 0.8" in svg, "80% interval" in svg
        ('<svg', True, True)

    """
    from guardrail.report.html import COLOURS, _tick_label, nice_ticks
    from guardrail.report.text import escape

    xs = [float(x) for x in effort.get("epochs") or []]
    ys = [float(y) if y is not None else math.nan for y in effort.get("values") or []]
    seen = [(x, y) for x, y in zip(xs, ys, strict=False) if math.isfinite(y)]
    if not seen:
        return ""
    band = effort.get("band") or {}
    bx = [float(v) for v in band.get("epoch") or []]
    rows = [[float(v) if v is not None else math.nan for v in band.get(k) or []]
            for k in ("low", "mid", "high")]
    target = effort.get("target")
    all_x = [x for x, _ in seen] + bx + [float(effort.get("planned") or 0) or seen[-1][0]]
    all_y = [y for _, y in seen] + [v for r in rows for v in r if math.isfinite(v)] + \
        ([float(target)] if isinstance(target, int | float) else [])
    xt = [t for t in nice_ticks(1.0, max(all_x), count=6) if t == int(t)]
    yt = nice_ticks(min(all_y), max(all_y))
    x0, x1, y0, y1 = min(xt[0], 1.0), max(xt[-1], max(all_x)), yt[0], yt[-1]
    left, right, top, bottom = 70, 170, 12, 48
    plot_w, plot_h = width - left - right, height - top - bottom

    def fx(x: float) -> float:
        return left + (x - x0) / ((x1 - x0) or 1) * plot_w

    def fy(y: float) -> float:
        return top + plot_h - (y - y0) / ((y1 - y0) or 1) * plot_h

    parts = [f"<rect x='{left}' y='{top}' width='{plot_w}' height='{plot_h}' fill='none' "
             "stroke='#8c959f'/>"]
    for t in yt:
        parts.append(f"<line x1='{left}' y1='{fy(t):.1f}' x2='{left + plot_w}' "
                     f"y2='{fy(t):.1f}' stroke='#d0d7de' stroke-width='0.7'/><text "
                     f"x='{left - 6}' y='{fy(t) + 4:.1f}' font-size='12' text-anchor='end'>"
                     f"{escape(_tick_label(t))}</text>")
    for t in xt:
        parts.append(f"<line x1='{fx(t):.1f}' y1='{top}' x2='{fx(t):.1f}' y2='{top + plot_h}' "
                     f"stroke='#d0d7de' stroke-width='0.7'/><text x='{fx(t):.1f}' "
                     f"y='{top + plot_h + 17}' font-size='12' text-anchor='middle'>"
                     f"{escape(_tick_label(t))}</text>")
    legend = []
    ok = [i for i in range(len(bx)) if all(math.isfinite(r[i]) for r in rows if len(r) > i)
          and all(len(r) > i for r in rows)]
    if ok:
        upper = " ".join(f"{fx(bx[i]):.1f},{fy(rows[2][i]):.1f}" for i in ok)
        lower = " ".join(f"{fx(bx[i]):.1f},{fy(rows[0][i]):.1f}" for i in reversed(ok))
        parts.append(f"<polygon points='{upper} {lower}' fill='{COLOURS[0]}' "
                     "fill-opacity='0.18' stroke='none'/>")
        mid = " ".join(f"{fx(bx[i]):.1f},{fy(rows[1][i]):.1f}" for i in ok)
        parts.append(f"<polyline fill='none' stroke='{COLOURS[0]}' stroke-width='1.5' "
                     f"stroke-dasharray='6 4' points='{mid}'/>")
        legend += [(COLOURS[0], "forecast (median)", "6 4"), ("#b6d4f5", "80% interval", "")]
    points = " ".join(f"{fx(x):.1f},{fy(y):.1f}" for x, y in seen)
    parts.append(f"<polyline fill='none' stroke='#1f2328' stroke-width='2' points='{points}'/>")
    legend.insert(0, ("#1f2328", f"{effort.get('metric') or 'metric'} (measured)", ""))
    if isinstance(target, int | float) and y0 <= target <= y1:
        parts.append(f"<line x1='{left}' y1='{fy(target):.1f}' x2='{left + plot_w}' "
                     f"y2='{fy(target):.1f}' stroke='{COLOURS[1]}' stroke-width='1.5'/>")
        legend.append((COLOURS[1], f"target {_tick_label(float(target))}", ""))
    planned = effort.get("planned")
    if isinstance(planned, int | float) and x0 <= planned <= x1:
        parts.append(f"<line x1='{fx(planned):.1f}' y1='{top}' x2='{fx(planned):.1f}' "
                     f"y2='{top + plot_h}' stroke='#8c959f' stroke-dasharray='2 3'/>")
        legend.append(("#8c959f", "planned last epoch", "2 3"))
    parts.append(legend_svg(legend, left + plot_w + 14, top))
    parts.append(f"<text x='{left + plot_w / 2:.1f}' y='{height - 8}' font-size='13' "
                 "text-anchor='middle'>epoch</text>"
                 f"<text transform='translate(16 {top + plot_h / 2:.1f}) rotate(-90)' "
                 f"font-size='13' text-anchor='middle'>{escape(effort.get('metric') or '')}"
                 "</text>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' "
            f"width='100%' role='img' aria-label='learning-curve forecast' class='curve'>"
            f"{''.join(parts)}</svg>")
