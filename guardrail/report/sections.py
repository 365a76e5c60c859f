"""report.html's sections from a run directory's artefacts: attribution, resources, manifest.

Each function takes what a callback recorded (a dict read from JSON) and returns an escaped
HTML fragment, '' when there is nothing to show. Plots are embedded as data URIs, so the page
stays one self-contained file; only PNGs inside the run's ``attribution/`` folder are read.

Example:
    >>> result = {"features": [{"name": "<i>area</i>"}], "ranking": ["<i>area</i>"],
    ...           "methods": {"permutation": {"importance": [1.0], "ci_low": [0.9],
    ...                                       "ci_high": [1.1]}}, "local": []}
    >>> html = attribution_section(result, None)
    >>> "&lt;i&gt;area&lt;/i&gt;" in html and "<i>area</i>" not in html
    True

"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from guardrail.checks.attribution import DEFAULTS
from guardrail.report.text import escape as _e
from guardrail.report.text import number as _num

TOP = 10
CONCENTRATED = 1.5  # a region holding this many times its share of the area is "where it looks"


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON artefact, or None when it is missing or unreadable (the page renders without)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _image(folder: Path | None, name: str, alt: str) -> str:
    if folder is None:
        return ""
    path = folder / Path(name).name  # never outside the folder
    if path.suffix != ".png" or not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<figure><img src='data:image/png;base64,{data}' alt='{_e(alt)}'></figure>"


def _figure(folder: Path | None, name: str | None, alt: str, caption: str = "") -> str:
    image = _image(folder, name, alt) if name else ""
    if image and caption:
        image = image.replace("</figure>", f"<figcaption>{_e(caption)}</figcaption></figure>")
    return image


def spatial_answer(result: dict[str, Any], of_the_grid: bool = True) -> str | None:
    """Where in its first grid input the model looks, in plain words; None without a grid.

    Example:
        >>> grid = {"top_region": "bottom-right", "regions": [
        ...     {"name": "top", "rows": [0, 11], "columns": [0, 48], "share": 0.4, "area": 0.7},
        ...     {"name": "bottom-right", "rows": [12, 36], "columns": [25, 48], "share": 0.6,
        ...      "area": 0.3}]}
        >>> spatial_answer({"grids": {"0": grid}})
        'the bottom-right of the grid (rows 12-36, columns 25-48: 60% of the attribution on 30% \
of its area)'
        >>> grid["regions"][1]["share"] = 0.35  # barely more than its area: said so
        >>> spatial_answer({"grids": {"0": grid}}, of_the_grid=False)
        'the bottom-right, though little more than the rest (rows 12-36, columns 25-48: 35% of \
the attribution on 30% of its area)'

    """
    for grid in (result.get("grids") or {}).values():
        regions = {r["name"]: r for r in grid.get("regions") or []}
        top = regions.get(grid.get("top_region"))
        if top is None or len(regions) < 2:
            continue
        (r0, r1), (c0, c1) = top["rows"], top["columns"]
        share, area = top.get("share"), top.get("area")
        spread = share is not None and area and share < CONCENTRATED * area
        return (f"the {top['name']}{' of the grid' if of_the_grid else ''}"
                f"{', though little more than the rest' if spread else ''} (rows {r0}-{r1}, "
                f"columns {c0}-{c1}" + (f": {share:.0%} of the attribution on {area:.0%} of "
                                        "its area" if share is not None and area else "") + ")")
    return None


def relies_on(result: dict[str, Any]) -> str:
    """What the model relies on most: its top features, and where in a grid it looks.

    A grid whose one channel is the model's only feature has a single feature to name: the
    answer is then where in the grid (see :func:`spatial_answer`).

    Example:
        >>> relies_on({"ranking": ["area", "year", "rooms", "garage"]})
        'area, year, rooms'

    """
    top = ", ".join(result.get("ranking", [])[:3])
    if len(result.get("features") or []) <= 1:
        return spatial_answer(result) or top
    where = spatial_answer(result, of_the_grid=False)
    return f"{top}, and within the grid on {where}" if where else top


def sanity_sentence(result: dict[str, Any]) -> tuple[str, str]:
    """(colour, plain sentence) on whether the explanation can be trusted, for the summary."""
    sanity = result.get("sanity") or {}
    top = relies_on(result)
    ratio = sanity.get("loss_ratio")
    learned = sanity.get("passed") is False and ratio is not None and \
        ratio <= DEFAULTS.max_loss_ratio  # attribution.sanity_failed is then an info
    if learned and len(result.get("features") or []) > 1:
        # the model predicts far better than random copies; only the gradient picture
        # resembles theirs: the permutation ranking stands
        features = ", ".join(result.get("ranking", [])[:3])  # the spatial part is gradients'
        return "green", (f"The model relies most on {features}, by permutation importance, "
                         "which measures the trained model directly; its gradient picture (and "
                         "heat maps) partly reflects the architecture rather than training.")
    if learned:
        return "amber", (f"The model looks most at {top}, but copies of it with random weights "
                         "look much the same: the map shows what the architecture emphasises "
                         "more than what training taught.")
    if sanity.get("passed") is False:
        return "amber", ("The explanation failed its sanity check: it barely changes when the "
                         "model's weights are randomised, so it does not show what the model "
                         "learned.")
    rho = (result.get("agreement") or {}).get("features")
    if rho is not None and rho < 0.2:
        return "amber", f"Two explanation methods disagree (Spearman {rho:.2f}); the model " \
                        f"relies most on {top} by one of them."
    if sanity.get("passed"):
        return "green", f"The model relies most on {top}; the explanation passed its sanity " \
                        "check."
    if sanity:
        return "grey", (f"The model relies most on {top} (its sanity check was inconclusive: "
                        f"{_inconclusive(sanity)}).")
    return "grey", f"The model relies most on {top} (no sanity check was run)."


def attribution_section(result: dict[str, Any], folder: Path | None) -> str:
    """What the model relies on: ranking with intervals, plots, reliability, per-sample support.

    Several features get a ranking table and bars; a grid gets the map of where the
    attribution lies, its regions and per-sample heat maps (padding left out).
    """
    names = [f["name"] for f in result.get("features", [])]
    methods = result.get("methods", {})
    perm, ig = methods.get("permutation") or {}, methods.get("integrated_gradients") or {}
    plots = dict(result.get("plots") or {})
    spatial_only = len(names) <= 1 and bool(result.get("grids"))
    split = "training" if result.get("explained") == "training" else "held-out"
    parts = [f"<p>Which {'parts of the input' if spatial_only else 'inputs'} move the model's "
             f"predictions most, measured on {_num(result.get('samples'))} {split} samples."
             "</p>"]
    if not spatial_only:
        rows = []
        for name in result.get("ranking", [])[:TOP]:
            i = names.index(name)
            cells = (f"<td class='num'>{_num(perm['importance'][i])}</td><td class='num'>"
                     f"{_num(perm['ci_low'][i])} to {_num(perm['ci_high'][i])}</td>"
                     ) if perm else ""
            cells += f"<td class='num'>{_num(ig['importance'][i])}</td>" if ig else ""
            rows.append(f"<tr><td class='check'>{_e(name)}</td>{cells}</tr>")
        head = ("<th>permutation: mean |change of the prediction|</th><th>95% interval</th>"
                if perm else "") + ("<th>Integrated Gradients: mean |attribution|</th>"
                                    if ig else "")
        parts.append(f"<table><tr><th>feature</th>{head}</tr>{''.join(rows)}</table>")
        parts.append(_figure(folder, plots.pop("global", None), "global importance"))
    for key, grid in (result.get("grids") or {}).items():
        parts.append(_grid_part(result, key, grid, folder, plots))
    parts.extend(_figure(folder, name, kind.replace("_", " "), "Mean |Integrated Gradients| "
                         "per time step of the sequence input: which steps move the prediction."
                         if kind.startswith("time_profile") else "")
                 for kind, name in plots.items())
    return "".join(parts) + _reliability(result) + _local(result)


def _grid_part(result: dict[str, Any], key: str, grid: dict[str, Any], folder: Path | None,
               plots: dict[str, str]) -> str:
    """One grid input: where the attribution lies, its regions, and the heat maps."""
    regions = sorted(grid.get("regions") or [], key=lambda r: -(r.get("share") or 0) /
                     max(r.get("area") or 1e-12, 1e-12))
    where = spatial_answer({"grids": {key: grid}})
    text = [f"The model looks most at {where}." if where else ""]
    trimmed = grid.get("trimmed") or {}
    h, w = (grid.get("shape") or [0, 0])[:2]
    left_out = [f"rows {a}-{b}" for a, b in (
        (0, trimmed.get("top", 0) - 1), (h - trimmed.get("bottom", 0), h - 1)) if b >= a]
    left_out += [f"columns {a}-{b}" for a, b in (
        (0, trimmed.get("left", 0) - 1), (w - trimmed.get("right", 0), w - 1)) if b >= a]
    if left_out:
        said = " and ".join(left_out)
        text.append(f"{said[0].upper()}{said[1:]} of the {h} x {w} grid hold one value in "
                    "every training sample (padding) and are left out.")
    if result.get("task", {}).get("task") == "reconstruction":
        text.append("The output explained is the mean of the reconstructed field.")
    rows = "".join(
        f"<tr><td>{_e(r['name'])}</td><td class='num'>{r['rows'][0]}-{r['rows'][1]}</td>"
        f"<td class='num'>{r['columns'][0]}-{r['columns'][1]}</td>"
        f"<td class='num'>{_share(r.get('share'))}</td><td class='num'>{_share(r.get('area'))}"
        "</td></tr>" for r in regions[:3])
    table = ("<table><tr><th>region</th><th>rows</th><th>columns</th><th>share of the "
             "attribution</th><th>share of the area</th></tr>" f"{rows}</table>") if rows else ""
    occlusion = (result.get("settings") or {}).get("occlusion_samples")
    return (f"<h3>Where in the grid{'' if key == '0' else f' (input {_e(key)})'}</h3>"
            f"<p>{_e(' '.join(t for t in text if t))}</p>{table}"
            + _figure(folder, plots.pop(f"regions_input{key}", None), "where the model looks",
                      "Mean |Integrated Gradients| per pixel over the explained samples; each "
                      "region is labelled with its share of the attribution, the top one "
                      "outlined in green.")
            + _figure(folder, plots.pop(f"heat_maps_input{key}", None), "heat maps",
                      "Per sample: the input, then Integrated Gradients and occlusion (windows "
                      "set to the training mean" + (
                          "" if not occlusion else ", the first sample" if occlusion == 1 else
                          f", the first {occlusion} samples") + "): brighter moves the output "
                      "more."))


def _share(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else ""


def _reliability(result: dict[str, Any]) -> str:
    agreement = result.get("agreement") or {}
    sanity = result.get("sanity") or {}
    ig = (result.get("methods") or {}).get("integrated_gradients") or {}
    verdict = {True: "passed", False: "failed", None: "not run"}[sanity.get("passed")]
    if sanity and sanity.get("passed") is None:
        verdict = f"inconclusive ({_inconclusive(sanity)})"
    items = [
        ("Agreement of the two methods (Spearman over features; 1 = same ranking)",
         agreement.get("features")),
        ("Agreement of IG and occlusion heat maps (median Spearman over pixels)",
         agreement.get("pixels")),
        (f"Randomisation sanity check: {verdict}. Similarity of the explanation to that of "
         "a model with random weights (low is good)", sanity.get("similarity_to_randomised")),
        ("... and between two random models (what the architecture alone gives)",
         sanity.get("similarity_between_randomised")),
        ("IG completeness error (share of the prediction left unexplained)",
         ig.get("completeness_error")),
    ]
    rows = "".join(f"<tr><td>{_e(text)}</td><td class='num'>{_num(value)}</td></tr>"
                   for text, value in items if value is not None or "sanity" in text)
    return f"<h3>How far to trust it</h3><table>{rows}</table>"


def _inconclusive(sanity: dict[str, Any]) -> str:
    """Why a randomisation test that ran has no verdict, in words.

    Example:
        >>> _inconclusive({"elements": 2, "loss_ratio": None})
        '2 inputs are too few to compare rankings, and no error measure suits this task'

    """
    why = []
    if sanity.get("similarity_to_randomised") is None:
        why.append(f"{sanity.get('elements', 'too few')} inputs are too few to compare rankings"
                   if (sanity.get("elements") or 0) < 3 else "the rankings could not be compared")
    if sanity.get("loss_ratio") is None:
        why.append("no error measure suits this task")
    return ", and ".join(why) or "no figures"


def _local(result: dict[str, Any]) -> str:
    local = sorted(result.get("local") or [], key=lambda r: (r.get("supported", True),
                                                            -(r.get("percentile") or 0)))
    if not local:
        return ""
    errors, probabilities = result.get("reconstruction_errors"), result.get("probabilities")
    classes = result.get("classes")
    values = dict(enumerate(errors or probabilities or result.get("predictions") or []))
    value_head = ("reconstruction error (RMSE, input units)" if errors else
                  "predicted class (probability)" if probabilities and classes else
                  "probability of the positive class" if probabilities else "prediction")

    def value_cell(sample: int) -> str:
        if classes and probabilities and sample < len(classes):
            return f"{_e(classes[sample])} ({_num(values.get(sample))})"
        return _num(values.get(sample))

    kinds = {f.get("kind") for f in result.get("features") or []}
    columns: list[tuple[str, Any]] = [
        ("sample", lambda r: f"<td class='num'>{_e(r['sample'])}</td>"),
        (value_head, lambda r: f"<td class='num'>{value_cell(r['sample'])}</td>"),
        ("near training data",
         lambda r: f"<td>{'yes' if r.get('supported') else '<b>no</b>'}</td>"),
    ]
    if any(r.get("percentile") is not None for r in local):  # none without a float input
        columns.append(("distance percentile among training samples",
                        lambda r: f"<td class='num'>{_num(r.get('percentile'))}</td>"))
    if kinds & {"categorical", "id"}:
        columns.append(("unseen ids/categories",
                        lambda r: f"<td class='num'>{_e(r.get('unseen_values', 0))}</td>"))
    if len(result.get("features") or []) > 1:
        columns.append(("top features",
                        lambda r: f"<td class='check'>{_e(', '.join(r.get('top_features', [])))}"
                                  "</td>"))
    if any(r.get("top_region") for r in local):
        columns.append(("where in the grid it looks most",
                        lambda r: f"<td>{_e(r.get('top_region', ''))}</td>"))
    head = "".join(f"<th>{_e(name)}</th>" for name, _ in columns)
    rows = "".join(f"<tr>{''.join(cell(r) for _, cell in columns)}</tr>" for r in local[:TOP])
    weak = sum(not r.get("supported", True) for r in local)
    shown = f" The {TOP} least supported are listed." if len(local) > TOP else ""
    return (f"<h3>Per sample: is there training data nearby?</h3><p>{weak} of {len(local)} "
            "explained samples lie where training data was sparse; their predictions and "
            f"explanations are the least reliable (listed first).{shown}</p><table><tr>{head}"
            f"</tr>{rows}</table>")


def _capacity(value: float, summary: dict[str, Any]) -> str:
    capacity = summary.get("host_capacity_mb")
    return f"{value:,.0f} / {capacity:,.0f} MiB" if capacity else f"{value:,.0f} MiB"


RESOURCES: tuple[tuple[str, str, Callable[[Any, dict[str, Any]], str]], ...] = (
    # (label, key of ResourceMonitor's summary, how to show the value), in reading order
    ("processes", "world_size", lambda v, _: f"{v:.0f}"),
    ("device", "device", lambda v, _: str(v)),
    ("samples per second (all processes)", "samples_per_s", lambda v, _: f"{v:,.0f}"),
    ("time per training step", "step_s", lambda v, _: f"{v * 1000:.1f} ms"),
    ("share of the step spent waiting for data", "data_wait_fraction", lambda v, _: f"{v:.1%}"),
    ("peak memory of the training process", "host_rss_peak_mb", lambda v, _: f"{v:,.0f} MiB"),
    ("host memory at its fullest / capacity", "host_used_mb", _capacity),
    ("peak device memory", "device_mem_peak_mb", lambda v, _: f"{v:,.0f} MiB"),
    ("GPU utilisation", "gpu_util_percent", lambda v, _: f"{v:.0f}%"),
)


def resources_section(resources: dict[str, Any] | None) -> str:
    """ResourceMonitor's summary in plain words ('' without one); unmeasured rows are left out.

    Example:
        >>> "1.5 ms" in resources_section({"step_s": 0.0015, "gpu_util_percent": None})
        True

    """
    if not resources:
        return ""
    rows = []
    for label, key, show in RESOURCES:
        value = resources.get(key)
        if value is None:
            continue
        try:
            text = show(value, resources)
        except (TypeError, ValueError):  # a summary from another version: show it raw
            text = str(value)
        rows.append(f"<tr><th>{_e(label)}</th><td class='num'>{_e(text)}</td></tr>")
    return f"<table>{''.join(rows)}</table>" if rows else ""


def manifest_section(manifest: dict[str, Any] | None) -> str:
    """The six things that pin a result, one line each ('' without a manifest)."""
    if not manifest:
        return ""
    hw, platform = manifest.get("hardware") or {}, manifest.get("platform") or {}
    source, config = manifest.get("source") or {}, manifest.get("configuration") or {}
    packages = platform.get("packages") or {}
    data = manifest.get("data") or {}
    model = manifest.get("model") or {}
    gpus = ", ".join(g.get("name", "?") for g in hw.get("gpus") or []) or "none"
    splits = ", ".join(
        f"{k}: {_count(v.get('samples'))} samples" + (
            f" (fingerprint of {_count(v['sampled'].get('hashed'))})" if v.get("sampled") else "")
        for k, v in data.items() if isinstance(v, dict) and k != "order")
    items = [
        ("hardware", f"{hw.get('cpu', '?')} ({hw.get('cpu_count', '?')} cores); GPUs: {gpus}"),
        ("platform", f"{platform.get('os', '?')}, Python {platform.get('python', '?')}, torch "
                     f"{packages.get('torch', '?')}, lightning {packages.get('lightning', '?')}"),
        ("source", f"{source.get('commit') or source.get('hash') or '?'}"
                   f"{' (uncommitted changes)' if source.get('dirty') else ''}"),
        ("configuration", f"hash {config.get('hash', '?')}; overrides: "
                          f"{' '.join(config.get('overrides') or []) or '(none)'}"),
        ("training data", splits or "not fingerprinted"),
        ("model", f"{_count(model.get('parameters'))} parameters; final weights "
                  f"{model.get('final_hash', '?')}"),
    ]
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in items)
    return f"<table>{rows}</table>"


def _count(value: Any) -> str:
    """A sample count with thousands separators; '?' when the manifest has none.

    Example:
        >>> _count(280), _count(1234567), _count(None)
        ('280', '1,234,567', '?')
    """
    return f"{value:,}" if isinstance(value, int) else "?"


def effort_section(effort: dict[str, Any] | None) -> str:
    """'When will it be good enough?': the forecast's sentence, the curve with its band.

    ``effort`` is the run's ``effort.json`` (written by ``EffortEstimator``); '' without one.

    Example:
        >>> html = effort_section({"metric": "val/ap", "sentence": "val/ap plateaus near 0.67.",
        ...                        "epochs": [1, 2], "values": [0.5, 0.6], "members": [
        ...                            {"name": "pow3", "weight": 0.7}, {"name": "mmf",
        ...                                                              "weight": 0.3}]})
        >>> "val/ap plateaus near 0.67." in html and "pow3 70%" in html
        True

    """
    from guardrail.report.plots import forecast_svg

    if not effort or not effort.get("sentence"):
        return ""
    members = sorted((m for m in effort.get("members") or [] if m.get("weight")),
                     key=lambda m: -m["weight"])
    weights = ", ".join(f"{m['name']} {m['weight']:.0%}" for m in members[:4])
    how = ("Forecast from the validation curve so far: learning-curve families fitted to it, "
           "each weighted by how well it predicted epochs it had not seen"
           + (f" ({weights})" if members else "")
           + "; the band holds the metric with 80% probability.")
    return (f"<p><strong>{_e(effort['sentence'])}</strong></p>{forecast_svg(effort)}"
            f"<p class='info'>{_e(how)}</p>")

