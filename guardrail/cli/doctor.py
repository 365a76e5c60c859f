"""``guardrail doctor RUN_DIR``: the environment against training, and the golden outputs re-run."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = ("compare today's environment with the run's and re-run its golden outputs "
        "(examples.jsonl) through the exported program and the checkpoint")
EPILOG = """examples:
  guardrail doctor outputs/est/2026-01-01_12-00-00
  guardrail doctor RUN_DIR --json > doctor.json
  guardrail doctor RUN_DIR --no-checkpoint     # the exported program only

The run must be exported (`guardrail export RUN_DIR`). The result is written to
RUN_DIR/doctor/<time>/ (doctor.json, findings.jsonl).

exit status: 0 outputs reproduce and nothing the model depends on changed, 1 warnings
(dependency.changed: a package, Python, CUDA or the device changed, outputs still reproduce),
2 errors (dependency.outputs_changed: the golden outputs moved beyond tolerance)
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``doctor`` on the subparsers ``sub``."""
    parser = sub.add_parser("doctor", help=HELP, description=HELP + ".", epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="an exported run directory")
    parser.add_argument("--json", action="store_true", help="print doctor.json")
    parser.add_argument("--no-checkpoint", dest="checkpoint", action="store_false",
                        help="skip the checkpoint replay (no module rebuilt from the config)")
    parser.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE",
                        help="change one of DependencyThresholds (repeatable)")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Check the run, write RUN_DIR/doctor/<time>/, print the result; 0, 1 or 2."""
    from guardrail.checks.dependency import DependencyThresholds
    from guardrail.doctor import doctor_run, write_result
    from guardrail.thresholds import assignments

    limits = DependencyThresholds.coerce(assignments(args.threshold))
    result = doctor_run(args.run_dir, thresholds=limits, checkpoint=args.checkpoint)
    write_result(result, args.run_dir)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, allow_nan=False))
        return result.exit_code
    out = sys.stdout
    out.write(f"guardrail doctor {args.run_dir}\n")
    relevant = [c for c in result.causes if c.tier < 5]
    out.write(f"  environment since training: {len(result.causes)} change(s), {len(relevant)} "
              "the model depends on\n" if result.causes else
              "  environment since training: unchanged\n")
    for cause in result.causes[:15]:
        out.write(f"    {cause}  ({cause.why})\n")
    if len(result.causes) > 15:
        out.write(f"    ... and {len(result.causes) - 15} more (doctor.json lists them)\n")
    tol = result.tolerance
    out.write(f"  tolerance: replay spread {tol['spread']:.3g} ({tol['spread_source']}); floor "
              f"{tol['floor_abs']:g} + {tol['floor_rel']:g} x |value|\n")
    for c in result.comparisons:
        name = {"exported": f"exported program ({tol['format']})",
                "checkpoint": f"checkpoint {tol['checkpoint']}"}[c.path]
        state = "reproduces" if c.passed else (
            f"CHANGED on {len(c.moved_records)} of {c.records} records")
        diff = "infinite" if c.max_diff == float("inf") else f"{c.max_diff:.3g}"
        out.write(f"  {name}: {state} (max difference {diff}, tolerance {c.tolerance:.3g})\n")
    out.write(f"  verdict: {result.verdict}\n")
    for finding in result.findings:
        out.write(f"  {finding.severity.value} {finding.check} at {finding.where}: "
                  f"{finding.message}\n")
        if finding.severity.rank and finding.hint:
            out.write(f"    hint: {finding.hint}\n")
    out.write(f"  written to {result.written_to}\n")
    return result.exit_code
