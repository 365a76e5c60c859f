"""``guardrail monitor RUN_DIR``: drift and skew of served records against training, by window."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = ("compare served records and predictions with the training reference, window by "
        "window: drift, unseen categories, and the error when labels are given")
EPILOG = """examples:
  guardrail monitor outputs/est/2026-01-01_12-00-00
  guardrail monitor RUN_DIR --log /var/lib/model/predictions.sqlite --by week
  guardrail monitor RUN_DIR --records served.jsonl --window 500 --json
  guardrail monitor RUN_DIR --labels labels.jsonl --threshold psi_warning=0.3
  guardrail monitor RUN_DIR --log big.sqlite --workers 4

The reference is RUN_DIR/export/reference.json (`guardrail export RUN_DIR` writes it); the
log defaults to RUN_DIR/serving/predictions.sqlite (what `guardrail serve` writes). Output:
RUN_DIR/monitoring/<timestamp>/ with findings.jsonl, monitor.json, windows.jsonl and the page
monitor.html.
Exit code: 0 nothing found, 1 warnings, 2 errors (or bad input).
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``monitor`` on the subparsers ``sub``."""
    parser = sub.add_parser("monitor", help=HELP, description=HELP + ".", epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, exported")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--log", metavar="DB", default=None,
                        help="the prediction log (default RUN_DIR/serving/predictions.sqlite)")
    source.add_argument("--records", metavar="FILE.jsonl", default=None,
                        help="JSON lines of records (or {record, prediction, time, id}) "
                             "instead of a log")
    windows = parser.add_mutually_exclusive_group()
    windows.add_argument("--window", type=int, default=None, metavar="N",
                         help="records per window (default 300)")
    windows.add_argument("--by", choices=("day", "week"), default=None,
                         help="windows by the rows' time instead of by count")
    parser.add_argument("--labels", metavar="FILE", default=None,
                        help="labels by row id: JSON lines {\"id\", \"label\"} or CSV id,label")
    parser.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE",
                        help="change one of DriftThresholds (repeatable)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="processes parsing a log's records beside the one judging "
                             "windows (default: 2 on a log of 50,000 rows or more, else 0)")
    parser.add_argument("--json", action="store_true", help="print monitor.json to stdout")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Monitor the run; print a summary (or monitor.json) and return 0, 1 or 2."""
    from guardrail.checks.drift import DriftThresholds
    from guardrail.monitoring import DEFAULT_WINDOW, monitor
    from guardrail.thresholds import assignments

    limits = DriftThresholds.coerce(assignments(args.threshold))
    result = monitor(args.run_dir, log=args.log, records=args.records,
                     window=args.window or DEFAULT_WINDOW, by=args.by, labels=args.labels,
                     thresholds=limits, workers=args.workers)
    if args.json:
        print(json.dumps(json.loads((_folder(result) / "monitor.json").read_text()), indent=2))
        return result.exit_code
    out = sys.stdout
    counts = result.to_dict()["counts"]["by_severity"]
    out.write(f"monitored {result.records:,} records in {len(result.windows)} window(s) of "
              f"{result.source['path']}\n")
    out.write(f"findings: {counts['error']} error, {counts['warning']} warning, "
              f"{counts['info']} info\n")
    for finding in result.findings[:30]:
        if finding.severity.value != "info":
            out.write(f"  {finding.severity.value} {finding.check} at {finding.where}: "
                      f"{finding.message}\n")
    shown = sum(f.severity.value != "info" for f in result.findings[:30])
    rest = sum(f.severity.value != "info" for f in result.findings) - shown
    if rest > 0:
        out.write(f"  ... and {rest} more in findings.jsonl\n")
    for headline in result.windows[-10:]:
        perf = headline.get("performance") or {}
        error = f", {perf['metric']} {perf['value']:.4g}" if "metric" in perf else ""
        label = headline["key"] or f"#{headline['index']}"
        drifted = ", ".join(headline["drifted"][:6]) or "-"
        out.write(f"  window {label}: {headline['records']:,} records{error}; drifted: "
                  f"{drifted}\n")
    out.write(f"written: {result.folder}\n")
    return result.exit_code


def _folder(result: Any) -> Any:
    from pathlib import Path

    return Path(result.folder)
