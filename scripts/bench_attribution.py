"""What AttributionReport adds to a default recipe run on CPU.

Usage:
    OMP_NUM_THREADS=1 python scripts/bench_attribution.py --recipes est wea --repeats 3

For each recipe, runs `python -m guardrail.train recipe=R` with the attribution guardrail and
without it (`~guardrails.callbacks.attribution`), interleaved (the order alternates), and
prints as medians over repeats: the wall-time ratio of each pair, and the attribution's own
seconds (`guardrail/attribution_s`) as a share of the run's wall time (target: at most 15%).
The config lock is switched off so that the second variant is not refused.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(recipe: str, attribution: bool, out: Path) -> tuple[float, float | None]:
    """Wall seconds of one run, and the attribution's own seconds (None without it)."""
    cmd = [sys.executable, "-m", "guardrail.train", f"recipe={recipe}",
           f"hydra.run.dir={out}", "guardrails.callbacks.config_lock.mode=off"]
    if not attribution:
        cmd.append("~guardrails.callbacks.attribution")
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=out.parent)
    wall = time.perf_counter() - start
    if not attribution:
        return wall, None
    with (out / "metrics" / "metrics.csv").open() as fh:
        seconds = [float(row["guardrail/attribution_s"]) for row in csv.DictReader(fh)
                   if row.get("guardrail/attribution_s")]
    return wall, seconds[-1] if seconds else None


def main() -> None:
    """Print a markdown table of medians over repeats."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["est", "wea"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| recipe | run with attribution, s | attribution, s | share of the run | "
          "wall ratio with / without |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in args.recipes:
            walls, seconds, ratios = [], [], []
            for rep in range(args.repeats):
                timed = {}
                for attribution in ((True, False) if rep % 2 == 0 else (False, True)):
                    out = Path(tmp) / f"{recipe}-{rep}-{attribution}"
                    timed[attribution] = run(recipe, attribution, out)
                (wall, own), (plain, _) = timed[True], timed[False]
                walls.append(wall)
                seconds.append(own or 0.0)
                ratios.append(wall / plain)
            wall, own = statistics.median(walls), statistics.median(seconds)
            print(f"| {recipe} | {wall:.1f} | {own:.2f} | {own / wall:.1%} "
                  f"| {statistics.median(ratios):.3f} |", flush=True)


if __name__ == "__main__":
    main()
