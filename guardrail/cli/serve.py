"""``guardrail serve RUN_DIR``: the exported model behind HTTP, checking every record."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "serve a run's exported model over HTTP, every record checked against its contract"
EPILOG = """examples:
  guardrail export outputs/est/2026-01-01_12-00-00     # first: the program and its parity
  guardrail serve outputs/est/2026-01-01_12-00-00 --port 8000
  curl -s localhost:8000/predict -d '{"records": [{"Gr_Liv_Area": 1500, ...}]}'

routes: POST /predict {"records": [...]}, GET /health, GET /contract
answers: 200 predictions and warnings; 422 every problem of every record; 413 body too large
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``serve`` on the subparsers ``sub``."""
    from guardrail.serving import MAX_BODY

    parser = sub.add_parser("serve", help=HELP, description=HELP + ".", epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory with an export/")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log", default=None, metavar="DB",
                        help="prediction log (SQLite); default RUN_DIR/serving/predictions.sqlite")
    parser.add_argument("--strict", action="store_true",
                        help="refuse unseen categories and far-out numbers instead of warning")
    parser.add_argument("--max-body", type=int, default=MAX_BODY, metavar="BYTES",
                        help=f"larger request bodies get 413 (default {MAX_BODY:,})")
    parser.add_argument("--workers", type=int, default=1, help="model worker processes")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Serve until stopped."""
    from guardrail.errors import ConfigError
    from guardrail.serving import serve

    if not 1024 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: give a port from 1024 to 65535.")
    if args.max_body < 1024 or args.workers < 1:
        raise ConfigError("--max-body must be at least 1024 bytes and --workers at least 1.")
    serve(args.run_dir, host=args.host, port=args.port, log_path=args.log, strict=args.strict,
          max_body=args.max_body, workers=args.workers)
    return 0
