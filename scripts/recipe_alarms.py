"""Every recipe's default run on several seeds: which warnings and errors do healthy runs get?

Usage:
    python scripts/recipe_alarms.py                        # 7 recipes x seeds 0-2, 2 at a time
    python scripts/recipe_alarms.py --recipes wea ret --seeds 1 --jobs 1
    python scripts/recipe_alarms.py --json alarms.json --out /tmp/recipe-runs

Each run is ``python -m guardrail.train recipe=R seed=S`` in its own run directory, with one
thread per process (``OMP_NUM_THREADS=1``) so that ``--jobs`` runs share the cores evenly.
Printed: one row per run with its wall time, test metric and every warning and error
(check, where, message); then the counts by check. CCF's ``baseline.not_beaten`` is the
recipe's known, true finding (README, CCF). Exit status 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

RECIPES = ("est", "oil", "ret", "wea", "ccf", "bot", "rec")
ROOT = Path(__file__).resolve().parents[1]


def run(recipe: str, seed: int, out: Path) -> dict[str, Any]:
    run_dir = out / f"{recipe}-seed{seed}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "guardrail.train", f"recipe={recipe}", f"seed={seed}",
         f"hydra.run.dir={run_dir}"], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    findings_file = run_dir / "findings.jsonl"
    findings = [json.loads(line) for line in findings_file.read_text().splitlines()] \
        if findings_file.exists() else []
    report_file = run_dir / "report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    return {"recipe": recipe, "seed": seed, "rc": proc.returncode, "wall_s": round(wall, 1),
            "status": report.get("status"), "test": report.get("metrics", {}).get("test", {}),
            "alarms": [{k: f.get(k) for k in ("severity", "check", "where", "message")}
                       for f in findings if f["severity"] in ("warning", "error")],
            "tail": proc.stderr[-2000:] if proc.returncode else ""}


def render(results: list[dict[str, Any]]) -> str:
    lines = ["| recipe | seed | wall s | status | warnings and errors |", "|---|---|---|---|---|"]
    for r in results:
        alarms = "; ".join(f"{a['severity']} `{a['check']}` at {a['where']}: {a['message']}"
                           for a in r["alarms"]) or "none"
        lines.append(f"| {r['recipe']} | {r['seed']} | {r['wall_s']} | {r['status']} | "
                     f"{alarms} |")
    counts = Counter((a["severity"], a["check"]) for r in results for a in r["alarms"])
    lines += ["", "By check: " + (", ".join(f"{s} {c}: {n}" for (s, c), n in
                                            sorted(counts.items())) or "none")]
    lines += [f"FAILED: {r['recipe']} seed {r['seed']} (exit {r['rc']}): {r['tail']}"
              for r in results if r["rc"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    intro, usage = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(description=intro, epilog=usage,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", choices=RECIPES, default=list(RECIPES))
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    parser.add_argument("--out", default="outputs/recipe-alarms", help="parent of run dirs")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    jobs = [(r, s) for s in range(args.seeds) for r in args.recipes]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda job: run(*job, out), jobs))
    results.sort(key=lambda r: (RECIPES.index(r["recipe"]), r["seed"]))
    print(render(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
