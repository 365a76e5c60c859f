"""ResourceMonitor's own cost per training step, and what it reports, on real recipes (CPU).

Usage:
    OMP_NUM_THREADS=1 python scripts/bench_resources.py --recipes wea est --pairs 7

For each recipe, interleaved pairs of runs from the same seed, one without callbacks and
one with ResourceMonitor alone; the step time is the median gap between consecutive
training-batch starts (every hook included, validation off), and the printed ratio is the
median over pairs of (monitored / plain). The monitor's own figures (throughput, the share
of each step spent waiting for data, peak RSS) come from the last monitored run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_overhead import step_times

from guardrail.callbacks import ResourceMonitor


def run(recipe: str, monitored: bool, steps: int, warmup: int,
        tmp: str) -> tuple[float, dict | None]:
    """(median seconds per step, the monitor's summary or None)."""
    monitor = ResourceMonitor() if monitored else None
    step, _ = step_times(recipe, [monitor] if monitor else [], steps, warmup, tmp)
    return step, monitor.summary() if monitor else None


def main() -> None:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["wea", "est"])
    parser.add_argument("--pairs", type=int, default=7, help="interleaved repetitions")
    parser.add_argument("--steps", type=int, default=150, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    print("| recipe | monitored / plain (median of ratios) | plain s/step | samples/s "
          "| data wait share | peak RSS |")
    print("|---|---|---|---|---|---|")
    for recipe in args.recipes:
        ratios, plain_steps, summary = [], [], None
        for _ in range(args.pairs):
            with tempfile.TemporaryDirectory() as tmp:
                plain, _ = run(recipe, False, args.steps, args.warmup, tmp)
                step, summary = run(recipe, True, args.steps, args.warmup, tmp)
            ratios.append(step / plain)
            plain_steps.append(plain)
        assert summary is not None
        print(f"| {recipe} | {statistics.median(ratios):.3f}x "
              f"| {statistics.median(plain_steps) * 1e3:.2f} ms "
              f"| {summary['samples_per_s']:.0f} | {summary['data_wait_fraction']:.1%} "
              f"| {summary['host_rss_peak_mb']:.0f} MiB |", flush=True)


if __name__ == "__main__":
    main()
