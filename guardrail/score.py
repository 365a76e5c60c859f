"""``guardrail score RUN_DIR``: the ML Test Score of a run, each point backed by a file and a key.

Breck et al. ("The ML Test Score: A Rubric for ML Production Readiness and Technical Debt
Reduction", 2017) list 28 tests in four sections of seven: data, model development,
infrastructure, monitoring. A test earns 0.5 where it was done by hand or once, 1 where a
system runs it automatically on every run, 0 without evidence; each section sums its tests and
the final score is the *minimum* of the four sums.

Scoring is two pure steps, so that it can be tested on hand-built evidence:

1. :func:`gather_evidence` reads what the run and the project left (``.hydra/config.yaml``,
   ``manifest.json``, ``findings.jsonl``, ``metrics/``, ``report.json``, ``contract.json``,
   ``attribution/attribution.json``, the config lock, ``export/export.json``,
   ``serving/predictions.sqlite``, ``monitoring/<time>/monitor.json``,
   ``doctor/<time>/doctor.json``) into a plain dict;
2. :func:`judge` turns that dict into the 28 items, each with its score, why, its evidence
   as ``{"file", "key"}`` pairs (files relative to the run directory, or absolute outside it)
   and what would earn it. Only files listed in the evidence's ``files`` are ever cited, and an
   item with no citation scores 0: never a point without evidence.

"Automated and repeated" (1) means it runs by itself on every run: a callback in the run's
guardrails, a lock checked every run, a contract checked on every served request. A command a
person runs (export, doctor, monitor) is 0.5, unless its results show it ran repeatedly (two or
more results over time). A guardrail that was switched off, or that skipped (an info
``<family>.skipped`` finding), earns nothing.

Example:
    >>> result = judge(empty_evidence("RUN"))
    >>> result["final"], len(result["items"]), result["sections"]["data"]["score"]
    (0.0, 28, 0.0)
    >>> print(render_text(result).splitlines()[0])
    ML Test Score of RUN: 0 (the lowest of data 0, model 0, infrastructure 0, monitoring 0)

"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from guardrail.errors import ConfigError
from guardrail.io import utc_now, write_json
from guardrail.privacy import PRIVACY_FILE

FILE = "score.json"
SECTIONS = ("data", "model", "infrastructure", "monitoring")
SECTION_TITLES = {"data": "Tests for features and data", "model": "Tests for model development",
                  "infrastructure": "Tests for ML infrastructure",
                  "monitoring": "Monitoring tests for ML"}
#: How the paper names a section's tests ("Infra 3").
LABELS = {"data": "Data", "model": "Model", "infrastructure": "Infra", "monitoring": "Monitor"}
#: The 28 tests, by section, in the paper's order and words.
TESTS: dict[str, tuple[str, ...]] = {
    "data": (
        "Feature expectations are captured in a schema",
        "All features are beneficial",
        "No feature's cost is too much",
        "Features adhere to meta-level requirements",
        "The data pipeline has appropriate privacy controls",
        "New features can be added quickly",
        "All input feature code is tested"),
    "model": (
        "Model specs are reviewed and submitted",
        "Offline and online metrics correlate",
        "All hyperparameters have been tuned",
        "The impact of model staleness is known",
        "A simpler model is not better",
        "Model quality is sufficient on important data slices",
        "The model is tested for considerations of inclusion"),
    "infrastructure": (
        "Training is reproducible",
        "Model specs are unit tested",
        "The ML pipeline is integration tested",
        "Model quality is validated before serving",
        "The model is debuggable",
        "Models are canaried before serving",
        "Serving models can be rolled back"),
    "monitoring": (
        "Dependency changes result in notification",
        "Data invariants hold for inputs",
        "Training and serving are not skewed",
        "Models are not too stale",
        "Models are numerically stable",
        "Computing performance has not regressed",
        "Prediction quality has not regressed"),
}
#: Each guardrail callback class and the family of its check ids (``<family>.skipped``).
FAMILIES = {"ConfigLock": "config", "RunManifest": "manifest", "DeterminismGuard": "determinism",
            "ArchitectureCheck": "probe", "DataProbe": "data", "DataContract": "contract",
            "ActivationProbe": "probe", "GradientProbe": "grad", "LossProbe": "loss",
            "BaselineCheck": "baseline", "ResourceMonitor": "resources",
            "AttributionReport": "attribution", "EffortEstimator": "effort",
            "PrivacyGuard": "privacy"}
CONFIG = ".hydra/config.yaml"
MONITOR_CMD = ("guardrail records RUN_DIR --split test > served.jsonl; guardrail monitor RUN_DIR "
               "--records served.jsonl --labels labels.jsonl")

Evidence = dict[str, Any]
Cite = dict[str, str]


# --------------------------------------------------------------------------------------------
# 1. gathering: files -> a plain dict


def empty_evidence(run_dir: str) -> Evidence:
    """Evidence of a run that left nothing: the shape :func:`judge` reads, every part empty.

    Example:
        >>> sorted(empty_evidence("RUN"))[:4]
        ['attribution', 'contract', 'doctor', 'export']
    """
    return {"run_dir": run_dir, "files": [], "recipe": None, "policy": None, "guardrails": {},
            "findings": [], "metrics": {}, "manifest": None, "report": None, "contract": None,
            "attribution": None, "lock": None, "export": None, "serving": None,
            "monitoring": [], "doctor": [], "sweep": None, "rollback_targets": [],
            "privacy": None}


def is_run_dir(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds what ``python -m guardrail.train`` writes."""
    folder = Path(run_dir)
    return folder.is_dir() and any((folder / name).is_file() for name in (
        CONFIG, "manifest.json", "report.json"))


