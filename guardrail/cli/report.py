"""``guardrail report RUN_DIR``: re-render report.html from a run's recorded files."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "re-render a run's report.html from report.json and findings.jsonl"
EPILOG = """examples:
  guardrail report outputs/wea/2026-01-01_12-00-00
  guardrail report outputs/est/*/            # several runs
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``report`` on the subparsers ``sub``."""
    parser = sub.add_parser("report", help=HELP, description=HELP + ".", epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="a run directory")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Re-render each run's report.html and print its path."""
    from guardrail.report import rerender

    for run_dir in args.run_dirs:
        print(rerender(run_dir))
    return 0
