"""``guardrail export RUN_DIR``: the trained model as a program, with a parity test."""

from __future__ import annotations

import argparse
import json
from typing import Any

HELP = "export a run's model, preprocessor and contract, and test serving parity"
EPILOG = """examples:
  guardrail export outputs/est/2026-01-01_12-00-00
  guardrail export RUN_DIR --checkpoint last --json

exit status: 0 parity holds, 2 an error (export.parity: the serving path differs from training)
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``export`` on the subparsers ``sub``."""
    parser = sub.add_parser("export", help=HELP, description=HELP + ".", epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory")
    parser.add_argument("--checkpoint", default="best",
                        help="best (default), last, or a .ckpt file of the run")
    parser.add_argument("--examples", type=int, default=64,
                        help="held-out records in examples.jsonl and the parity test")
    parser.add_argument("--json", action="store_true", help="print export.json")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Export, print where and the parity measured; 2 when parity fails."""
    from guardrail.errors import ConfigError
    from guardrail.export import FOLDER, export_run

    if args.examples < 1:
        raise ConfigError(f"--examples {args.examples}: give 1 or more.")
    manifest, findings = export_run(args.run_dir, checkpoint=args.checkpoint,
                                    examples=args.examples)
    if args.json:
        print(json.dumps(manifest, indent=2))
    else:
        parity = manifest["parity"]
        print(f"exported {manifest['format']} to {args.run_dir}/{FOLDER} "
              f"(model id {manifest['model_id']})")
        if manifest["format"] != "torch.export":
            print(f"  why: {manifest['why']}")
        print(f"  parity on {manifest['examples']} held-out records: max |difference| "
              f"{parity['max_abs_diff']} (tolerance {manifest['tolerance']['atol']} + "
              f"{manifest['tolerance']['rtol']} x |value|): "
              f"{'passed' if parity['passed'] else 'FAILED'}")
        for finding in findings:
            print(f"  {finding.severity.value} {finding.check} at {finding.where}: "
                  f"{finding.message}")
    return 2 if findings else 0
