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

from guardrail.report.text import escape as _e
from guardrail.report.text import number as _num

TOP = 10


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


def sanity_sentence(result: dict[str, Any]) -> tuple[str, str]:
    """(colour, plain sentence) on whether the explanation can be trusted, for the summary."""
    sanity = result.get("sanity") or {}
    top = ", ".join(result.get("ranking", [])[:3])
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
    return "grey", f"The model relies most on {top} (no sanity check was run)."


def attribution_section(result: dict[str, Any], folder: Path | None) -> str:
    """What the model relies on: ranking with intervals, plots, reliability, per-sample support."""
    names = [f["name"] for f in result.get("features", [])]
    methods = result.get("methods", {})
    perm, ig = methods.get("permutation") or {}, methods.get("integrated_gradients") or {}
    rows = []
    for name in result.get("ranking", [])[:TOP]:
        i = names.index(name)
        cells = (f"<td class='num'>{_num(perm['importance'][i])}</td><td class='num'>"
                 f"{_num(perm['ci_low'][i])} to {_num(perm['ci_high'][i])}</td>") if perm else ""
        cells += f"<td class='num'>{_num(ig['importance'][i])}</td>" if ig else ""
        rows.append(f"<tr><td>{_e(name)}</td>{cells}</tr>")
    head = ("<th>permutation: mean |change of the prediction|</th><th>95% interval</th>"
            if perm else "") + ("<th>Integrated Gradients: mean |attribution|</th>" if ig else "")
    plots = "".join(_image(folder, name, kind.replace("_", " "))
                    for kind, name in (result.get("plots") or {}).items())
    return (f"<p>Which inputs move the model's predictions most, measured on "
            f"{_num(result.get('samples'))} held-out samples.</p>"
            f"<table><tr><th>feature</th>{head}</tr>{''.join(rows)}</table>{plots}"
            f"{_reliability(result)}{_local(result)}")


def _reliability(result: dict[str, Any]) -> str:
    agreement = result.get("agreement") or {}
    sanity = result.get("sanity") or {}
    ig = (result.get("methods") or {}).get("integrated_gradients") or {}
    verdict = {True: "passed", False: "failed", None: "not run"}[sanity.get("passed")]
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


def _local(result: dict[str, Any]) -> str:
    local = sorted(result.get("local") or [], key=lambda r: (r.get("supported", True),
                                                            -(r.get("percentile") or 0)))
    if not local:
        return ""
    predictions = dict(enumerate(result.get("predictions") or []))
    rows = "".join(
        f"<tr><td class='num'>{_e(r['sample'])}</td>"
        f"<td class='num'>{_num(predictions.get(r['sample']))}</td>"
        f"<td>{'yes' if r.get('supported') else '<b>no</b>'}</td>"
        f"<td class='num'>{_num(r.get('percentile'))}</td>"
        f"<td class='num'>{_e(r.get('unseen_values', 0))}</td>"
        f"<td>{_e(', '.join(r.get('top_features', [])))}</td></tr>" for r in local[:TOP])
    weak = sum(not r.get("supported", True) for r in local)
    return (f"<h3>Per sample: is there training data nearby?</h3><p>{weak} of {len(local)} "
            "explained samples lie where training data was sparse; their predictions and "
            "explanations are the least reliable (listed first).</p><table><tr><th>sample</th>"
            "<th>prediction</th><th>near training data</th><th>distance percentile among "
            "training samples</th><th>unseen ids/categories</th><th>top features</th></tr>"
            f"{rows}</table>")


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
        ("model", f"{model.get('parameters', '?')} parameters; final weights "
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
