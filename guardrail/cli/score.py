"""``guardrail score RUN_DIR``: the run's ML Test Score (Breck et al. 2017), with its evidence."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = ("score a run on the ML Test Score rubric (28 tests: data, model, infrastructure, "
        "monitoring), each point backed by a file and a key")
EPILOG = """examples:
  guardrail score outputs/est/2026-01-01_12-00-00
  guardrail score RUN_DIR --json > score.json
  guardrail score RUN_DIR --brief

A test earns 0.5 when it was done by hand or once, 1 when it runs automatically on every run,
0 without evidence; the score is the lowest of the four section sums. Run `guardrail export`,
`guardrail doctor` and `guardrail monitor` on the run to earn more. The result is also written
to RUN_DIR/score.json. Exit code 0.
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``score`` on the subparsers ``sub``."""
    parser = sub.add_parser("score", help=HELP, description=HELP + ".", epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory")
    parser.add_argument("--json", action="store_true",
                        help="print the result as JSON (items, evidence, section sums, final)")
    parser.add_argument("--brief", action="store_true",
                        help="one line per test, without why, evidence and what would earn it")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Score the run, write ``RUN_DIR/score.json``, add it to report.html, print the result."""
    from pathlib import Path

    from guardrail.report.run import REPORT_JSON, rerender
    from guardrail.score import render_text, score_run, write_score

    result = score_run(args.run_dir)
    write_score(result, args.run_dir)
    if (Path(args.run_dir) / REPORT_JSON).is_file():  # report.html gains its score section
        try:
            rerender(args.run_dir)
        except Exception as err:  # an older or partial run: the score stands without it
            sys.stderr.write(f"guardrail score: report.html was not re-rendered "
                             f"({type(err).__name__}: {err}); score.json is written.\n")
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(result, evidence=not args.brief) + "\n")
    return 0
