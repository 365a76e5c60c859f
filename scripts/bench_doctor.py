"""How long ``guardrail doctor`` takes on a recipe, with the model load apart.

Usage:
    OMP_NUM_THREADS=1 python scripts/bench_doctor.py RUN_DIR [RUN_DIR ...] --repeat 3
    OMP_NUM_THREADS=1 python scripts/bench_doctor.py --recipe est

Each RUN_DIR must be exported (``guardrail export RUN_DIR``). Without one, ``--recipe`` trains
a two-epoch run of that recipe and exports it first (half a minute on two cores for EST).
For every run: the wall time of ``guardrail doctor RUN_DIR`` in a fresh process (what a cron
job pays, imports included), and the median in-process breakdown of ``doctor_run``: the model
load (exported program + checkpoint module rebuilt from the config) and the rest (environment,
replays, the replay spread). The issue's target is the rest under 10 s. ``--limit S`` exits
with status 1 when the rest takes longer than S seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOAD = ("load_export", "load_checkpoint")


def make_run(recipe: str, folder: Path) -> Path:
    """A two-epoch run of ``recipe``, exported."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    run_dir = folder / recipe
    subprocess.run([sys.executable, "-m", "guardrail.train", f"recipe={recipe}",
                    "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
                    "guardrails.callbacks.config_lock.mode=off", f"hydra.run.dir={run_dir}"],
                   check=True, capture_output=True, env=env)
    subprocess.run([sys.executable, "-m", "guardrail", "export", str(run_dir)], check=True,
                   capture_output=True, env=env)
    return run_dir


def bench(run_dir: Path, repeat: int) -> dict[str, float]:
    """Fresh-process wall time and the median in-process load / rest split, in seconds."""
    from guardrail.doctor import doctor_run

    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "guardrail", "doctor", str(run_dir)],
                   capture_output=True, check=False)
    cold = time.perf_counter() - start
    loads, rests, totals = [], [], []
    for _ in range(repeat):
        result = doctor_run(run_dir)
        load = sum(result.timings.get(k, 0.0) for k in LOAD)
        loads.append(load)
        rests.append(result.timings["total"] - load)
        totals.append(result.timings["total"])
    return {"cold_process": cold, "load": statistics.median(loads),
            "rest": statistics.median(rests), "total": statistics.median(totals),
            "verdict": result.verdict}  # type: ignore[dict-item]


def main() -> int:
    """Bench the runs given (or one trained now) and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, help="exported run directories")
    parser.add_argument("--recipe", default="est", help="recipe to train when no run is given")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=float, default=None,
                        help="exit 1 when the part beyond the model load exceeds this (s)")
    args = parser.parse_args()
    runs = args.runs or [make_run(args.recipe, Path(tempfile.mkdtemp()))]
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}, "
          f"{os.cpu_count()} CPUs, median of {args.repeat}\n")
    print("| run | fresh process (s) | in-process total (s) | model load (s) | rest (s) "
          "| verdict |")
    print("|---|---|---|---|---|---|")
    worst = 0.0
    for run_dir in runs:
        r = bench(run_dir, args.repeat)
        worst = max(worst, r["rest"])
        print(f"| {run_dir} | {r['cold_process']:.2f} | {r['total']:.2f} | {r['load']:.2f} | "
              f"{r['rest']:.2f} | {r['verdict']} |")
    return 1 if args.limit is not None and worst > args.limit else 0


if __name__ == "__main__":
    sys.exit(main())
