"""``guardrail score RUN_DIR``: (being built)."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "score a run (being built)"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``score`` on the subparsers ``sub``."""
    parser = sub.add_parser("score", help=HELP, description=HELP + ".")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Not built yet."""
    raise NotImplementedError
