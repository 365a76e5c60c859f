"""guardrail's drift checks against Evidently's data-drift preset, on the same windows.

For EST and CCF, 200 windows of 300 records are resampled (with replacement, window ``s`` drawn
with seed ``s``, as ``scripts/drift_evidence.py`` does) from the test split, which the model
never trained on, and each window is served four ways:

- ``healthy``: as drawn. Any alarm is a false alarm.
- ``numeric``: one numeric field (the ``s % n``-th of the numeric fields, alphabetically) moved
  by +0.5 training standard deviations.
- ``replaced``: one categorical field's values all replaced by its second most frequent
  training category.
- ``renamed``: one categorical field's most frequent training category renamed
  (``North_Ames`` -> ``North_Ames_renamed``, a code changed upstream).

Both tools compare each window with the same reference, every training record, and see the
inputs only (no predictions). Per tool and shift it reports the *alarm rate* (windows with any
alarm) and the *right-field rate* (windows where the changed field is named):

- guardrail (``DriftThresholds()`` defaults, :mod:`guardrail.checks.drift`): an alarm is a
  ``drift.feature`` or ``skew.unseen_categories`` warning or error; the right field is a
  ``drift.feature`` finding whose ``where`` is the field (``skew.unseen_categories`` for
  ``renamed``).
- Evidently (``DataDriftPreset()`` defaults): an alarm is a column whose drift test fails
  (column level); the dataset-level verdict (drift share >= 0.5) is reported on its own row.
  With more than 1,000 reference rows its defaults are the Wasserstein distance normed by the
  reference SD (>= 0.1) for numeric columns and the Jensen-Shannon distance (>= 0.1) for
  categorical ones; integer columns with at most 10 values in the window are categorical.

Evidently is never a dependency of guardrail: it runs in its own virtual environment, in a
subprocess of this script (``evidently-worker`` mode, which imports neither guardrail nor
torch) on windows written as JSON lines. ``Report.run`` spends ~5 s per window rendering plotly
widgets, so the 1,600 windows go through Evidently's own per-column drift function
(``get_one_column_drift``, what each ``ValueDrift`` metric of the preset calls, with the
column types Evidently infers for the window), and the first ``--check`` windows of every
shift also through the full ``Report([DataDriftPreset()])``; the script prints how many
columns agree (it stops if any does not).

Commands (2 cores; about 15 minutes in all)::

    python -m venv .venv-drift
    .venv-drift/bin/pip install evidently "pandas<3"    # 0.7.23 measured; pandas 3 breaks it
    python -m guardrail.train recipe=est trainer.max_epochs=2 \
        guardrails.callbacks.config_lock.mode=off hydra.run.dir=/tmp/drift_est
    python -m guardrail.train recipe=ccf trainer.max_epochs=2 \
        guardrails.callbacks.config_lock.mode=off hydra.run.dir=/tmp/drift_ccf
    guardrail export /tmp/drift_est && guardrail export /tmp/drift_ccf
    OMP_NUM_THREADS=1 python scripts/bench_drift.py --est /tmp/drift_est --ccf /tmp/drift_ccf \
        --evidently-python .venv-drift/bin/python

The records are the splits ``guardrail records RUN_DIR --split test`` (and ``--split train``)
print.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SHIFTS = ("healthy", "numeric", "replaced", "renamed")
EVIDENTLY_PYTHON = ".venv-drift/bin/python"


# ------------------------------------------------------------------------------- windows
def build_windows(run_dir: Path, windows: int, size: int) -> dict[str, Any]:
    """Reference, windows of every shift, and the field changed in each (plain data)."""
    import numpy as np

    from guardrail.monitoring import load_reference
    from guardrail.rundir import run_datamodule

    reference = load_reference(run_dir)
    datamodule = run_datamodule(run_dir)
    test, train = datamodule.records("test"), datamodule.records("train")
    plan = reference["plan"]
    numeric = sorted(f["name"] for f in plan if f["kind"] == "numeric" and f["summary"] is None)
    categorical = []
    for f in sorted(plan, key=lambda f: f["name"]):
        counts = reference["features"][f["name"]].get("counts") or {}
        if f["kind"] == "categorical" and f["summary"] is None and len(counts) >= 2:
            categorical.append(f["name"])
    ranked = {name: sorted(reference["features"][name]["counts"],
                           key=lambda k: -reference["features"][name]["counts"][k])
              for name in categorical}
    out: dict[str, Any] = {"reference": reference, "train": train, "test": len(test),
                           "numeric_fields": numeric, "categorical_fields": categorical,
                           **{shift: [] for shift in SHIFTS}}
    for s in range(windows):
        drawn = [dict(test[i]) for i in np.random.default_rng(s).choice(len(test), size,
                                                                        replace=True)]
        out["healthy"].append((None, drawn))
        field = numeric[s % len(numeric)]
        sd = reference["features"][field]["sd"] or 0.0
        out["numeric"].append((field, [{**r, field: r[field] + 0.5 * sd if isinstance(
            r.get(field), int | float) and not isinstance(r.get(field), bool) else r.get(field)}
            for r in drawn]))
        field = categorical[s % len(categorical)]
        second = ranked[field][1]
        out["replaced"].append((field, [{**r, field: second} for r in drawn]))
        top = ranked[field][0]
        out["renamed"].append((field, [{**r, field: f"{r[field]}_renamed"}
                                       if str(r.get(field)) == top else r for r in drawn]))
    return out


def guardrail_side(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every window through guardrail's rules: the checks that fired and where."""
    from guardrail.checks.drift import DriftThresholds, Feature, WindowAccumulator, drift_findings

    reference = {**data["reference"], "predictions": None}
    plan = [Feature.from_dict(d) for d in reference["plan"]]
    limits = DriftThresholds()
    out: dict[str, list[dict[str, Any]]] = {}
    for shift in SHIFTS:
        out[shift] = []
        for index, (field, records) in enumerate(data[shift]):
            acc = WindowAccumulator(plan, reference)
            acc.add(records)
            found = drift_findings(reference, acc.profile(),
                                   {"index": index, "records": len(records)}, limits)
            alarms = [(f.check, f.where) for f in found if f.severity.value != "info"]
            right = "skew.unseen_categories" if shift == "renamed" else "drift.feature"
            out[shift].append({"field": field, "alarm": bool(alarms),
                               "feature_alarm": any(c == "drift.feature" for c, _ in alarms),
                               "right": field is not None and (right, field) in alarms,
                               "named": sorted({w for _, w in alarms if w})})
    return out


