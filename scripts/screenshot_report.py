"""Save screenshots of runs' report.html, for people to look at.

Usage:
    python scripts/screenshot_report.py RUN_DIR [OUT.png] [--height 2400]
    python scripts/screenshot_report.py RUN_DIR... --out-dir DIR [--height full]

One run: OUT.png (default RUN_DIR/report.png). Several runs (e.g. one per recipe,
``/tmp/runs/*``): DIR/<run folder name>.png each. ``--height full`` (the default) measures the
page and captures all of it; a number captures the first that many pixels. Pages are laid
out 1200 pixels wide.

Needs Chromium (Debian: `apt-get install chromium`). The pages are loaded headless from
disk; nothing is fetched from the network.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from guardrail.report.browser import chromium, page_size, screenshot

WIDTH = 1200


def _height(value: str) -> int | None:
    """``full`` (None: measure the page) or a positive number of pixels."""
    if value == "full":
        return None
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"--height {value!r}: give a number of pixels or 'full'")
    return int(value)


def main() -> int:
    """Write the PNGs; exit 2 with one line when Chromium or a report is missing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", type=Path, nargs="+", help="run directories [OUT.png]")
    parser.add_argument("--out-dir", type=Path, help="one PNG per run, named after its folder")
    parser.add_argument("--height", type=_height, default=None,
                        help="pixels to capture, or 'full' (default)")
    args = parser.parse_args()
    runs, out = list(args.paths), None
    if len(runs) == 2 and runs[1].suffix == ".png" and args.out_dir is None:
        runs, out = runs[:1], runs[1]
    if len(runs) > 1 and args.out_dir is None:
        parser.error("several run directories need --out-dir DIR")
    missing = [str(r / "report.html") for r in runs if not (r / "report.html").is_file()]
    if missing:
        print(f"screenshot_report: {', '.join(missing)} does not exist; pass run directories.",
              file=sys.stderr)
        return 2
    if chromium() is None:
        print("screenshot_report: Chromium is not installed; on Debian: "
              "`apt-get install chromium`.", file=sys.stderr)
        return 2
    if args.out_dir is not None:
        args.out_dir.mkdir(parents=True, exist_ok=True)
    for run in runs:
        target = (args.out_dir / f"{run.resolve().name}.png" if args.out_dir is not None
                  else out or run / "report.png")
        with tempfile.TemporaryDirectory() as profile:
            height = args.height or page_size(run / "report.html", Path(profile) / "size",
                                              WIDTH)[1]
            screenshot(run / "report.html", target, Path(profile) / "shot", width=WIDTH,
                       height=height)
        print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
