"""Evidence for the feedback-loop detectors: the retraining-loop simulator over many seeds.

Seeds are split before any threshold was looked at: even seeds tune, odd seeds are held out.

    OMP_NUM_THREADS=1 python scripts/feedback_evidence.py est --seeds 10 --out /tmp/fb_est.json
    OMP_NUM_THREADS=1 python scripts/feedback_evidence.py rec --seeds 10 --out /tmp/fb_rec.json
    python scripts/feedback_evidence.py summary /tmp/fb_est.json /tmp/fb_rec.json

The two parts can run side by side on two cores (each loop trains with one thread). ``--keep
DIR`` keeps every loop's run directory (``DIR/<setting>_seed<k>/round_<r>/predictions.jsonl``
...) to look at again; an interrupted collection resumes where it stopped. ``summary``
judges ``feedback.homogenization`` again from each REC loop's stored indicators with the
current thresholds.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_module

from guardrail.checks.feedback import homogenization_findings
from guardrail.loop import run

EST_ANCHORING = (0.0, 0.3, 0.6)
REC_POLICIES = (("model", 0.0), ("random", 0.0), ("mixed", 0.5))


def loop(overrides: list[str], keep: Path | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp, initialize_config_module(
            "guardrail.configs", version_base="1.3"):
        cfg = compose("loop/loop", overrides=[*overrides, "threads=1",
                                              f"paths.output_dir={keep or tmp}"])
        return run(cfg)


def collect(part: str, seeds: int, out: Path, policies: list[str] | None,
            keep: Path | None) -> None:
    results = json.loads(out.read_text()) if out.exists() else []
    done = {(r["setting"], r["seed"]) for r in results}
    settings = ([(f"A={a}", ["recipe=est", f"loop.anchoring={a}"]) for a in EST_ANCHORING]
                if part == "est" else
                [(f"{p}:{e}", ["recipe=rec", f"loop.policy={p}", f"loop.explore={e}"])
                 for p, e in REC_POLICIES if not policies or p in policies])
    for seed in range(seeds):
        for name, overrides in settings:
            if (name, seed) in done:
                continue
            start = time.process_time()
            folder = name.replace("=", "").replace(":", "_") + f"_seed{seed}"
            r = loop([*overrides, f"seed={seed}"], keep / folder if keep else None)
            results.append({"setting": name, "seed": seed, "rounds": r["rounds"],
                            "summary": {k: v for k, v in r["summary"].items()
                                        if k in ("anchoring", "exposure")},
                            "checks": sorted({f["check"] for f in r["findings"]}),
                            "cpu_s": round(time.process_time() - start, 1),
                            "wall_s": r["wall_s"]})
            out.write_text(json.dumps(results, indent=1))
            print(name, seed, results[-1]["checks"], results[-1]["cpu_s"], flush=True)


def rejudge(result: dict) -> dict:
    """``feedback.homogenization`` judged again from the loop's stored spread indicators with
    the current default thresholds (the rule is a pure function of them), so that a threshold
    tuned after a collection needs no new simulation."""
    if not result["rounds"] or not all(name in result["rounds"][0]
                                       for name in ("coverage", "training_equality")):
        return result
    checks = set(result["checks"]) - {"feedback.homogenization"}
    if homogenization_findings(result["rounds"]):
        checks.add("feedback.homogenization")
    return {**result, "checks": sorted(checks)}


def summary(paths: list[Path]) -> None:
    results = [rejudge(r) for p in paths for r in json.loads(p.read_text())]
    for half, parity in (("tuning (even seeds)", 0), ("held out (odd seeds)", 1)):
        print(f"\n## {half}")
        for setting in sorted({r["setting"] for r in results}):
            rs = [r for r in results if r["setting"] == setting and r["seed"] % 2 == parity]
            counts = {c: sum(c in r["checks"] for r in rs)
                      for c in ("feedback.anchoring", "feedback.homogenization",
                                "feedback.self_evaluation")}
            line = f"{setting}: {len(rs)} seeds; fired " + ", ".join(
                f"{c} {n}/{len(rs)}" for c, n in counts.items())
            est = [r["summary"]["anchoring"] for r in rs
                   if isinstance(r["summary"].get("anchoring"), dict)]
            if est and setting.startswith("A="):
                a = float(setting[2:])
                e = np.array([x["estimate"] for x in est])
                line += (f"; A estimate mean {e.mean():.3f}, range {e.min():.3f}..{e.max():.3f}, "
                         f"within ±0.1 of {a}: {int((abs(e - a) <= 0.1).sum())}/{len(e)}")
            print(line)
    print("\n## all seeds, per round (means)")
    for setting in sorted({r["setting"] for r in results}):
        rs = [r for r in results if r["setting"] == setting]
        keys = [k for k in rs[0]["rounds"][0] if k not in ("round", "period")
                and isinstance(rs[0]["rounds"][0][k], int | float)]
        print(f"{setting} ({len(rs)} seeds, CPU s per loop: mean "
              f"{np.mean([r['cpu_s'] for r in rs]):.0f}, max {max(r['cpu_s'] for r in rs):.0f})")
        for k in keys:
            series = np.array([[x[k] for x in r["rounds"]] for r in rs], dtype=float)
            print(f"  {k}: " + " ".join(f"{v:.4g}" for v in series.mean(0)))


def main() -> None:
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("guardrail.loop").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("est", "rec", "summary"))
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--policies", nargs="*")
    parser.add_argument("--keep", type=Path, help="keep each loop's run directory here")
    args = parser.parse_args()
    if args.part == "summary":
        summary(args.paths)
    else:
        collect(args.part, args.seeds, args.out, args.policies, args.keep)


if __name__ == "__main__":
    main()
