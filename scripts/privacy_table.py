"""RET's privacy-utility table: test AUROC and the membership audit, with and without DP.

Usage:
    OMP_NUM_THREADS=2 python scripts/privacy_table.py [--out DIR] [--rows NAME ...]

Each row is one `python -m guardrail.train recipe=ret privacy=audit ...` run (the app's own
audit: the loss attack and LiRA with `privacy.references` reference models, trained as the
target was, DP included). The rows: the synthetic source with its quasi-identifiers (gender,
age band, city) and without them, then DP-SGD at epsilon 1, 4 and 8 (delta = 1/n); CDNOW
without and with DP; and the overfitting configuration (3,000 users, 150 epochs, no
regularisation) without DP and at epsilon 1. Prints a markdown table: test AUROC, epsilon
spent, the stronger attack's TPR at 1% FPR with its 90% interval, whether
`privacy.membership_risk` fired, and the run's wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SYNTHETIC = ["data.source=synthetic"]
OVERFIT = ["data.source=synthetic", "data.n_users=3000", "data.val_fraction=0.25",
           "data.test_fraction=0.25", "data.batch_size=64", "model.hidden=128",
           "model.dropout=0", "module.weight_decay=0", "module.lr=0.003",
           "trainer.max_epochs=150", "ckpt_path=null"]
DP = ["privacy.dp=true", "privacy.dp_fix_layers=true"]
ROWS: dict[str, list[str]] = {
    "synthetic, quasi-identifiers": SYNTHETIC,
    "synthetic, no quasi-identifiers": [*SYNTHETIC, "data.quasi_identifiers=false"],
    **{f"synthetic, DP eps={e}": [*SYNTHETIC, *DP, f"privacy.target_epsilon={e}"]
       for e in (1, 4, 8)},
    "CDNOW": [],
    **{f"CDNOW, DP eps={e}": [*DP, f"privacy.target_epsilon={e}"] for e in (1, 4, 8)},
    "overfitting": OVERFIT,
    "overfitting, DP eps=1": [*OVERFIT, *DP, "privacy.target_epsilon=1"],
}


def run(name: str, overrides: list[str], out: Path) -> dict[str, object]:
    folder = out / name.replace(", ", "_").replace(" ", "-").replace("=", "")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "guardrail.train", "recipe=ret", "privacy=audit",
         "guardrails.callbacks.config_lock.mode=off", f"hydra.run.dir={folder}", *overrides],
        capture_output=True, text=True, env={**os.environ})
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        return {"row": name, "error": proc.stderr[-500:]}
    report = json.loads((folder / "report.json").read_text())
    privacy = json.loads((folder / "privacy.json").read_text())
    findings = [json.loads(line) for line in (folder / "findings.jsonl").read_text().splitlines()]
    attacks = privacy["audit"]["attacks"]
    best = max(attacks, key=lambda a: attacks[a]["tpr_interval"]["0.01"][0])
    dp = privacy.get("dp") or {}
    return {"row": name, "auroc": report["metrics"]["test"]["auroc"],
            "epsilon": dp.get("epsilon"), "attack": best,
            "tpr": attacks[best]["tpr"]["0.01"], "interval": attacks[best]["tpr_interval"]["0.01"],
            "auc": attacks[best]["auc"],
            "fired": any(f["check"] == "privacy.membership_risk" for f in findings),
            "seconds": seconds, "dir": str(folder)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="privacy-table-"))
    print("| run | test AUROC | ε | attack | TPR at 1% FPR (90%) | attack AUC | "
          "membership_risk | wall |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.rows:
        r = run(name, ROWS[name], out)
        if "error" in r:
            print(f"| {name} | failed: {r['error']!r} |")
            continue
        eps = "-" if r["epsilon"] is None else f"{r['epsilon']:.2f}"
        low, high = r["interval"]
        print(f"| {name} | {r['auroc']:.3f} | {eps} | {r['attack']} | {r['tpr']:.1%} "
              f"({low:.1%}-{high:.1%}) | {r['auc']:.3f} | {'fires' if r['fired'] else '-'} | "
              f"{r['seconds']:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
