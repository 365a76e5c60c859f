"""How fast the ``guardrail`` command answers: wall and CPU time of each subcommand.

Usage:
    OMP_NUM_THREADS=1 python scripts/bench_cli.py
    OMP_NUM_THREADS=1 python scripts/bench_cli.py --runs RUN_A RUN_B --repeat 5

Times ``guardrail --help``, ``guardrail ls``, ``guardrail report RUN_A`` and
``guardrail diff RUN_A RUN_B``, each run ``--repeat`` times in a fresh process (what a user
pays), and prints a markdown table of the medians. Without ``--runs`` it makes the two run
directories first: a recipe from ``guardrail new`` in a temporary folder, trained for one epoch
twice, the second with another learning rate (about half a minute each on two cores).
``--limit S`` exits with status 1 when ``--help`` or ``ls`` takes longer than S seconds.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GUARDRAIL = [sys.executable, "-m", "guardrail"]


def make_runs(folder: Path) -> tuple[str, str]:
    """Two finished run directories of a fresh recipe that differ only in ``module.lr``."""
    subprocess.run([*GUARDRAIL, "new", "benchproj"], cwd=folder, check=True,
                   stdout=subprocess.DEVNULL)
    runs = []
    for name, lr in (("a", 0.003), ("b", 0.001)):
        run_dir = folder / "runs" / name
        done = subprocess.run(
            [sys.executable, "-m", "guardrail.train", "recipe=benchproj", "trainer.max_epochs=1",
             f"module.lr={lr}", f"hydra.run.dir={run_dir}"],
            cwd=folder, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"training the benchmark's run {name} failed:\n{done.stderr[-3000:]}")
        runs.append(str(run_dir))
    return runs[0], runs[1]


def timed(argv: list[str], cwd: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the child, exit status) of one call."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def main() -> None:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs=2, metavar=("RUN_A", "RUN_B"),
                        help="two run directories (default: train two tiny ones)")
    parser.add_argument("--repeat", type=int, default=5, help="calls per command")
    parser.add_argument("--limit", type=float, default=None,
                        help="exit 1 when --help or ls has a median above this (seconds)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_cli_"))
    try:
        run_a, run_b = args.runs or make_runs(tmp)
        commands = {
            "guardrail --help": ["--help"],
            "guardrail ls": ["ls"],
            "guardrail report RUN_A": ["report", run_a],
            "guardrail diff RUN_A RUN_B": ["diff", run_a, run_b],
        }
        rows = []
        for label, argv in commands.items():
            calls = [timed([*GUARDRAIL, *argv], tmp) for _ in range(args.repeat)]
            statuses = sorted({c[2] for c in calls})
            rows.append((label, statistics.median(c[0] for c in calls),
                         min(c[0] for c in calls), statistics.median(c[1] for c in calls),
                         statuses))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"`guardrail` subcommands, {args.repeat} calls each in a fresh process, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}\n")
    print("| command | median wall (s) | fastest (s) | median CPU (s) | exit status |")
    print("|---|---:|---:|---:|---|")
    for label, wall, fastest, cpu, statuses in rows:
        print(f"| `{label}` | {wall:.2f} | {fastest:.2f} | {cpu:.2f} | "
              f"{', '.join(map(str, statuses))} |")
    if args.limit is not None:
        slow = [r[0] for r in rows[:2] if r[1] > args.limit]
        if slow:
            print(f"\nslower than {args.limit} s: {', '.join(slow)}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
