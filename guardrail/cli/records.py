"""``guardrail records RUN_DIR``: a split's raw records as JSON lines, what a client sends."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from guardrail.errors import ConfigError

HELP = "print a split's raw records as JSON lines (what a client of the served model sends)"
EPILOG = """examples:
  guardrail records outputs/est/2026-01-01_12-00-00 --split test --limit 5
  guardrail records RUN_DIR --split val > val.jsonl
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``records`` on the subparsers ``sub``."""
    parser = sub.add_parser("records", help=HELP, description=HELP + ".", epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory")
    parser.add_argument("--split", choices=("train", "val", "test"), default="test")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="the first N records only")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Rebuild the run's datamodule from its config and print the split's records."""
    from guardrail.rundir import run_datamodule

    if args.limit is not None and args.limit < 0:
        raise ConfigError(f"--limit {args.limit}: give a count of 0 or more.")
    datamodule = run_datamodule(args.run_dir)
    records = datamodule.records(args.split) if callable(
        getattr(datamodule, "records", None)) else None
    if records is None:
        raise ConfigError(
            f"{type(datamodule).__name__} has no raw records (no records(split) method, or it "
            "returns None): the model serves tensors. Give the datamodule records() and "
            "preprocessor() (see guardrail.RecipeDataModule) to serve raw records.")
    out = sys.stdout
    for record in records[:args.limit] if args.limit is not None else records:
        out.write(json.dumps(record, allow_nan=False) + "\n")
    return 0
