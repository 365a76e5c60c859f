"""Fault-injection benchmark of guardrail's training-bug detectors: generalisation, not memory.

Usage:
    OMP_NUM_THREADS=1 python scripts/fault_suite.py                    # both halves, 3 seeds
    OMP_NUM_THREADS=1 python scripts/fault_suite.py --half tuning      # tune on this half only
    OMP_NUM_THREADS=1 python scripts/fault_suite.py --quick --plain    # 1 seed, plain modules
    OMP_NUM_THREADS=1 python scripts/fault_suite.py --seeds 5 --json suite.json
    OMP_NUM_THREADS=1 python scripts/fault_suite.py --quick --cases log_of_relu healthy_gru

Every case (``scripts/faults/``) is a small model trained on CPU on learnable synthetic data
with the detectors attached at their default thresholds (ArchitectureCheck, DataProbe,
LossProbe, and ActivationProbe and GradientProbe sampling every 5 steps; healthy models also
get AttributionReport, whose findings on them are false alarms too). A *fault* case injects
one realistic bug and names the check that should report it and, where the bug has a place,
the expected ``where``; a *healthy* case is an ordinary model that should stay quiet. Half of
the cases are written as users write plain ``LightningModule``s (``faults/plain.py``: the loss
in ``training_step``, no ``example_input_array``, no declared task; manual optimisation, dict
batches, Lightning's demo models, a ResNet block, a token Transformer, a GRU seq2seq); the
rest subclass ``GuardrailModule`` (``faults/declared.py``).

The split: a case is in the **held-out** half when the SHA-256 of its name is odd, else in
the **tuning** half; the rule was fixed before any threshold was tuned, and thresholds are
tuned on the tuning half only (``--half tuning``). Both halves are reported: a gap between
them means the detectors are fitted to the suite.

Measured, per family and half: recall (share of fault runs, case x seed, with a finding of
the expected check id); localisation (among detected runs of faults with a place, the share
where such a finding has the expected ``where``); and false alarms (every error- and
warning-level finding on healthy runs, by check; info does not count). The issue's targets
are printed with whether each is met. ``--json`` also keeps every run's alarms and loss
curves. Exit status 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import sys
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from faults import CASES, Case

from guardrail import Finding, collect_findings
from guardrail import callbacks as cb

EPOCHS, EVERY = 8, 5  # 8 steps per epoch by default; activation/gradient probes every 5th
HALVES = ("tuning", "held_out")
# Faults whose detection does not depend on the seed's luck.
DETERMINISTIC = ("nonfinite", "not_updated", "unnormalized", "leakage", "initial_loss",
                 "resolution_loss", "not_zeroed", "double_softmax")


def half(name: str) -> str:
    """The fixed split: ``held_out`` when the SHA-256 of the case name is odd.

    Example:
        >>> half("log_of_relu"), half("healthy_gru")
        ('held_out', 'tuning')
    """
    return HALVES[int(hashlib.sha256(name.encode()).hexdigest(), 16) % 2]


# ------------------------------------------------------------------------- runs and table
@dataclasses.dataclass
class Result:
    case: Case
    seed: int
    findings: list[Finding]
    curves: dict[str, list[float]]  # epoch losses: train, val
    crash: str | None = None

    @property
    def half(self) -> str:
        return half(self.case.name)

    @property
    def detected(self) -> bool:
        return any(f.check == self.case.check for f in self.findings)

    @property
    def localised(self) -> bool:
        return any(f.check == self.case.check and f.where == self.case.where
                   for f in self.findings)

    @property
    def alarms(self) -> list[Finding]:
        return [f for f in self.findings if f.severity.value != "info"]


def run_case(case: Case, seed: int) -> Result:
    """Train ``case`` with every probe attached; a probe that crashes training is recorded."""
    pl.seed_everything(seed, verbose=False)
    run, loss = case.build(seed), cb.LossProbe()
    probes = [cb.ArchitectureCheck(), cb.DataProbe(), loss, cb.ActivationProbe(every_n_steps=EVERY),
              cb.GradientProbe(every_n_steps=EVERY)]
    if case.family is None:
        probes.append(cb.AttributionReport(stage="fit", dirpath=None))
    trainer = pl.Trainer(**{
        "accelerator": "cpu", "max_epochs": EPOCHS, "logger": False,
        "enable_progress_bar": False, "enable_model_summary": False,
        "enable_checkpointing": False, "num_sanity_val_steps": 0, "callbacks": probes,
        "default_root_dir": "/tmp/guardrail-fault-suite", **run.trainer})
    crash = None
    try:
        trainer.fit(run.module, run.train, run.val)
    except Exception as err:
        crash = f"{type(err).__name__}: {err}"
    return Result(case, seed, collect_findings(trainer, gather=False),
                  {"train": loss.train_epochs, "val": loss.val_epochs}, crash)


def _family(rs: list[Result]) -> dict[str, Any]:
    found = [r for r in rs if r.detected]
    placed = [r for r in found if r.case.where is not None]
    hits = sum(r.localised for r in placed)
    return {"faults": len({r.case.name for r in rs}), "runs": len(rs), "detected": len(found),
            "recall": len(found) / len(rs), "located_runs": len(placed), "localised": hits,
            "localisation": hits / len(placed) if placed else None}


def _overall(faults: list[Result]) -> dict[str, Any]:
    placed = [r for r in faults if r.detected and r.case.where is not None]
    return {"faults": len({r.case.name for r in faults}), "runs": len(faults),
            "detected": sum(r.detected for r in faults),
            "recall": sum(r.detected for r in faults) / len(faults) if faults else None,
            "localisation": sum(r.localised for r in placed) / len(placed) if placed else None}


def _healthy(healthy: list[Result]) -> dict[str, Any]:
    alarms = [(r, f) for r in healthy for f in r.alarms]
    severity = Counter(f.severity.value for _, f in alarms)
    return {"models": len({r.case.name for r in healthy}), "runs": len(healthy),
            "errors": severity["error"], "warnings": severity["warning"],
            "checks": dict(Counter(f.check for _, f in alarms)),
            "alarms": [{"case": r.case.name, "half": r.half, "seed": r.seed, "check": f.check,
                        "severity": f.severity.value, "where": f.where, "step": f.step,
                        "message": f.message} for r, f in alarms],
            "crashes": sum(r.crash is not None for r in healthy),
            "not_learning": [f"{r.case.name}/{r.seed}" for r in healthy if not r.crash
                             and r.curves["train"] and
                             not r.curves["train"][-1] < r.curves["train"][0]]}


def summarise(results: Sequence[Result], seeds: Sequence[int], wall_s: float) -> dict[str, Any]:
    """The numbers of the tables, and every run's alarms and curves (the ``--json`` document)."""
    by_family: dict[str, dict[str, list[Result]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        if r.case.family:
            by_family[r.case.family][r.half].append(r)
            by_family[r.case.family]["all"].append(r)
    families = {fam: {"check": rs["all"][0].case.check,
                      **{h: _family(rs[h]) for h in (*HALVES, "all") if rs.get(h)}}
                for fam, rs in sorted(by_family.items())}
    faults = [r for r in results if r.case.family]
    healthy = [r for r in results if not r.case.family]
    overall = {h: _overall([r for r in faults if h == "all" or r.half == h])
               for h in (*HALVES, "all")}
    overall["plain"] = _overall([r for r in faults if r.case.plain])
    overall["declared"] = _overall([r for r in faults if not r.case.plain])
    health = _healthy(healthy)
    held = overall["held_out"]
    targets = {f"recall >= 95% on {fam}": families[fam]["all"]["recall"] >= 0.95
               for fam in DETERMINISTIC if fam in families}
    targets["held-out recall >= 90%"] = held["recall"] is not None and held["recall"] >= 0.9
    loc = overall["all"]["localisation"]
    targets["localisation >= 90% where the fault has a place"] = loc is None or loc >= 0.9
    targets["no error on healthy models"] = health["errors"] == 0
    targets["at most 1 warning on healthy models"] = health["warnings"] <= 1
    targets["no run crashed"] = not any(r.crash for r in results)
    return {
        "seeds": list(seeds), "wall_s": round(wall_s, 1), "families": families,
        "overall": overall, "healthy": health,
        "healthy_by_half": {h: _healthy([r for r in healthy if r.half == h]) for h in HALVES},
        "misses": [{"case": r.case.name, "half": r.half, "arch": r.case.arch, "seed": r.seed,
                    "expected": r.case.check,
                    "found": sorted({f"{f.check}@{f.where}" for f in r.alarms})}
                   for r in faults if not r.detected],
        "wrong_place": [{"case": r.case.name, "half": r.half, "seed": r.seed,
                         "expected": r.case.where,
                         "found": sorted({str(f.where) for f in r.findings
                                          if f.check == r.case.check})}
                        for r in faults if r.detected and r.case.where and not r.localised],
        "crashes": [{"case": r.case.name, "seed": r.seed, "error": r.crash}
                    for r in results if r.crash],
        "targets": targets,
        "runs": [{"case": r.case.name, "half": r.half, "plain": r.case.plain, "seed": r.seed,
                  "family": r.case.family,
                  "alarms": [[f.check, f.severity.value, f.where] for f in r.alarms],
                  **{k: [round(x, 5) for x in v] for k, v in r.curves.items()}}
                 for r in results],
    }


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def _cell(v: dict[str, Any] | None) -> str:
    return "—" if not v else f"{_pct(v['recall'])} ({v['detected']}/{v['runs']})"


def _loc(v: dict[str, Any] | None) -> str:
    if not v or not v["located_runs"]:
        return "n/a"
    return f"{_pct(v['localisation'])} ({v['localised']}/{v['located_runs']})"


def render(s: dict[str, Any]) -> str:
    """The summary as markdown."""
    lines = [f"Seeds {s['seeds']}, wall time {s['wall_s']} s.", "",
             "| family | check | faults | recall, tuning | recall, held-out | localisation |",
             "|---|---|---|---|---|---|"]
    for fam, v in s["families"].items():
        lines.append(f"| {fam} | `{v['check']}` | {v['all']['faults']} | "
                     f"{_cell(v.get('tuning'))} | {_cell(v.get('held_out'))} | "
                     f"{_loc(v['all'])} |")
    o = s["overall"]
    lines.append(f"| **overall** | | {o['all']['faults']} | **{_pct(o['tuning']['recall'])}** "
                 f"({o['tuning']['detected']}/{o['tuning']['runs']}) | "
                 f"**{_pct(o['held_out']['recall'])}** ({o['held_out']['detected']}/"
                 f"{o['held_out']['runs']}) | {_pct(o['all']['localisation'])} |")
    lines += ["", f"Plain LightningModules: {o['plain']['faults']} faults, recall "
              f"{_pct(o['plain']['recall'])}; GuardrailModules: {o['declared']['faults']} "
              f"faults, recall {_pct(o['declared']['recall'])}.", ""]
    lines += ["| healthy | models | runs | errors | warnings | checks that fired |",
              "|---|---|---|---|---|---|"]
    for h, v in (*s["healthy_by_half"].items(), ("all", s["healthy"])):
        lines.append(f"| {h} | {v['models']} | {v['runs']} | {v['errors']} | {v['warnings']} | "
                     f"{v['checks'] or 'none'} |")
    h = s["healthy"]
    lines += [f"- {a['case']} ({a['half']}) seed {a['seed']}: {a['severity']} `{a['check']}` "
              f"at {a['where']} (step {a['step']}): {a['message']}" for a in h["alarms"]]
    lines += [f"Healthy runs whose training loss did not go down: {h['not_learning'] or 'none'}.",
              "", "Misses:" if s["misses"] or s["wrong_place"] else "Misses: none."]
    lines += [f"- {m['case']} ({m['half']}, {m['arch']}) seed {m['seed']}: no "
              f"`{m['expected']}`; found {m['found'] or 'nothing'}" for m in s["misses"]]
    lines += [f"- wrong place: {m['case']} ({m['half']}) seed {m['seed']}: expected "
              f"{m['expected']}, found {m['found']}" for m in s["wrong_place"]]
    lines += [f"- CRASH: {c['case']} seed {c['seed']}: {c['error']}" for c in s["crashes"]]
    lines += ["", "| target | met |", "|---|---|"]
    lines += [f"| {k} | {'yes' if v else '**no**'} |" for k, v in s["targets"].items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    intro, usage = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(description=intro, epilog=usage,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="seeds per case (default 3)")
    parser.add_argument("--quick", action="store_true", help="one seed")
    parser.add_argument("--half", choices=(*HALVES, "all"), default="all",
                        help="run one half only (tune on `tuning`)")
    parser.add_argument("--plain", action="store_true", help="plain LightningModules only")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    parser.add_argument("--cases", nargs="+", metavar="NAME", help="run only these cases")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds {args.seeds}: give at least 1")
    unknown = sorted(set(args.cases or ()) - {c.name for c in CASES})
    if unknown:
        parser.error(f"unknown case(s) {unknown}; known: {', '.join(c.name for c in CASES)}")
    cases = [c for c in CASES if (not args.cases or c.name in args.cases)
             and (args.half == "all" or half(c.name) == args.half)
             and (not args.plain or c.plain)]
    seeds = list(range(1 if args.quick else args.seeds))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = [run_case(case, seed) for case in cases for seed in seeds]
    summary = summarise(results, seeds, time.perf_counter() - start)
    print(render(summary))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(summary, fh, indent=1)
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)  # tiny models: more threads only contend on a shared machine
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    sys.exit(main())
