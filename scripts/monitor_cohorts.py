"""What ``guardrail monitor`` says on RET cohorts by signup month, and whether the drift is real.

Usage (a trained and exported RET run)::

    python -m guardrail.train recipe=ret trainer.max_epochs=2 hydra.run.dir=/tmp/mon_ret
    guardrail export /tmp/mon_ret
    OMP_NUM_THREADS=1 python scripts/monitor_cohorts.py /tmp/mon_ret --out /tmp/mon_ret_cohorts

The held-out users of a split (``--split test``: the model never trained on them) are grouped
by their signup month (the month of their first purchase), written as one records file per
month (``{"record", "time", "id"}``: the time is the first purchase, the id the user) plus one
file of all of them in time order, with a labels file (``{"id", "label"}``: the datamodule's
target, activity on days 7-13). ``guardrail monitor`` then runs on each month as one window,
and on all months ``--by week``, with ``--labels``: a field that drifts while the model's
error (Brier score) stays at the test split's is a change the model absorbs; a drift with a
worse error is one that matters. Prints a Markdown table of both.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from guardrail.monitoring import monitor, read_windows
from guardrail.rundir import run_datamodule


def signup(record: dict[str, Any]) -> dt.date:
    """The day of a user's first purchase (dates are ``yyyymmdd`` integers in CDNOW)."""
    first = str(min(int(p["date"]) for p in record["purchases"]))
    return dt.date(int(first[:4]), int(first[4:6]), int(first[6:]))


def write_cohorts(run_dir: Path, split: str, out: Path) -> tuple[dict[str, Path], Path, Path]:
    """One records file per signup month, one of all users in time order, and the labels."""
    dm = run_datamodule(run_dir)
    records = dm.records(split)
    users = dm.cohort.user_ids[dm.split[split]]
    labels = dm.cohort.label[dm.split[split]]
    out.mkdir(parents=True, exist_ok=True)
    rows = sorted(((signup(r), str(u), r) for r, u in zip(records, users, strict=True)),
                  key=lambda t: (t[0], t[1]))
    months: dict[str, list[str]] = defaultdict(list)
    every = []
    for day, user, record in rows:
        line = json.dumps({"record": record, "time": f"{day.isoformat()}T00:00:00Z",
                           "id": user})
        months[day.strftime("%Y-%m")].append(line)
        every.append(line)
    files = {}
    for month, lines in sorted(months.items()):
        files[month] = out / f"{split}_{month}.jsonl"
        files[month].write_text("\n".join(lines) + "\n")
    (out / f"{split}_all.jsonl").write_text("\n".join(every) + "\n")
    (out / "labels.jsonl").write_text("".join(
        json.dumps({"id": str(u), "label": int(y)}) + "\n"
        for u, y in zip(users, labels, strict=True)))
    return files, out / f"{split}_all.jsonl", out / "labels.jsonl"


def describe(window: dict[str, Any]) -> dict[str, Any]:
    """A window's drifted fields (with their statistic) and its error against the test's."""
    drifted = []
    for finding in window["findings"]:
        if finding["check"].startswith(("drift.feature", "drift.prediction", "skew.")):
            e = finding["evidence"]
            drifted.append(f"{e.get('feature') or finding['where']} {e['statistic'].upper()} "
                           f"{e['value']:.2f}")
    perf = window.get("performance") or {}
    return {"drifted": drifted, "brier": perf.get("value"), "test": perf.get("test"),
            "worse_by": perf.get("worse_by"),
            "performance": [f["severity"] for f in window["findings"]
                            if f["check"] == "drift.performance"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--out", type=Path, default=Path("cohorts"))
    args = parser.parse_args(argv)
    files, every, labels = write_cohorts(args.run_dir, args.split, args.out)
    print("| signup month | users | fields that drift (statistic) | Brier (test) | worse by |")
    print("|---|---|---|---|---|")
    for month, path in files.items():
        result = monitor(args.run_dir, records=path, window=10**9, labels=labels)
        (window,) = list(read_windows(result.folder))
        d = describe(window)
        print(f"| {month} | {window['records']:,} | {', '.join(d['drifted']) or '-'} | "
              f"{d['brier']:.3f} ({d['test']:.3f}) | {d['worse_by']:+.0%} "
              f"{' '.join(d['performance'])} |")
    result = monitor(args.run_dir, records=every, by="week", labels=labels)
    print(f"\n`--by week` over all {result.records:,} users ({result.folder}):\n")
    print("| week | users | fields that drift | Brier | worse by |\n|---|---|---|---|---|")
    for window in read_windows(result.folder):
        d = describe(window)
        thin = any(f["check"] == "monitor.thin_window" for f in window["findings"])
        brier = f"{d['brier']:.3f}" if d["brier"] is not None else "-"
        worse = f"{d['worse_by']:+.0%}" if d["worse_by"] is not None else "-"
        print(f"| {window['key']} | {window['records']:,} | "
              f"{'(thin: not judged)' if thin else ', '.join(d['drifted']) or '-'} | "
              f"{brier} | {worse} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
