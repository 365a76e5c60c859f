"""``guardrail diff RUN_A RUN_B``: why two runs differ, most likely causes first."""

from __future__ import annotations

import argparse
import json
from typing import Any

HELP = "explain why two runs differ (config, settings, data, code, weights, metrics)"
EPILOG = """examples:
  guardrail diff outputs/est/2026-01-01_12-00-00 outputs/est/2026-01-02_09-30-00
  guardrail diff RUN_A RUN_B --json | jq '.differences[0]'

exit status: 0 when the runs are identical, 1 when they differ, 2 on bad input.
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``diff`` on the subparsers ``sub``."""
    parser = sub.add_parser("diff", help=HELP, description=HELP + ".", epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_a", metavar="RUN_A", help="the first run directory")
    parser.add_argument("run_b", metavar="RUN_B", help="the second run directory")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the differences; 0 if identical, 1 otherwise."""
    from guardrail.rundiff import diff_runs, format_diff, is_identical

    differences = diff_runs(args.run_a, args.run_b)
    identical = is_identical(differences)
    if args.json:
        print(json.dumps({"identical": identical, "differences": differences}, indent=2,
                         default=str))
    else:
        print(format_diff(differences, args.run_a, args.run_b))
    return 0 if identical else 1