def gather_evidence(run_dir: str | Path) -> Evidence:
    """Read everything the score can use from ``run_dir`` (and the project's config lock).

    Raises:
        ConfigError: ``run_dir`` is not a run directory.
    """
    folder = Path(run_dir)
    if not is_run_dir(folder):
        raise ConfigError(
            f"{run_dir} is not a run directory of `python -m guardrail.train` (it has none of "
            f"{CONFIG}, manifest.json, report.json); give the folder a run was written to, e.g. "
            "`guardrail score outputs/est/2026-01-01_12-00-00`.")
    ev = empty_evidence(str(folder))
    files: set[str] = set()

    def load(rel: str) -> Any:
        data = _read_json(folder / rel)
        if data is not None:
            files.add(rel)
        return data

    cfg = _read_yaml(folder / CONFIG)
    if cfg is not None:
        files.add(CONFIG)
    manifest = load("manifest.json")
    resolved = ((manifest or {}).get("configuration") or {}).get("resolved") or {}
    cfg = cfg if cfg is not None else resolved
    ev["recipe"] = cfg.get("recipe_name")
    ev["policy"] = (cfg.get("guardrails") or {}).get("policy")
    ev["guardrails"] = _guardrails(cfg)
    if (folder / "findings.jsonl").is_file():
        files.add("findings.jsonl")
        ev["findings"] = _read_findings(folder / "findings.jsonl")
    ev["metrics"], metrics_file = _read_metrics(folder)
    if metrics_file:
        files.add(metrics_file)
    if manifest is not None:
        source = manifest.get("source") or {}
        model = manifest.get("model") or {}
        ev["manifest"] = {
            "status": manifest.get("status"), "source": source.get("kind"),
            "commit": source.get("commit"), "root": source.get("root"),
            "untracked": list(source.get("untracked") or []),
            "patch": (source.get("patch") or {}).get("file"),
            "data_fingerprint": bool(manifest.get("data")),
            "trajectory": bool(model.get("trajectory")),
            "packages": bool((manifest.get("platform") or {}).get("packages")),
            "determinism": bool(manifest.get("determinism"))}
    report = load("report.json")
    if report is not None:
        ev["report"] = {"baselines": sorted(report.get("baselines") or {}),
                        "baseline_roles": dict(report.get("baseline_roles") or {}),
                        "resources": bool(report.get("resources"))}
    contract = load("contract.json")
    if contract is not None:
        ev["contract"] = {"fields": len(contract.get("fields") or {})}
    attribution = load("attribution/attribution.json")
    if attribution is not None:
        ev["attribution"] = {
            "features": len(attribution.get("features") or []),
            "permutation": bool((attribution.get("methods") or {}).get("permutation")),
            "sanity": attribution.get("sanity") or None}
    privacy = load(PRIVACY_FILE)
    if privacy is not None:
        ev["privacy"] = {"scan": bool(privacy.get("scan")),
                         "anonymity": bool(privacy.get("anonymity")),
                         "audit": bool(privacy.get("audit")),
                         "epsilon": (privacy.get("dp") or {}).get("epsilon")}
    ev["lock"] = _lock(folder, cfg, ev, files)
    export = load("export/export.json")
    if export is not None:
        ev["export"] = {"parity": export.get("parity"), "files": len(export.get("files") or {}),
                        "format": export.get("format"), "model_id": export.get("model_id")}
    ev["serving"] = _serving(folder, files)
    ev["monitoring"] = [m for m in (_monitor(folder, p, files) for p in sorted(
        (folder / "monitoring").glob("*/monitor.json"))) if m]
    ev["doctor"] = [d for d in (_doctor(folder, p, files) for p in sorted(
        (folder / "doctor").glob("*/doctor.json"))) if d]
    if (folder.parent / "multirun.yaml").is_file():
        files.add("../multirun.yaml")
        ev["sweep"] = {"file": "../multirun.yaml"}
    ev["rollback_targets"] = _rollback_targets(folder, ev["recipe"], files)
    ev["files"] = sorted(files)
    return ev


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_yaml(path: Path) -> dict[str, Any] | None:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _guardrails(cfg: dict[str, Any]) -> dict[str, Any]:
    """``{callback class: {"key": config key, "settings": {...}}}`` of the run's guardrails."""
    out: dict[str, Any] = {}
    callbacks = (cfg.get("guardrails") or {}).get("callbacks") or {}
    for name, settings in callbacks.items():
        if not isinstance(settings, dict):
            continue  # null: switched off
        cls = str(settings.get("_target_", "")).rsplit(".", 1)[-1]
        out.setdefault(cls, {"key": f"guardrails.callbacks.{name}",
                             "settings": {k: v for k, v in settings.items()
                                          if not isinstance(v, dict | list)}})
    return out


