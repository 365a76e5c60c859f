"""Plot catalogue coverage per round of the REC loop under each policy (docs/feedback_coverage.png).

    python scripts/feedback_evidence.py rec --seeds 10 --out /tmp/fb_rec.json
    python scripts/plot_feedback_coverage.py /tmp/fb_rec.json --out docs/feedback_coverage.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

LABELS = {"model": "policy=model (its own top-20)", "random": "policy=random",
          "mixed": "policy=mixed, explore={e}"}
COLOURS = {"model": "#c0392b", "random": "#2c7fb8", "mixed": "#e69f00"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/feedback_coverage.png"))
    args = parser.parse_args()
    results = [r for p in args.paths for r in json.loads(p.read_text())]
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6), constrained_layout=True)
    for key, ax, title in (("coverage", axes[0], "catalogue coverage of recommendations"),
                           ("training_equality", axes[1],
                            "1 - Gini of training interactions")):
        for setting in sorted({r["setting"] for r in results}):
            policy, _, explore = setting.partition(":")
            runs = np.array([[x[key] for x in r["rounds"]] for r in results
                             if r["setting"] == setting])
            rounds = np.arange(1, runs.shape[1] + 1)
            for run in runs:
                ax.plot(rounds, run, color=COLOURS[policy], alpha=0.2, lw=0.8)
            ax.plot(rounds, runs.mean(0), color=COLOURS[policy], lw=2, marker="o",
                    label=f"{LABELS[policy].format(e=explore)} ({len(runs)} seeds)")
        ax.set(title=title, xlabel="round (deploy, users rate, retrain)", xticks=rounds)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("REC retraining loop on MovieLens: what the model shows narrows what it learns",
                 fontsize=10)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(args.out)


if __name__ == "__main__":
    main()
