"""Explain why two runs differ, most likely causes first.

Reads only the run directories (manifest.json, report.json): configuration keys, effective
settings, data fingerprints (content versus order), source code, installed packages,
hardware, the first step at which the parameter-hash trajectories diverge, and metric deltas.
Paths inside each run's own directory are compared as ``<run>``, so two runs of the same
config in different folders are identical.

Example:
    >>> a = {"configuration": {"resolved": {"data": {"shuffle": False}}}}
    >>> b = {"configuration": {"resolved": {"data": {"shuffle": True}}}}
    >>> [(d["category"], d["key"]) for d in diff_manifests(a, b, "ra", "rb")]
    [('config', 'data.shuffle')]

"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from guardrail.errors import GuardrailError

CATEGORIES = ("config", "effective", "data", "code", "trajectory", "packages", "hardware",
              "metrics")
_WHY = {
    "config": "a configuration key differs",
    "effective": "a setting read from the live objects differs",
    "data": "the training data differs",
    "code": "the source code differs",
    "trajectory": "the weights diverged during training",
    "packages": "an installed package differs",
    "hardware": "the hardware differs",
    "metrics": "a result differs",
}


def load_manifest(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run's manifest.json and report.json (the latter may be empty)."""
    run_dir = Path(run_dir)
    path = run_dir / "manifest.json"
    if not path.is_file():
        raise GuardrailError(
            f"'{run_dir}' has no manifest.json: it is not a run directory, or it ran without "
            "the RunManifest guardrail (guardrails=off). Pass two folders written by "
            "`python -m guardrail.train`."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        report_path = run_dir / "report.json"
        report = json.loads(report_path.read_text(encoding="utf-8")) \
            if report_path.is_file() else {}
    except json.JSONDecodeError as err:
        raise GuardrailError(f"'{run_dir}' holds a corrupt JSON file ({err}).") from err
    return manifest, report


def _relative(flat: dict[str, Any], run_dir: str) -> dict[str, Any]:
    if not run_dir:
        return flat
    return {k: v.replace(run_dir, "<run>") if isinstance(v, str) else v for k, v in flat.items()}


def _diff(category: str, a: dict[str, Any], b: dict[str, Any], note: str = "") -> list[dict]:
    out = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "(absent)") != b.get(key, "(absent)"):
            out.append({"category": category, "key": key, "a": a.get(key, "(absent)"),
                        "b": b.get(key, "(absent)"), "note": note})
    return out