def _read_findings(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "check" in row:
            rows.append({k: row.get(k) for k in ("check", "severity", "where", "message")})
    return rows


def _read_metrics(folder: Path) -> tuple[dict[str, float], str | None]:
    """The last value of each ``guardrail/`` column of the CSV logger's ``metrics.csv``."""
    found = sorted((folder / "metrics").rglob("metrics.csv")) if (
        folder / "metrics").is_dir() else []
    if not found:
        return {}, None
    values: dict[str, float] = {}
    with open(found[-1], encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            for key, value in row.items():
                if key and key.startswith("guardrail/") and value not in (None, ""):
                    try:
                        values[key] = float(value)
                    except ValueError:
                        continue
    return values, found[-1].relative_to(folder).as_posix()


def _lock(folder: Path, cfg: dict[str, Any], ev: Evidence, files: set[str]
          ) -> dict[str, Any] | None:
    """The config lock this run was judged against, if its guardrails checked one."""
    from guardrail.lockfile import lock_path, project_root, read_lock, resolve_lock_dir

    entry = ev["guardrails"].get("ConfigLock")
    hydra = (_read_yaml(folder / ".hydra" / "hydra.yaml") or {}).get("hydra") or {}
    runtime = hydra.get("runtime") or {}
    settings = (entry or {}).get("settings") or {}
    name = settings.get("name") or (runtime.get("choices") or {}).get("recipe") or ev["recipe"]
    if not name or not runtime.get("cwd"):
        return None
    path = lock_path(resolve_lock_dir(settings.get("lock_dir") or "locks", runtime["cwd"]), name)
    try:
        lock = read_lock(path)
    except Exception:  # an unreadable lock is no evidence, not a crash
        lock = None
    if lock is None:
        return None
    files.add(str(path))
    root = project_root(runtime["cwd"])
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    manifest = ev["manifest"] or {}
    committed = None
    if manifest.get("source") == "git":
        patch = folder / (manifest.get("patch") or "source.patch")
        changed = patch.is_file() and f"b/{rel}" in patch.read_text(encoding="utf-8",
                                                                     errors="replace")
        committed = rel not in manifest.get("untracked", []) and not changed
    return {"file": str(path), "mode": settings.get("mode") if entry else None,
            "versions": len(lock.get("versions") or {}), "committed": committed,
            "feature_keys": sorted((k for k in lock["effective"] if "feature" in k),
                                   key=lambda k: ("feature_names" not in k, k))[:3]}


def _serving(folder: Path, files: set[str]) -> dict[str, Any] | None:
    rel = "serving/predictions.sqlite"
    if not (folder / rel).is_file():
        return None
    try:
        with sqlite3.connect(f"file:{folder / rel}?mode=ro", uri=True) as db:
            rows, first, last = db.execute(
                "SELECT COUNT(*), MIN(time), MAX(time) FROM predictions").fetchone()
    except sqlite3.Error:
        return None
    if not rows:
        return None
    files.add(rel)
    return {"file": rel, "rows": rows, "first": first, "last": last}


def _monitor(folder: Path, path: Path, files: set[str]) -> dict[str, Any] | None:
    data = _read_json(path)
    if not isinstance(data, dict):
        return None
    rel = path.relative_to(folder).as_posix()
    files.add(rel)
    windows = data.get("windows") or []
    labelled = [i for i, w in enumerate(windows)
                if isinstance(w.get("performance"), dict) and w["performance"].get("value")
                is not None]
    checks = sorted({f.get("check") for f in data.get("findings") or [] if f.get("check")})
    return {"file": rel, "records": data.get("records"), "windows": len(windows),
            "labelled_windows": labelled, "windowing": data.get("windowing") or {},
            "source": (data.get("source") or {}).get("kind"), "checks": checks,
            "status": data.get("status")}


def _doctor(folder: Path, path: Path, files: set[str]) -> dict[str, Any] | None:
    data = _read_json(path)
    if not isinstance(data, dict):
        return None
    rel = path.relative_to(folder).as_posix()
    files.add(rel)
    return {"file": rel, "verdict": data.get("verdict"), "outputs": sorted(data.get("outputs")
                                                                          or {}),
            "environment": bool((data.get("environment") or {}).get("recorded")),
            "exit_code": data.get("exit_code"), "checked_at": data.get("checked_at")}


def _rollback_targets(folder: Path, recipe: str | None, files: set[str]) -> list[str]:
    """Earlier completed, exported runs of the same recipe beside this one (oldest first)."""
    if recipe is None or not folder.absolute().parent.is_dir():
        return []
    started = (_read_json(folder / "manifest.json") or {}).get("started_at")
    found = []
    for other in sorted(folder.absolute().parent.iterdir()):
        if other == folder.absolute() or not (other / "export" / "export.json").is_file():
            continue
        manifest = _read_json(other / "manifest.json") or {}
        resolved = (manifest.get("configuration") or {}).get("resolved") or {}
        earlier = started is None or str(manifest.get("finished_at", "")) <= str(started)
        if manifest.get("status") == "completed" and resolved.get("recipe_name") == recipe \
                and earlier:
            rel = f"../{other.name}/export/export.json"
            files.add(rel)
            found.append(rel)
    return found


# --------------------------------------------------------------------------------------------
# 2. judging: evidence -> 28 items


def judge(ev: Evidence) -> dict[str, Any]:
    """The score from gathered (or hand-built) evidence: items, section sums, final = min.

    Example:
        >>> ev = empty_evidence("RUN")
        >>> ev["files"] = [".hydra/config.yaml", "contract.json"]
        >>> ev["guardrails"] = {"DataContract": {"key": "guardrails.callbacks.data_contract",
        ...                                      "settings": {}}}
        >>> ev["contract"] = {"fields": 3}
        >>> item = judge(ev)["items"][0]
        >>> item["score"], [c["file"] for c in item["evidence"]]
        (1.0, ['.hydra/config.yaml', 'contract.json'])

    """
    items = []
    for section, rules in RULES.items():
        for number, (name, rule) in enumerate(zip(TESTS[section], rules, strict=True), 1):
            verdict = rule(_View(ev))
            cites = [c for c in verdict.get("evidence", []) if c["file"] in ev["files"]]
            score = float(verdict.get("score", 0.0)) if cites else 0.0
            items.append({
                "section": section, "number": number, "id": f"{LABELS[section]} {number}",
                "name": name, "score": score, "judged": verdict.get("judged", True),
                "passed": verdict.get("passed"), "why": verdict["why"],
                "evidence": cites if score else [],
                "to_earn": verdict.get("to_earn") if score < 1 else None})
    sections = {s: {"title": SECTION_TITLES[s],
                    "score": sum(i["score"] for i in items if i["section"] == s)}
                for s in SECTIONS}
    final = min(v["score"] for v in sections.values())
    return {"run_dir": ev["run_dir"], "rubric": "Breck et al. 2017, The ML Test Score",
            "final": final, "limited_by": [s for s in SECTIONS if sections[s]["score"] == final],
            "sections": sections, "items": items, "scored_at": utc_now()}


class _View:
    """Questions :func:`judge`'s rules ask of the evidence."""

    def __init__(self, ev: Evidence) -> None:
        self.ev = ev

    def __getitem__(self, key: str) -> Any:
        return self.ev.get(key)

    def on(self, cls: str) -> dict[str, Any] | None:
        """The guardrail's entry when it ran and did not skip, else None."""
        entry = self.ev["guardrails"].get(cls)
        if entry is None or self.skipped(cls):
            return None
        return entry

    def skipped(self, cls: str) -> list[str]:
        family = FAMILIES.get(cls, "")
        return [f.get("message") or "" for f in self.ev["findings"]
                if f.get("check") == f"{family}.skipped"]

    def cite_on(self, cls: str) -> Cite:
        return {"file": CONFIG, "key": self.ev["guardrails"][cls]["key"]}

    def has(self, check: str) -> bool:
        return any(f.get("check") == check for f in self.ev["findings"])

    def off_note(self, cls: str, what: str) -> str:
        if self.ev["guardrails"].get(cls) is None:
            return f"{cls} ({what}) was not among this run's guardrails."
        return f"{cls} skipped: {'; '.join(self.skipped(cls))[:300]}"


def _cite(file: str, key: str) -> Cite:
    return {"file": file, "key": key}


def _repeated(results: list[dict[str, Any]], what: str) -> tuple[float, str]:
    n = len(results)
    return (1.0, f"{what} ran {n} times (results over time).") if n >= 2 else (
        0.5, f"{what} ran once, by hand.")


def _none(why: str, to_earn: str | None = None, judged: bool = True) -> dict[str, Any]:
    return {"score": 0.0, "why": why, "to_earn": to_earn, "judged": judged}


def _cannot(what: str) -> dict[str, Any]:
    return _none(f"Cannot be judged from the run's files: {what}. No point without evidence.",
                 "Nothing guardrail records shows it; assess it in review and keep the result "
                 "outside this score.", judged=False)


# ---- data


def _d1_schema(v: _View) -> dict[str, Any]:
    if v.on("DataContract") and v["contract"]:
        return {"score": 1.0, "why": f"DataContract infers the schema ({v['contract']['fields']}"
                " fields: kinds, ranges, categories) on every run and checks each held-out "
                "split against it; serving checks every request against it.",
                "evidence": [v.cite_on("DataContract"), _cite("contract.json", "fields")]}
    if v["contract"]:
        return {"score": 0.5, "why": "contract.json exists but DataContract was not on in this "
                "run: the schema was captured once.", "evidence": [
                    _cite("contract.json", "fields")],
                "to_earn": "Train with guardrails=default (DataContract on)."}
    return _none(v.off_note("DataContract", "the schema"),
                 "Train with guardrails=default: DataContract writes contract.json.")


def _d2_beneficial(v: _View) -> dict[str, Any]:
    att = v["attribution"]
    if not (v.on("AttributionReport") and att and att.get("permutation")):
        return _none(v.off_note("AttributionReport", "per-feature importance") if not att
                     else "No per-feature permutation importance was measured.",
                     "Train with the AttributionReport guardrail on (guardrails=default).")
    if att["features"] <= 1:
        return _none("The model has a single input feature: whether every feature is "
                     "beneficial cannot be judged.")
    return {"score": 0.5, "why": f"Every run measures the permutation importance of each of "
            f"{att['features']} features with intervals, but no rule fails a feature that adds "
            "nothing: a person reads the ranking.", "evidence": [
                v.cite_on("AttributionReport"), _cite("attribution/attribution.json",
                                                      "methods.permutation"),
                _cite("attribution/attribution.json", "ranking")],
            "to_earn": "Nothing in guardrail fails a useless feature automatically (1 point "
                       "needs such a rule)."}


def _d3_cost(v: _View) -> dict[str, Any]:
    return _cannot("guardrail does not measure what each feature costs (latency, memory, "
                   "upstream dependencies)")


def _d4_meta(v: _View) -> dict[str, Any]:
    lock = v["lock"]
    if lock and lock.get("mode") in ("strict", "warn") and lock.get("feature_keys"):
        return {"score": 0.5, "why": "The approved feature list is part of the config lock and "
                "checked on every run, so a feature cannot be added unreviewed; but nothing "
                "checks the features against a written policy (e.g. no protected attributes).",
                "evidence": [_cite(lock["file"], f"effective.{lock['feature_keys'][0]}"),
                             v.cite_on("ConfigLock")],
                "to_earn": "A policy check of the features (allowed sources, forbidden "
                           "attributes) does not exist in guardrail."}
    return _none("No reviewed feature list was checked on this run (the config lock was off or "
                 "records no features), and guardrail has no feature-policy check.",
                 "Train with the config lock on (guardrails.callbacks.config_lock.mode=strict).")


def _d5_privacy(v: _View) -> dict[str, Any]:
    privacy = v["privacy"]
    if not (v.on("PrivacyGuard") and privacy and privacy["scan"]):
        return _none(v.off_note("PrivacyGuard", "a personal-data scan") if not privacy
                     else "The training records were not scanned for personal data.",
                     "Train with the PrivacyGuard guardrail on (guardrails=default) on a "
                     "datamodule with records(split).")
    controls = ["a personal-data scan of the training records"]
    evidence = [v.cite_on("PrivacyGuard"), _cite(PRIVACY_FILE, "scan")]
    for key, what in (("anonymity", "k-anonymity over the declared quasi-identifiers"),
                      ("audit", "a membership-inference audit")):
        if privacy[key]:
            controls.append(what)
            evidence.append(_cite(PRIVACY_FILE, key))
    if privacy["epsilon"] is not None:
        controls.append(f"DP-SGD training (epsilon {privacy['epsilon']:.2f})")
        evidence.append(_cite(PRIVACY_FILE, "dp.epsilon"))
    full = len(controls) > 1
    return {"score": 1.0 if full else 0.5,
            "why": f"Every run applies {', '.join(controls)}.", "evidence": evidence,
            **({} if full else {"to_earn": "Declare the quasi-identifiers "
                                "(privacy.quasi_identifiers) or audit the model (privacy=audit) "
                                "so that re-identification risk is measured too."})}


def _d6_new_features(v: _View) -> dict[str, Any]:
    return _cannot("how quickly a new feature can be added is a property of the team's process")


def _d7_feature_code(v: _View) -> dict[str, Any]:
    export = v["export"]
    if export and export.get("parity"):
        passed = export["parity"].get("passed")
        return {"score": 0.5, "passed": passed, "why": "`guardrail export` tested the "
                "feature code once: held-out raw records through the serving preprocessor "
                f"gave the trained model's outputs ({'passed' if passed else 'FAILED'}).",
                "evidence": [_cite("export/export.json", "parity")],
                "to_earn": "Unit tests of the recipe's feature code in CI (outside the run)."}
    return _none("No test of the feature code is recorded in the run.",
                 "Run `guardrail export RUN_DIR` (its parity test runs the feature code on "
                 "held-out records).")


# ---- model


def _m1_specs(v: _View) -> dict[str, Any]:
    lock = v["lock"]
    if not lock or lock.get("mode") not in ("strict", "warn"):
        return _none("The config lock was not checked on this run (ConfigLock off or "
                     "mode=off), so nothing shows the spec was reviewed.",
                     "Train with guardrails.callbacks.config_lock.mode=strict and a lock "
                     "approved with `guardrail approve recipe=NAME` and committed.")
    if v.has("config.lock_created"):
        return _none("This run wrote the lock itself (config.lock_created): not yet reviewed.",
                     "Review and commit the lock; the next run is checked against it.")
    if lock.get("committed") is False:
        return _none(f"The lock {lock['file']} is not committed (untracked or changed in the "
                     "working tree).", "Commit the lock file.")
    cites = [v.cite_on("ConfigLock"), _cite(lock["file"], "hash")]
    differs = v.has("config.lock")
    if lock["mode"] == "strict":
        return {"score": 1.0, "passed": not differs, "why": "Every run is refused unless its "
                "settings match the reviewed, committed config lock" + (
                    " (this one differed: config.lock)." if differs else "."),
                "evidence": cites + ([_cite("findings.jsonl", "config.lock")] if differs
                                     else [])}
    return {"score": 0.5, "passed": not differs, "why": "The lock is checked on every run but "
            "mode=warn lets an unreviewed change train" + (
                " (this one did: config.lock)." if differs else "."),
            "evidence": cites + ([_cite("findings.jsonl", "config.lock")] if differs else []),
            "to_earn": "guardrails.callbacks.config_lock.mode=strict."}


def _monitoring_labelled(v: _View) -> list[dict[str, Any]]:
    return [m for m in v["monitoring"] if m["labelled_windows"]]


def _m2_online(v: _View) -> dict[str, Any]:
    runs = _monitoring_labelled(v)
    if not runs:
        return _none("No labelled serving traffic was monitored: the online error was never "
                     "set beside the offline (test) one.",
                     f"Run `{MONITOR_CMD}` (labels joined on the record's id).")
    score, when = _repeated(runs, "Monitoring with labels")
    return {"score": score, "why": f"{when} Each labelled window's error is compared with the "
            "test error recorded at export (the online metric here is the same error on "
            "served records, not a business metric).",
            "to_earn": "Run the labelled monitor on a schedule (two or more results).",
            "evidence": [
                _cite(m["file"], f"windows[{m['labelled_windows'][0]}].performance")
                for m in runs]}


def _m3_hyper(v: _View) -> dict[str, Any]:
    if v["sweep"]:
        return {"score": 0.5, "why": "The run is part of a Hydra multirun sweep, started by a "
                "person.", "evidence": [_cite(v["sweep"]["file"], "hydra.overrides.task")],
                "to_earn": "An automated search (a Hydra sweeper) re-run with every change."}
    return _none("The run is not part of a sweep: nothing shows its hyperparameters were tuned.",
                 "Run the recipe as a Hydra multirun over its hyperparameters "
                 "(`python -m guardrail.train -m recipe=NAME module.lr=1e-3,3e-3`).")


def _m4_staleness(v: _View) -> dict[str, Any]:
    runs = [m for m in _monitoring_labelled(v)
            if m["windowing"].get("by") and len(m["labelled_windows"]) >= 2]
    if not runs:
        return _none("No labelled monitoring by day or week: how quality decays with the "
                     "model's age is unknown.",
                     "Run `guardrail monitor RUN_DIR --by week --labels labels.jsonl` on the "
                     "prediction log of `guardrail serve` (rows carry their time).")
    score, when = _repeated(runs, "Monitoring of labelled windows over time")
    return {"score": score, "why": f"{when} Error per {runs[0]['windowing']['by']} shows the "
            "effect of the model's age.", "evidence": [_cite(m["file"], "windowing.by")
                                                       for m in runs]}


def _m5_simpler(v: _View) -> dict[str, Any]:
    report = v["report"] or {}
    if not (v.on("BaselineCheck") and v.has("baseline.compared")):
        return _none(v.off_note("BaselineCheck", "the baseline comparison")
                     if not v.on("BaselineCheck") else "No baseline was compared "
                     "(the datamodule declares no baselines()).",
                     "Train with BaselineCheck on and give the datamodule baselines() with a "
                     "`reference` role (a simpler model the team could ship).")
    roles = report.get("baseline_roles") or {}
    reference = [n for n, r in roles.items() if r == "reference"]
    suffices = v.has("baseline.simpler_model_suffices") or v.has("baseline.not_beaten")
    cites = [v.cite_on("BaselineCheck"), _cite("findings.jsonl", "baseline.compared")]
    if report:
        cites.append(_cite("report.json", "baselines"))
    return {"score": 1.0, "passed": not suffices, "why": "Every run compares the model on the "
            f"test split with {', '.join(sorted(roles)) or 'its baselines'}"
            + (f" (reference model: {', '.join(reference)})" if reference else
               " (no reference model, only trivial baselines)")
            + (". Today the simpler model is as good (baseline.simpler_model_suffices)."
               if suffices else ": the model is better."), "evidence": cites}


def _m6_slices(v: _View) -> dict[str, Any]:
    return _cannot("guardrail evaluates no data slices (quality per group or segment)")


def _m7_inclusion(v: _View) -> dict[str, Any]:
    return _cannot("no test for considerations of inclusion is recorded")


# ---- infrastructure


def _i1_reproducible(v: _View) -> dict[str, Any]:
    guard = v.on("DeterminismGuard")
    verified = v["metrics"].get("guardrail/determinism_verified")
    if not guard or not (guard["settings"].get("verify_steps") or 0) or verified is None:
        return _none(v.off_note("DeterminismGuard", "the replay") if not guard else
                     "The determinism replay did not run (verify_steps=0, or no "
                     "metrics/metrics.csv records guardrail/determinism_verified).",
                     "Train with DeterminismGuard on (verify_steps > 0) and the CSV logger.")
    metrics_file = next((f for f in v["files"] if f.endswith("metrics.csv")), "metrics.csv")
    cites = [v.cite_on("DeterminismGuard"),
             _cite(metrics_file, "guardrail/determinism_verified")]
    if v["manifest"] and v["manifest"].get("data_fingerprint"):
        cites.append(_cite("manifest.json", "data"))
    ok = verified == 1.0
    return {"score": 1.0, "passed": ok, "why": "Every run replays its first steps twice and "
            "compares the parameters bitwise" + (": identical." if ok else
                                                  ": they DIFFERED (determinism.mismatch).")
            + " The manifest fingerprints data, order and weights.", "evidence": cites}


def _i2_unit(v: _View) -> dict[str, Any]:
    probes = ("ArchitectureCheck", "GradientProbe", "LossProbe", "ActivationProbe")
    on = [p for p in probes if v.on(p)]
    if not on:
        return _none("No model-spec check ran (architecture, gradient, loss and activation "
                     "probes were off or skipped).", "Train with guardrails=default.")
    score = 1.0 if len(on) == len(probes) else 0.5
    return {"score": score, "why": f"Every run tests the model spec in place: {', '.join(on)} "
            "(output resolution, gradient flow and updates, initial loss, dead or saturated "
            "units)." + ("" if score == 1 else " Some probes were off or skipped."),
            "evidence": [v.cite_on(p) for p in on],
            "to_earn": "Turn on " + ", ".join(p for p in probes if p not in on) + "."}


def _i3_integration(v: _View) -> dict[str, Any]:
    cites, why = [], []
    export, doctors = v["export"], v["doctor"]
    if export and export.get("parity"):
        cites.append(_cite("export/export.json", "parity"))
        why.append("export ran raw held-out records through the serving path and the "
                   "training path and compared them")
    if doctors:
        cites += [_cite(d["file"], "outputs") for d in doctors]
        why.append(f"doctor re-ran the golden records through program and checkpoint "
                   f"{len(doctors)} time(s)")
    if not cites:
        return _none("No end-to-end test (records -> preprocessing -> model) is recorded.",
                     "Run `guardrail export RUN_DIR`, then `guardrail doctor RUN_DIR` "
                     "(repeatedly, e.g. from cron).")
    score = 1.0 if len(doctors) >= 2 else 0.5
    return {"score": score, "why": "; ".join(why).capitalize() + ".", "evidence": cites,
            "to_earn": "Run `guardrail doctor RUN_DIR` on a schedule (two or more results)."}


def _i4_validated(v: _View) -> dict[str, Any]:
    if not (v.on("BaselineCheck") and v.has("baseline.compared")):
        return _none("No quality check against baselines ran.",
                     "Train with BaselineCheck on, policy strict (guardrails=strict).")
    entry = v.on("BaselineCheck") or {}
    policy = entry["settings"].get("policy")
    policy = policy if policy in ("record", "strict") else v["policy"]  # "${guardrails.policy}"
    strict = policy == "strict"
    cites = [v.cite_on("BaselineCheck"), _cite("findings.jsonl", "baseline.compared")]
    if strict:
        return {"score": 1.0, "why": "Every run compares test quality with its baselines and "
                "stops (policy strict) when the model does not beat them.", "evidence": cites}
    return {"score": 0.5, "why": "Every run compares test quality with its baselines, but "
            "policy record lets a model that loses be exported and served.", "evidence": cites,
            "to_earn": "Train with guardrails=strict (baseline.not_beaten stops the run)."}


def _i5_debuggable(v: _View) -> dict[str, Any]:
    att = v["attribution"]
    if not (v.on("AttributionReport") and att):
        return _none(v.off_note("AttributionReport", "explanations"),
                     "Train with the AttributionReport guardrail on.")
    sanity = att.get("sanity") or {}
    cites = [v.cite_on("AttributionReport"), _cite("attribution/attribution.json", "ranking")]
    if sanity.get("passed") is None:
        return {"score": 0.5, "why": "Every run explains the model, but the randomisation "
                "sanity check did not give a verdict: the explanation is not known to be "
                "trustworthy.", "evidence": cites,
                "to_earn": "attribution.randomisations > 0 on a model with 3+ inputs."}
    return {"score": 1.0, "passed": sanity["passed"], "why": "Every run explains which inputs "
            "move the predictions and checks the explanation against random weights ("
            f"{'passed' if sanity['passed'] else 'failed'}); findings name layer and step.",
            "evidence": [*cites, _cite("attribution/attribution.json", "sanity.passed")]}


def _i6_canary(v: _View) -> dict[str, Any]:
    cites = []
    if v["export"] and v["export"].get("parity"):
        cites.append(_cite("export/export.json", "parity"))
    cites += [_cite(d["file"], "outputs.exported") for d in v["doctor"]
              if "exported" in d["outputs"]]
    if not cites:
        return _none("The exported program was never loaded and run on held-out records "
                     "before serving.", "Run `guardrail export RUN_DIR` and `guardrail doctor "
                     "RUN_DIR` in the serving environment before serving.")
    runs = [d for d in v["doctor"] if "exported" in d["outputs"]]
    score = 1.0 if len(runs) >= 2 else 0.5
    return {"score": score, "why": "The exported program was loaded through the serving path "
            "and run on golden held-out records" + (
                f" by doctor ({len(runs)} result(s))." if runs else " once, at export."),
            "evidence": cites, "to_earn": "Run `guardrail doctor RUN_DIR` in the serving "
            "environment on every deploy (two or more results); a traffic canary is outside "
            "guardrail."}


def _i7_rollback(v: _View) -> dict[str, Any]:
    export, targets = v["export"], v["rollback_targets"]
    if not (export and export.get("files") and targets):
        return _none("No earlier exported run of the same recipe lies beside this one to roll "
                     "back to" if export else "The run is not exported (no self-contained, "
                     "hash-checked program to serve or return to).",
                     "Export the runs you serve (`guardrail export RUN_DIR`); Hydra keeps a "
                     "recipe's runs side by side, and `guardrail serve OLD_RUN` rolls back.")
    return {"score": 0.5, "why": f"This run's program is exported with file hashes, and "
            f"{len(targets)} earlier exported run(s) of the recipe lie beside it; rolling back "
            "(`guardrail serve OLD_RUN`) is by hand and never tested.",
            "evidence": [_cite("export/export.json", "files")] + [
                _cite(t, "model_id") for t in targets[-1:]],
            "to_earn": "An automated rollback drill (outside guardrail)."}


# ---- monitoring


def _n1_dependencies(v: _View) -> dict[str, Any]:
    lock = v["lock"]
    if lock and lock.get("mode") in ("strict", "warn") and lock.get("versions"):
        return {"score": 1.0, "passed": not v.has("dependency.changed"), "why": "Every run "
                f"compares {lock['versions']} library versions with those in the config lock "
                "and warns on a change (dependency.changed).", "evidence": [
                    v.cite_on("ConfigLock"), _cite(lock["file"], "versions")]}
    doctors = [d for d in v["doctor"] if d["environment"]]
    if doctors:
        score, when = _repeated(doctors, "guardrail doctor")
        return {"score": score, "why": f"{when} It diffs the environment against the run's "
                "manifest.", "evidence": [_cite(d["file"], "changes") for d in doctors],
                "to_earn": "Train with the config lock on: it checks versions on every run."}
    return _none("No version check ran: the config lock was off (or records no versions) and "
                 "doctor never ran.", "Train with the config lock on, or run `guardrail doctor "
                 "RUN_DIR` on a schedule.")


def _n2_invariants(v: _View) -> dict[str, Any]:
    cites, why = [], []
    training = bool(v.on("DataContract") and v["contract"])
    if training:
        cites.append(_cite("contract.json", "fields"))
        why.append("held-out splits are checked against the training contract on every run")
    serving = v["serving"]
    if serving:
        cites.append(_cite(serving["file"], "predictions.warnings"))
        why.append(f"all {serving['rows']} served records were checked against it on arrival")
    elif v["monitoring"]:
        cites += [_cite(m["file"], "findings") for m in v["monitoring"]]
        why.append(f"monitoring checked served records {len(v['monitoring'])} time(s)")
    if not cites:
        return _none("No check of inputs against the schema is recorded.",
                     "Train with DataContract on and serve with `guardrail serve RUN_DIR`.")
    score = 1.0 if training and (serving or len(v["monitoring"]) >= 2) else 0.5
    return {"score": score, "why": "; ".join(why).capitalize() + ".", "evidence": cites,
            "to_earn": "Serve through `guardrail serve` (every request is checked)."
            if training else "Train with DataContract on."}


def _n3_skew(v: _View) -> dict[str, Any]:
    cites, why = [], []
    if v["export"] and v["export"].get("parity"):
        cites.append(_cite("export/export.json", "parity"))
        why.append("export measured that the serving preprocessing computes the training "
                   "values")
    doctors = [d for d in v["doctor"] if d["outputs"]]
    cites += [_cite(d["file"], "outputs") for d in doctors]
    cites += [_cite(m["file"], "findings") for m in v["monitoring"]]
    if doctors:
        why.append(f"doctor re-checked the golden outputs {len(doctors)} time(s)")
    if v["monitoring"]:
        why.append(f"monitoring compared served inputs with training {len(v['monitoring'])} "
                   "time(s)")
    if not cites:
        return _none("No comparison of training and serving is recorded.",
                     "Run `guardrail export RUN_DIR` (parity), then `guardrail monitor`.")
    repeated = len(doctors) >= 2 or len(v["monitoring"]) >= 2
    return {"score": 1.0 if repeated else 0.5, "why": "; ".join(why).capitalize() + ".",
            "evidence": cites, "to_earn": "Run `guardrail monitor` or `guardrail doctor` on a "
            "schedule (two or more results)."}


def _n4_stale(v: _View) -> dict[str, Any]:
    return _none("guardrail records when the model was trained (manifest.json finished_at) but "
                 "nothing alerts on its age.", "No check of model age exists in guardrail; "
                 "alert on manifest.json's finished_at in the serving system.")


def _n5_numerics(v: _View) -> dict[str, Any]:
    probes = ("ActivationProbe", "GradientProbe", "LossProbe")
    on = [p for p in probes if v.on(p)]
    if not on:
        return _none("No numerical check ran (activation, gradient and loss probes off or "
                     "skipped).", "Train with guardrails=default.")
    score = 1.0 if len(on) == len(probes) else 0.5
    return {"score": score, "why": f"Every run checks {', '.join(on)}: NaN/Inf in "
            "activations, exploding or vanishing gradients, a diverging loss.",
            "evidence": [v.cite_on(p) for p in on],
            "to_earn": "Turn on " + ", ".join(p for p in probes if p not in on) + "."}


def _n6_performance(v: _View) -> dict[str, Any]:
    measured = v.on("ResourceMonitor") and (v["report"] or {}).get("resources")
    return _none("Throughput and memory are measured on every run (report.json resources) "
                 "but never compared with an earlier version." if measured else
                 "Computing performance was not measured (ResourceMonitor off).",
                 "guardrail has no automated regression check of speed or memory; "
                 "`guardrail diff OLD_RUN RUN_DIR` shows the change, unrecorded.")


def _n7_quality(v: _View) -> dict[str, Any]:
    runs = _monitoring_labelled(v)
    doctors = [d for d in v["doctor"] if d["outputs"]]
    if runs:
        score, when = _repeated(runs, "Monitoring with labels")
        return {"score": score, "why": f"{when} Each window's error is judged against the test "
                "error (drift.performance).", "evidence": [
                    _cite(m["file"], f"windows[{m['labelled_windows'][0]}].performance")
                    for m in runs], "to_earn": "Run the labelled monitor on a schedule."}
    if doctors:
        score, when = _repeated(doctors, "guardrail doctor")
        return {"score": score, "why": f"{when} The golden held-out predictions were re-run "
                "and compared with those stored at export (no served labels).",
                "evidence": [_cite(d["file"], "verdict") for d in doctors],
                "to_earn": f"Monitor labelled traffic: `{MONITOR_CMD}`."}
    return _none("No check of prediction quality after training is recorded.",
                 f"Run `{MONITOR_CMD}` (or `guardrail doctor RUN_DIR` after export).")


Rule = Callable[[_View], dict[str, Any]]
RULES: dict[str, tuple[Rule, ...]] = {
    "data": (_d1_schema, _d2_beneficial, _d3_cost, _d4_meta, _d5_privacy, _d6_new_features,
             _d7_feature_code),
    "model": (_m1_specs, _m2_online, _m3_hyper, _m4_staleness, _m5_simpler, _m6_slices,
              _m7_inclusion),
    "infrastructure": (_i1_reproducible, _i2_unit, _i3_integration, _i4_validated,
                       _i5_debuggable, _i6_canary, _i7_rollback),
    "monitoring": (_n1_dependencies, _n2_invariants, _n3_skew, _n4_stale, _n5_numerics,
                   _n6_performance, _n7_quality),
}


# --------------------------------------------------------------------------------------------
# 3. the public entry points


def score_run(run_dir: str | Path) -> dict[str, Any]:
    """The ML Test Score of ``run_dir`` (plain data; :func:`write_score` saves it).

    Raises:
        ConfigError: ``run_dir`` is not a run directory.
    """
    return judge(gather_evidence(run_dir))


def write_score(result: dict[str, Any], run_dir: str | Path) -> Path:
    """Write ``result`` to ``RUN_DIR/score.json``; returns the path."""
    path = Path(run_dir) / FILE
    write_json(path, result)
    return path


def _fmt(score: float) -> str:
    return f"{score:g}"


def render_text(result: dict[str, Any], evidence: bool = True) -> str:
    """The score as terminal text: the final score, then each section's items.

    Example:
        >>> text = render_text(judge(empty_evidence("RUN")))
        >>> "Data 6     0    New features can be added quickly (cannot be judged)" in text
        True
    """
    sections = result["sections"]
    lines = [f"ML Test Score of {result['run_dir']}: {_fmt(result['final'])} (the lowest of "
             + ", ".join(f"{s} {_fmt(sections[s]['score'])}" for s in SECTIONS) + ")"]
    for section in SECTIONS:
        lines.append(f"\n{sections[section]['title']}: {_fmt(sections[section]['score'])} of 7")
        for item in (i for i in result["items"] if i["section"] == section):
            note = "" if item["judged"] else " (cannot be judged)"
            lines.append(f"  {item['id']:<10} {_fmt(item['score']):<4} {item['name']}{note}")
            if not evidence:
                continue
            pad = " " * 18
            lines.append(f"{pad}{item['why']}")
            lines.extend(f"{pad}evidence: {c['file']} [{c['key']}]" for c in item["evidence"])
            if item["to_earn"] and item["judged"]:
                lines.append(f"{pad}to earn more: {item['to_earn']}")
    return "\n".join(lines)


def cited_files(result: dict[str, Any]) -> Iterable[str]:
    """Every file the result cites (for checks that each exists)."""
    return sorted({c["file"] for item in result["items"] for c in item["evidence"]})
