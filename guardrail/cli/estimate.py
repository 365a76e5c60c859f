"""``guardrail estimate recipe=NAME --sweep KEY=V1,V2,V3 --target split/metric=VALUE``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = ("run a recipe at several values of one quantity (data size, days logged, ...) and "
        "forecast the metric beyond them: how much more data a target needs")
EPILOG = """examples:
  guardrail estimate recipe=bot --sweep data.train_fraction=0.125,0.25,0.5 \\
      --target test/ap=0.8 --at 1.0,2.0,4.0
  guardrail estimate recipe=ret --sweep data.logged_days=1,2,3,4,5,6 --target test/auroc=0.8
  guardrail estimate recipe=ret --sweep data.logged_fraction=0.1,0.25,0.5 --metric test/auroc \\
      --at 1.0 -- trainer.max_epochs=5
  guardrail estimate recipe=bot --sweep data.train_fraction=0.125,0.25,0.5 \\
      --target test/ap=0.7 --out outputs/estimate/bot --no-run  # refit

The sweep is a Hydra multirun of `python -m guardrail.train` (each value times each seed, every
guardrail on) into OUT/runs; overrides after `--` go to every run (a `hydra/launcher=...` of
yours sends them to a cluster). Two seeds per value by default: their spread is the run-to-run
noise the intervals need. Writes OUT/estimate.json and OUT/estimate.html. Exit code 0, 2 on bad
input or when fewer than 3 values completed.
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``estimate`` on the subparsers ``sub``."""
    parser = sub.add_parser("estimate", help=HELP, description=HELP + ".", epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", metavar="recipe=NAME", help="the recipe to run, e.g. recipe=bot")
    parser.add_argument("--sweep", required=True, metavar="KEY=V1,V2,V3",
                        help="the config key swept and at least 3 positive numeric values")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--target", metavar="SPLIT/METRIC=VALUE",
                      help="the metric and the value to reach, e.g. test/average_precision=0.8")
    what.add_argument("--metric", metavar="SPLIT/METRIC",
                      help="the metric to forecast, without a target")
    parser.add_argument("--at", metavar="V1,V2", help="values of the swept key to forecast at")
    parser.add_argument("--seeds", type=int, default=2, metavar="N",
                        help="runs per value with seeds SEED, SEED+1, ... (default 2)")
    parser.add_argument("--seed", type=int, default=42,
                        help="the first seed (default 42, the app's)")
    parser.add_argument("--out", metavar="DIR",
                        help="the estimate's folder (default outputs/estimate/NAME/<time>)")
    parser.add_argument("--no-run", action="store_true",
                        help="fit the runs already in --out (another target or --at)")
    parser.add_argument("--json", action="store_true", help="print estimate.json")
    parser.set_defaults(run=run, overrides=[])  # Hydra overrides for every run, after `--`
    return parser


def run(args: argparse.Namespace) -> int:
    """Parse, run the sweep, fit, write and print the answer."""
    import datetime
    from pathlib import Path

    from guardrail.errors import ConfigError
    from guardrail.estimate import ESTIMATE_HTML, Sweep, estimate, parse_at, parse_target

    key, _, name = args.recipe.partition("=")
    if key != "recipe" or not name:
        raise ConfigError(f"Expected `recipe=NAME`; got {args.recipe!r}. Example: "
                          "`guardrail estimate recipe=bot --sweep data.train_fraction=0.125,"
                          "0.25,0.5 --target test/average_precision=0.8`.")
    if args.seeds < 1:
        raise ConfigError(f"`--seeds {args.seeds}`: at least one run per value.")
    if args.no_run and not args.out:
        raise ConfigError("`--no-run` refits an earlier estimate: name its folder with `--out`.")
    sweep = Sweep.parse(args.sweep)
    metric, target = parse_target(args.target or args.metric)
    out = Path(args.out) if args.out else Path("outputs", "estimate", name,
                                               datetime.datetime.now().strftime(
                                                   "%Y-%m-%d_%H-%M-%S"))
    result = estimate(name, sweep, metric, target, parse_at(args.at), out,
                      seeds=[args.seed + i for i in range(args.seeds)],
                      overrides=args.overrides, run=not args.no_run,
                      echo=lambda line: print(line, file=sys.stderr))
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write("\n".join(result["summary"]) + f"\nwritten: {out / ESTIMATE_HTML}\n")
    return 0
