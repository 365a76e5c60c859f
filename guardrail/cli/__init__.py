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
    estimate,
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
               estimate, score)


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
               "  guardrail estimate recipe=bot --sweep data.train_fraction=0.125,0.25,0.5 "
               "--target test/ap=0.8\n"
               "  guardrail score outputs/est/2026-01-01_12-00-00",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 usage or input error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] = []
    if "--" in argv:  # what follows goes to the runs a command starts (`estimate`)
        at = argv.index("--")
        argv, rest = argv[:at], argv[at + 1:]
    parser = build_parser()
    args = parser.parse_args(argv)
    if rest and not hasattr(args, "overrides"):
        parser.error(f"`guardrail {args.command}` takes no overrides after `--`: "
                     f"{' '.join(rest)}")
    if hasattr(args, "overrides"):
        args.overrides = rest
    make_importable([])  # the current folder: a recipe's `_target_`s import from it
    try:
        return int(args.run(args))
    except GuardrailError as err:
        print(f"guardrail: error: {err}", file=sys.stderr)
        return 2


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
