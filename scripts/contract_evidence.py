"""Evidence for the data contract's thresholds, and the speed of checking records.

Builds raw records from the EST (Ames) and CCF (Lending Club) frames, infers the contract on
the training rows, and counts the records with at least one warning on the validation split
(the half the margin was tuned on) and on the test split (held out), per problem kind and per
``range_margin``; then the CCF hand-over story: test records with every monetary amount sent in
cents (x100). Last, the time of ``check_records`` on 1 and 64 CCF records.

Usage:
    OMP_NUM_THREADS=1 python scripts/contract_evidence.py [--margins 0,0.5,1] [--calls 2000] \
        [--out figures.json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections import Counter

import numpy as np
import pandas as pd

from guardrail.checks.contract import ContractThresholds, check_records, compile_contract
from guardrail.contract import infer_contract

MONEY = ("funded_amnt", "annual_inc", "total_bal_il", "total_il_high_credit_limit",
         "delinq_amnt")


def to_records(frame: pd.DataFrame) -> list[dict]:
    """JSON-like records: native Python values, NaN as null (what a client would send)."""
    out = []
    for row in frame.to_dict("records"):
        out.append({k: (None if isinstance(v, float) and math.isnan(v) else
                        v.item() if isinstance(v, np.generic) else v) for k, v in row.items()})
    return out


def est_splits() -> dict[str, list[dict]]:
    from guardrail.recipes.est.sources import TARGET, load_ames

    frame = load_ames()
    month = frame["Year_Sold"] * 12 + frame["Mo_Sold"] - 1
    features = frame.drop(columns=[TARGET, "Year_Sold", "Mo_Sold", "First_Flr_SF",
                                   "Second_Flr_SF"])
    cut_val, cut_test = 2009 * 12 + 6, 2010 * 12  # July 2009, January 2010
    return {"train": to_records(features[month < cut_val]),
            "val": to_records(features[(month >= cut_val) & (month < cut_test)]),
            "test": to_records(features[month >= cut_test])}


def ccf_splits() -> dict[str, list[dict]]:
    from guardrail.recipes.ccf.sources import ORDER, TARGET, load_lending_club

    frame = load_lending_club().sort_values(ORDER)
    features = frame.drop(columns=[TARGET, ORDER])
    n = len(frame)
    a, b = int(0.70 * n), int(0.85 * n)
    return {"train": to_records(features.iloc[:a]), "val": to_records(features.iloc[a:b]),
            "test": to_records(features.iloc[b:])}


def warned(contract: dict, records: list[dict], margin: float) -> dict[str, object]:
    problems = check_records(contract, records, thresholds=ContractThresholds(
        range_margin=margin))
    errors = [p for p in problems if p.severity == "error"]
    by_kind: dict[str, set[int]] = {}
    fields: Counter = Counter()
    for p in problems:
        by_kind.setdefault(p.kind, set()).add(p.record)
        fields[(p.kind, p.field)] += 1
    records_warned = {p.record for p in problems if p.severity == "warning"}
    n = len(records)
    return {"records": n, "errors": len(errors),
            "any_warning": len(records_warned) / n,
            **{k: len(v) / n for k, v in sorted(by_kind.items())},
            "fields": {f"{k}:{f}": c for (k, f), c in fields.most_common(6)}}


def cents(records: list[dict]) -> list[dict]:
    return [{k: v * 100 if k in MONEY and v is not None else v for k, v in r.items()}
            for r in records]


def timing(contract: dict, records: list[dict], size: int, calls: int) -> float:
    """Median microseconds of one check_records call on ``size`` records."""
    compile_contract(contract)
    batch = records[:size]
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        check_records(contract, batch)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--margins", default="0,0.25,0.5,1,1.5,2")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--out", help="also write the figures to this JSON file")
    args = parser.parse_args()
    margins = [float(m) for m in args.margins.split(",")]
    result: dict[str, object] = {}
    for name, splits in (("est", est_splits()), ("ccf", ccf_splits())):
        t0 = time.perf_counter()
        contract = infer_contract(splits["train"])
        infer_s = time.perf_counter() - t0
        size = len(json.dumps(contract))
        print(f"\n{name}: train {len(splits['train'])}, val {len(splits['val'])}, test "
              f"{len(splits['test'])} records, {len(contract['fields'])} fields; inferred in "
              f"{infer_s:.2f} s, contract.json {size / 1024:.0f} KiB")
        for margin in margins:
            for split in ("val", "test"):
                row = warned(contract, splits[split], margin)
                result[f"{name}/{split}/margin={margin:g}"] = row
                print(f"  margin {margin:<4g} {split:<4} {json.dumps(row)}")
            if name == "ccf":
                row = warned(contract, cents(splits["test"]), margin)
                result[f"ccf/test_cents/margin={margin:g}"] = row
                per_field = {f: sum(1 for p in check_records(
                    contract, cents(splits["test"]), thresholds=ContractThresholds(
                        range_margin=margin)) if p.field == f and p.kind == "out_of_range")
                    / len(splits["test"]) for f in MONEY}
                print(f"  margin {margin:<4g} cents {json.dumps(row)}\n"
                      f"              cents out_of_range per field: {json.dumps(per_field)}")
        for size in (1, 64):
            us = timing(contract, splits["test"], size, args.calls)
            result[f"{name}/check_us/{size}"] = us
            print(f"  check_records on {size} record(s): median {us:.1f} us "
                  f"({us / size:.1f} us per record, {len(contract['fields'])} fields)")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
