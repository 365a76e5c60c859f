"""Save a screenshot of a run's report.html, for people to look at.

Usage:
    python scripts/screenshot_report.py RUN_DIR [OUT.png] [--height 2400]

Needs Chromium (Debian: `apt-get install chromium`). The page is loaded headless from disk;
nothing is fetched from the network.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from guardrail.report.browser import chromium, screenshot


def main() -> int:
    """Write the PNG; exit 2 with one line when Chromium or the report is missing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args()
    page = args.run_dir / "report.html"
    if not page.is_file():
        print(f"screenshot_report: {page} does not exist; pass a run directory.", file=sys.stderr)
        return 2
    if chromium() is None:
        print("screenshot_report: Chromium is not installed; on Debian: "
              "`apt-get install chromium`.", file=sys.stderr)
        return 2
    out = args.out or args.run_dir / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        screenshot(page, out, Path(profile), height=args.height)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
