"""The ``guardrail`` command: one module per subcommand.

Example:
    >>> main(["ls"])  # doctest: +ELLIPSIS
    bot ...
    0

"""

from __future__ import annotations

import argparse
import sys

from guardrail.cli import (
    approve,
    diff,
    doctor,
    export,
    ls,
    monitor,
    new,
    records,
    report,
    score,
    serve,
)
from guardrail.errors import GuardrailError
from guardrail.recipe import make_importable

SUBCOMMANDS = (ls, new, diff, approve, report, records, export, serve, monitor, doctor,
               score)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="guardrail",
        description="Inspect guardrail recipes and runs. Train with "
                    "`python -m guardrail.train recipe=<name>`.",
        epilog="examples:\n  guardrail ls\n  guardrail new myproj\n  guardrail diff RUN_A RUN_B\n"
               "  guardrail approve recipe=est\n"
               "  guardrail report outputs/wea/2026-01-01_12-00-00\n"
               "  guardrail records outputs/est/2026-01-01_12-00-00 --split test --limit 5\n"
               "  guardrail export outputs/est/2026-01-01_12-00-00\n"
               "  guardrail serve outputs/est/2026-01-01_12-00-00 --port 8000\n"
               "  guardrail monitor outputs/est/2026-01-01_12-00-00\n"
               "  guardrail doctor outputs/est/2026-01-01_12-00-00\n"
               "  guardrail score outputs/est/2026-01-01_12-00-00",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 usage or input error)."""
    args = build_parser().parse_args(argv)
    make_importable([])  # the current folder: a recipe's `_target_`s import from it
    try:
        return int(args.run(args))
    except GuardrailError as err:
        print(f"guardrail: error: {err}", file=sys.stderr)
        return 2


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