def evidently_side(data: dict[str, Any], python: str, check: int,
                   folder: Path) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Every window through Evidently in its own interpreter (a subprocess)."""
    with open(folder / "reference.jsonl", "w", encoding="utf-8") as fh:
        for record in data["train"]:
            fh.write(json.dumps(record) + "\n")
    for shift in SHIFTS:
        with open(folder / f"{shift}.jsonl", "w", encoding="utf-8") as fh:
            for index, (field, records) in enumerate(data[shift]):
                fh.write(json.dumps({"window": index, "field": field, "records": records})
                         + "\n")
    done = subprocess.run([python, __file__, "evidently-worker", str(folder), "--check",
                           str(check)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the Evidently worker failed ({python}):\n{done.stderr[-4000:]}")
    result = json.loads((folder / "evidently.json").read_text())
    out: dict[str, list[dict[str, Any]]] = {}
    for shift in SHIFTS:
        out[shift] = []
        for row, (field, _) in zip(result["windows"][shift], data[shift], strict=True):
            out[shift].append({"field": field, "alarm": bool(row["drifted"]),
                               "right": field in row["drifted"],
                               "dataset": row["dataset_drift"], "named": row["drifted"],
                               "methods": row["methods"]})
    return out, result["meta"]


# ------------------------------------------------------------------------------ reporting
def rates(rows: list[dict[str, Any]], key: str) -> float:
    """Share of ``rows`` whose ``key`` is true."""
    return sum(bool(r[key]) for r in rows) / len(rows) if rows else float("nan")


def table(results: dict[tuple[str, str], dict[str, list[dict[str, Any]]]]) -> str:
    """The markdown table of both tools on both datasets."""
    lines = ["| tool | dataset | false alarms (healthy windows with an alarm) | +0.5 SD numeric: "
             "alarm / right field | category replaced: alarm / right field | category renamed: "
             "alarm / right field |", "|---|---|---|---|---|---|"]
    for (tool, dataset), res in results.items():
        cells = [f"{rates(res['healthy'], 'alarm'):.1%}"]
        for shift in SHIFTS[1:]:
            cells.append(f"{rates(res[shift], 'alarm'):.1%} / {rates(res[shift], 'right'):.1%}")
        lines.append(f"| {tool} | {dataset.upper()} | {' | '.join(cells)} |")
        if tool.startswith("Evidently"):
            cells = [f"{rates(res['healthy'], 'dataset'):.1%}"] + [
                f"{rates(res[s], 'dataset'):.1%} / -" for s in SHIFTS[1:]]
            lines.append(f"| Evidently, dataset drift (share >= 0.5) | {dataset.upper()} | "
                         f"{' | '.join(cells)} |")
    return "\n".join(lines)


def details(results: dict[tuple[str, str], dict[str, list[dict[str, Any]]]]) -> str:
    """Which fields raise the false alarms, and which shifted fields are missed."""
    from collections import Counter

    lines = []
    for (tool, dataset), res in results.items():
        noisy = Counter(w for r in res["healthy"] for w in r["named"])
        missed = Counter(r["field"] for r in res["numeric"] if not r["right"])
        total = Counter(r["field"] for r in res["numeric"])
        lines.append(f"- {tool}, {dataset.upper()}: fields named in healthy windows "
                     f"{dict(noisy.most_common(8)) or '{}'}; +0.5 SD missed "
                     f"{ {f: f'{missed[f]}/{total[f]}' for f in sorted(missed)} or '{}'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run both tools on both recipes and print the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--est", type=Path, required=True, help="an exported EST run")
    parser.add_argument("--ccf", type=Path, required=True, help="an exported CCF run")
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--evidently-python", default=EVIDENTLY_PYTHON,
                        help="the interpreter of the environment Evidently is installed in")
    parser.add_argument("--check", type=int, default=3, help="windows per shift and dataset "
                        "also run through the full Report([DataDriftPreset()])")
    parser.add_argument("--json", type=Path, default=None, help="write every window's verdicts")
    args = parser.parse_args(argv)
    results: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    meta: dict[str, Any] = {}
    for name, run_dir in (("est", args.est), ("ccf", args.ccf)):
        started = time.perf_counter()
        data = build_windows(run_dir, args.windows, args.size)
        print(f"{name}: {data['test']} test records, {len(data['train'])} training records, "
              f"{len(data['numeric_fields'])} numeric and {len(data['categorical_fields'])} "
              "categorical "
              f"fields; windows built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        started = time.perf_counter()
        results[("guardrail", name)] = guardrail_side(data)
        seconds = time.perf_counter() - started
        print(f"{name}: guardrail judged {4 * args.windows} windows in {seconds:.1f} s",
              file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix=f"bench_drift_{name}_") as tmp:
            started = time.perf_counter()
            results[("Evidently", name)], meta[name] = evidently_side(
                data, args.evidently_python, args.check, Path(tmp))
        meta[name]["guardrail_seconds"] = seconds
        print(f"{name}: Evidently {meta[name]['version']} judged {4 * args.windows} windows "
              f"in {meta[name]['seconds']:.1f} s ({time.perf_counter() - started:.0f} s with "
              f"its start-up and the full-report check); full reports: "
              f"{meta[name]['check']['windows']} windows, {meta[name]['check']['columns']} "
              f"columns, {meta[name]['check']['disagree']} disagreements, "
              f"{meta[name]['check']['seconds_per_report']:.1f} s per report; methods used: "
              f"{meta[name]['methods']}", file=sys.stderr)
        if meta[name]["check"]["disagree"]:
            raise SystemExit(f"{name}: the fast path disagrees with the full report: "
                             f"{meta[name]['check']['examples']}")
    ordered = {k: results[k] for k in sorted(results, key=lambda k: (k[1], k[0] != "guardrail"))}
    print(table(ordered))
    print()
    print(details(ordered))
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": {
            f"{t}/{d}": r for (t, d), r in results.items()}}, default=str))
    return 0


# -------------------------------------------------------------- inside Evidently's venv
def evidently_worker(folder: Path, check: int) -> int:  # pragma: no cover (other venv)
    """Judge every window of ``folder`` with Evidently; writes ``folder/evidently.json``.

    Runs in Evidently's environment: imports pandas and evidently only.
    """
    from collections import Counter

    import evidently
    import pandas as pd
    from evidently import Report
    from evidently.core.datasets import infer_column_type
    from evidently.legacy.calculations.data_drift import get_one_column_drift
    from evidently.legacy.core import ColumnType
    from evidently.legacy.metric_results import DatasetColumns, DatasetUtilityColumns
    from evidently.legacy.options.data_drift import DataDriftOptions
    from evidently.presets import DataDriftPreset

    def frame(path: Path) -> pd.DataFrame:
        with open(path, encoding="utf-8") as fh:
            return pd.DataFrame([json.loads(line) for line in fh])

    reference = frame(folder / "reference.jsonl")
    kinds = (ColumnType.Numerical, ColumnType.Categorical, ColumnType.Text)
    options = DataDriftOptions()
    methods: Counter[str] = Counter()

    def fast(current: pd.DataFrame) -> dict[str, Any]:
        """What the preset's metrics compute, column by column, without rendering widgets."""
        drifted, used, columns = [], {}, 0
        for column in current.columns:
            kind = infer_column_type(current[column])  # the preset types the current data
            if kind not in kinds:
                continue
            columns += 1
            try:
                drift = get_one_column_drift(
                    current_data=current, reference_data=reference, column_name=column,
                    options=options, dataset_columns=DatasetColumns(
                        utility_columns=DatasetUtilityColumns(date=None, id=None, target=None,
                                                              prediction=None),
                        target_type=None, task=None,
                        num_feature_names=[column] if kind == ColumnType.Numerical else [],
                        cat_feature_names=[column] if kind == ColumnType.Categorical else [],
                        text_feature_names=[column] if kind == ColumnType.Text else [],
                        datetime_feature_names=[], target_names=None),
                    column_type=kind, agg_data=True)
            except ValueError:  # an empty column: no verdict
                continue
            used[column] = drift.stattest_name
            methods[drift.stattest_name] += 1
            if drift.drift_detected:
                drifted.append(column)
        share = len(drifted) / columns if columns else 0.0
        return {"drifted": sorted(drifted), "share": share, "dataset_drift": share >= 0.5,
                "methods": used}

    def full(current: pd.DataFrame) -> dict[str, Any]:
        snapshot = Report([DataDriftPreset()], include_tests=True).run(current, reference)
        tests = snapshot.dict()["tests"]
        drifted = sorted(t["name"].removeprefix("Value Drift for column ") for t in tests
                         if t["name"].startswith("Value Drift for column ")
                         and t["status"] == "FAIL")
        dataset = [t for t in tests if t["name"].startswith("Share of Drifted Columns")]
        return {"drifted": drifted, "dataset_drift": bool(dataset) and
                dataset[0]["status"] == "FAIL"}

    out: dict[str, Any] = {"windows": {}, "meta": {}}
    started = time.perf_counter()
    for shift in SHIFTS:
        rows = []
        with open(folder / f"{shift}.jsonl", encoding="utf-8") as fh:
            for line in fh:
                item = json.loads(line)
                rows.append(fast(pd.DataFrame(item["records"])))
        out["windows"][shift] = rows
    seconds = time.perf_counter() - started
    checked = columns = 0
    disagree: list[Any] = []
    started = time.perf_counter()
    for shift in SHIFTS:
        with open(folder / f"{shift}.jsonl", encoding="utf-8") as fh:
            for line, row in zip(fh, out["windows"][shift], strict=True):
                item = json.loads(line)
                if item["window"] >= check:
                    break
                got = full(pd.DataFrame(item["records"]))
                checked += 1
                columns += len(row["methods"])
                if got["drifted"] != row["drifted"] or got["dataset_drift"] != \
                        row["dataset_drift"]:
                    disagree.append({"shift": shift, "window": item["window"],
                                     "report": got, "fast": row["drifted"]})
    out["meta"] = {"version": evidently.__version__, "pandas": pd.__version__,
                   "seconds": seconds, "methods": dict(methods),
                   "check": {"windows": checked, "columns": columns,
                             "disagree": len(disagree), "examples": disagree[:3],
                             "seconds_per_report": (time.perf_counter() - started) / checked
                             if checked else 0.0}}
    (folder / "evidently.json").write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "evidently-worker":
        worker = argparse.ArgumentParser()
        worker.add_argument("mode")
        worker.add_argument("folder", type=Path)
        worker.add_argument("--check", type=int, default=3)
        options = worker.parse_args()
        sys.exit(evidently_worker(options.folder, options.check))
    sys.exit(main())