def _data(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for split in sorted((set(a) | set(b)) - {"order"}):
        sa, sb = a.get(split) or {}, b.get(split) or {}
        if not isinstance(sa, dict) or not isinstance(sb, dict):
            continue
        if sa.get("content") != sb.get("content"):
            note = (f"{sa.get('samples')} vs {sb.get('samples')} samples"
                    if sa.get("samples") != sb.get("samples")
                    else "not comparable: the fingerprints were hashed on different samples"
                    if sa.get("sampled") != sb.get("sampled")
                    else "same number of samples, different samples: split membership changed")
            out.append({"category": "data", "key": f"{split}.content", "a": sa.get("content"),
                        "b": sb.get("content"), "note": note})
        else:
            out.append({"category": "data", "key": f"{split}.content", "a": sa.get("content"),
                        "b": sb.get("content"), "note": "same", "same": True})
    oa, ob = a.get("order") or {}, b.get("order") or {}
    if oa.get("digest") != ob.get("digest"):
        epochs = sorted(set(oa.get("per_epoch", {})) | set(ob.get("per_epoch", {})), key=int)
        first = next((e for e in epochs if oa.get("per_epoch", {}).get(e)
                      != ob.get("per_epoch", {}).get(e)), None)
        out.append({"category": "data", "key": "order", "a": oa.get("digest"),
                    "b": ob.get("digest"),
                    "note": f"the batches seen differ from epoch {first} on"})
    return out


def _trajectory(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    ta = {t["step"]: t["hash"] for t in a.get("trajectory", [])}
    tb = {t["step"]: t["hash"] for t in b.get("trajectory", [])}
    out = []
    if a.get("initial_hash") != b.get("initial_hash"):
        out.append({"category": "trajectory", "key": "initial_weights",
                    "a": a.get("initial_hash"), "b": b.get("initial_hash"),
                    "note": "the runs started from different weights"})
    common = sorted(set(ta) & set(tb))
    first = next((s for s in common if ta[s] != tb[s]), None)
    if first is not None:
        before = [s for s in common if s < first]
        note = f"identical up to step {before[-1]}" if before else "already at the first check"
        out.append({"category": "trajectory", "key": f"step {first}", "a": ta[first],
                    "b": tb[first], "note": f"first divergence; {note}"})
    if a.get("final_hash") != b.get("final_hash") and first is None:
        out.append({"category": "trajectory", "key": "final_weights", "a": a.get("final_hash"),
                    "b": b.get("final_hash"), "note": "diverged after the last trajectory step"})
    return out


def _metrics(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for split in ("test", "val", "train"):
        ma, mb = a.get(split) or {}, b.get(split) or {}
        for name in sorted(set(ma) | set(mb)):
            va, vb = ma.get(name), mb.get(name)
            if va != vb:
                delta = (vb - va) if isinstance(va, int | float) and isinstance(vb, int | float) \
                    else None
                out.append({"category": "metrics", "key": f"{split}/{name}", "a": va, "b": vb,
                            "note": f"delta {delta:+.4g}" if delta is not None else ""})
    return out


def diff_manifests(a: dict[str, Any], b: dict[str, Any], run_a: str = "", run_b: str = "",
                   report_a: dict[str, Any] | None = None,
                   report_b: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every difference, ordered by category (most likely cause first), then key."""
    from guardrail.effective import flatten  # imports torch: only when a diff is made

    ca, cb = a.get("configuration") or {}, b.get("configuration") or {}
    out = _diff("config", _relative(flatten(ca.get("resolved") or {}), run_a),
                _relative(flatten(cb.get("resolved") or {}), run_b))
    strip = [o for o in ca.get("overrides") or [] if not o.startswith("hydra.")], \
        [o for o in cb.get("overrides") or [] if not o.startswith("hydra.")]
    if strip[0] != strip[1]:
        out.append({"category": "config", "key": "(command-line overrides)",
                    "a": " ".join(strip[0]), "b": " ".join(strip[1]), "note": ""})
    out += _diff("effective", ca.get("effective") or {}, cb.get("effective") or {})
    out += _data(a.get("data") or {}, b.get("data") or {})
    sa, sb = a.get("source") or {}, b.get("source") or {}
    out += _diff("code", {k: _plain(sa.get(k)) for k in ("commit", "dirty", "patch", "hash")},
                 {k: _plain(sb.get(k)) for k in ("commit", "dirty", "patch", "hash")})
    out += _trajectory(a.get("model") or {}, b.get("model") or {})
    out += _diff("packages", (a.get("platform") or {}).get("packages") or {},
                 (b.get("platform") or {}).get("packages") or {})
    ha = {k: v for k, v in (a.get("hardware") or {}).items() if k != "gpus"}
    hb = {k: v for k, v in (b.get("hardware") or {}).items() if k != "gpus"}
    out += _diff("hardware", ha, hb)
    out += _metrics((report_a or {}).get("metrics") or {}, (report_b or {}).get("metrics") or {})
    return out


def _plain(value: Any) -> Any:
    return value.get("hash") if isinstance(value, dict) else value


def diff_runs(run_a: str | Path, run_b: str | Path) -> list[dict[str, Any]]:
    """:func:`diff_manifests` of two run directories."""
    (ma, ra), (mb, rb) = load_manifest(run_a), load_manifest(run_b)
    return diff_manifests(ma, mb, str(Path(run_a).resolve()), str(Path(run_b).resolve()), ra, rb)


def is_identical(differences: list[dict[str, Any]]) -> bool:
    """True when nothing but equal-content notes remain."""
    return not [d for d in differences if not d.get("same")]


def format_diff(differences: list[dict[str, Any]], run_a: str, run_b: str) -> str:
    """Readable text, one block per category, most likely cause first."""
    real = [d for d in differences if not d.get("same")]
    if not real:
        return (f"The runs are identical: {run_a} and {run_b} "
                "(config, settings, data, code, weights, metrics).")
    lines = [f"A: {run_a}", f"B: {run_b}", ""]
    for category in CATEGORIES:
        rows = [d for d in differences if d["category"] == category]
        if not [d for d in rows if not d.get("same")]:
            continue
        lines.append(f"{category}: {_why(category, rows)}")
        for d in rows:
            note = f"   ({d['note']})" if d.get("note") else ""
            lines.append(f"  {d['key']}: {_short(d['a'])} → {_short(d['b'])}{note}")
        lines.append("")
    return "\n".join(lines).rstrip()


def _why(category: str, rows: list[dict[str, Any]]) -> str:
    """The category's heading; data that differs only in order says so.

    Example:
        >>> _why("data", [{"key": "train.content", "same": True}, {"key": "order"}])
        'same data, different order: the batches came in another order'
        >>> _why("data", [{"key": "train.content"}])
        'the training data differs'
    """
    changed = [d["key"] for d in rows if not d.get("same")]
    if category == "data" and changed == ["order"]:
        return "same data, different order: the batches came in another order"
    return _WHY[category]


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:28] + "…" + text[-28:]
