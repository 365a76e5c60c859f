"""A recipe's default run alone, and beside one other CPU-bound training process.

Usage:
    python scripts/bench_contention.py --recipe wea --settle 60

Runs ``python -m guardrail.train recipe=RECIPE`` (a) alone, (b) beside a competitor, a plain
PyTorch training loop with torch's default threads, started ``--settle`` seconds earlier so
that the load average has seen it, with ``threads=auto`` (the app's default), and (c) the same
with ``threads=N`` for N = the machine's cores (what torch does by itself). Prints the wall
times and the ratios to the idle run as a markdown table. ``OMP_NUM_THREADS`` is removed from
the environment of every process, so the app's own thread policy is what is measured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMPETITOR = """
import torch
net = torch.nn.Sequential(torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
opt = torch.optim.SGD(net.parameters(), lr=0.01)
x, y = torch.randn(256, 512), torch.randint(0, 10, (256,))
while True:
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
"""


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}


def timed_run(recipe: str, out: Path, *overrides: str) -> float:
    """Wall seconds of one default run of the app."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "guardrail.train", f"recipe={recipe}",
                    f"hydra.run.dir={out}", *overrides], check=True, env=env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="wea")
    parser.add_argument("--settle", type=float, default=60.0,
                        help="seconds the competitor runs before the measured run starts")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        alone = timed_run(args.recipe, Path(tmp) / "alone")
        rows.append(("alone, threads=auto", alone))
        for label, overrides in (("beside a competitor, threads=auto", ()),
                                 (f"beside a competitor, threads={cores}",
                                  (f"threads={cores}",))):
            competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR], env=env())
            try:
                time.sleep(args.settle)
                rows.append((label, timed_run(args.recipe, Path(tmp) / label.replace(" ", "_")
                                              .replace(",", "").replace("=", ""), *overrides)))
            finally:
                competitor.kill()
                competitor.wait()
    print(f"| {args.recipe} run | wall s | / alone |")
    print("|---|---|---|")
    for label, wall in rows:
        print(f"| {label} | {wall:.1f} | {wall / alone:.2f}x |")


if __name__ == "__main__":
    main()
