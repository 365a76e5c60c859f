"""Drift rules as pure functions: each fires on a shifted window naming the field, and stays
silent on a resample of the reference."""

import random

import numpy as np
import pytest

from guardrail.checks.drift import (
    DriftThresholds,
    WindowAccumulator,
    drift_findings,
    feature_plan,
    ks_p_value,
    performance_findings,
    psi,
    reference_profile,
    thin_window_finding,
)

CONTRACT = {"fields": {
    "area": {"kind": "numeric"}, "rooms": {"kind": "numeric"}, "zone": {"kind": "categorical"},
    "events": {"kind": "sequence", "element": {"kind": "object", "fields": {
        "amount": {"kind": "numeric"}, "type": {"kind": "categorical"}}}},
    "field": {"kind": "grid", "shape": [2, 3, 3]}}}


def record(rng: random.Random) -> dict:
    return {"area": rng.lognormvariate(7, 0.4), "rooms": rng.randint(2, 8),
            "zone": rng.choices("ABCD", weights=[5, 3, 1, 1])[0],
            "events": [{"amount": rng.gauss(10, 2), "type": rng.choice(["buy", "view"])}
                       for _ in range(rng.randint(1, 6))],
            "field": [[[rng.gauss(c, 1) for _ in range(3)] for _ in range(3)] for c in (0, 5)]}


@pytest.fixture(scope="module")
def reference():
    rng = random.Random(0)
    train = [record(rng) for _ in range(3000)]
    plan = feature_plan(CONTRACT)
    preds = [r["area"] / 100 + rng.gauss(0, 1) for r in train]
    return plan, reference_profile(plan, train, preds), train, preds


def judge(reference, records, predictions=None, limits=None, labels=None):
    plan, ref, _, _ = reference
    acc = WindowAccumulator(plan, ref)
    for i in range(0, len(records), 100):  # chunk by chunk, as monitoring streams
        acc.add(records[i:i + 100], None if predictions is None else predictions[i:i + 100],
                None if labels is None else labels[i:i + 100])
    return acc.profile(), drift_findings(ref, acc.profile(), {"index": 0}, limits)


def resample(reference, seed, n=300):
    _, _, train, preds = reference
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(train), n, replace=True)
    return [train[i] for i in idx], [preds[i] for i in idx]


def test_resamples_of_the_reference_raise_nothing(reference):
    for seed in range(20):
        records, preds = resample(reference, seed)
        assert judge(reference, records, preds)[1] == [], seed


@pytest.mark.parametrize("field", ["area", "rooms"])
def test_a_half_sd_shift_of_a_numeric_field_is_named(reference, field):
    records, preds = resample(reference, 1)
    sd = reference[1]["features"][field]["sd"]
    shifted = [{**r, field: r[field] + 0.5 * sd} for r in records]
    found = judge(reference, shifted, preds)[1]
    assert [(f.check, f.where) for f in found] == [("drift.feature", field)]
    ev = found[0].evidence
    assert ev["shift_sd"] == pytest.approx(0.5, abs=0.15) and ev["p_value"] < 1e-3
    assert {"statistic", "value", "threshold", "window", "reference", "current"} <= set(ev)


def test_an_integer_field_shifted_within_its_bins_is_caught_by_ks(reference):
    records, preds = resample(reference, 2)
    shifted = [{**r, "rooms": r["rooms"] + 0.5} for r in records]  # ~0.25 SD, same bins
    found = judge(reference, shifted, preds)[1]
    assert [(f.where, f.evidence["statistic"]) for f in found] == [("rooms", "ks")]


def test_units_changed_upstream_is_an_error(reference):
    records, preds = resample(reference, 3)
    found = judge(reference, [{**r, "area": r["area"] * 100} for r in records], preds)[1]
    assert [(f.check, f.where, f.severity.value) for f in found] == [
        ("drift.feature", "area", "error")]


def test_missing_values_appearing_are_drift(reference):
    records, preds = resample(reference, 4)
    found = judge(reference, [{**r, "area": None} if i % 3 == 0 else r
                              for i, r in enumerate(records)], preds)[1]
    assert [f.where for f in found] == ["area"]
    assert found[0].evidence["reference"]["missing"] == 0
    assert found[0].evidence["current"]["missing"] == pytest.approx(1 / 3, abs=0.01)


def test_a_category_replaced_and_a_category_renamed(reference):
    records, preds = resample(reference, 5)
    replaced = judge(reference, [{**r, "zone": "C"} for r in records], preds)[1]
    assert [(f.check, f.where) for f in replaced] == [("drift.feature", "zone")]
    assert replaced[0].evidence["statistic"] in ("js", "linf")
    renamed = judge(reference, [{**r, "zone": "Z" if r["zone"] == "B" else r["zone"]}
                                for r in records], preds)[1]
    checks = {(f.check, f.where) for f in renamed}
    assert ("skew.unseen_categories", "zone") in checks
    unseen = next(f for f in renamed if f.check == "skew.unseen_categories")
    assert unseen.evidence["values"] == ["Z"] and unseen.evidence["value"] > 0.2


def test_a_few_unseen_values_within_good_turing_expectation_are_silent(reference):
    records, preds = resample(reference, 6)
    few = [{**r, "zone": "Z"} if i < 2 else r for i, r in enumerate(records)]
    assert judge(reference, few, preds)[1] == []


def test_sequences_and_grids_by_their_summaries(reference):
    records, preds = resample(reference, 7)
    longer = [{**r, "events": r["events"] * 3} for r in records]
    found = judge(reference, longer, preds)[1]
    assert [(f.where, f.evidence["summary"]) for f in found] == [("events", "length")]
    hotter = [{**r, "field": [r["field"][0], [[v + 2 for v in row] for row in r["field"][1]]]}
              for r in records]
    found = judge(reference, hotter, preds)[1]
    assert [(f.where, f.evidence["summary"]) for f in found] == [("field", "mean[1]")]
    pooled = [{**r, "events": [{**e, "type": "refund"} for e in r["events"]]} for r in records]
    found = judge(reference, pooled, preds)[1]
    assert {(f.check, f.where) for f in found} == {("drift.feature", "events"),
                                                    ("skew.unseen_categories", "events")}


def test_predictions_drift_alone(reference):
    records, preds = resample(reference, 8)
    found = judge(reference, records, [p + 3 for p in preds])[1]
    assert [(f.check, f.where) for f in found] == [("drift.prediction", "prediction")]


def test_large_windows_do_not_turn_tiny_shifts_into_alarms(reference):
    """The effect size decides: at n = 3000 a 0.05 SD shift is significant, yet not drift."""
    _, _, train, preds = reference
    sd = reference[1]["features"]["area"]["sd"]
    found = judge(reference, [{**r, "area": r["area"] + 0.05 * sd} for r in train], preds)[1]
    assert found == []


def test_thin_windows_are_reported_not_judged(reference):
    records, preds = resample(reference, 9, n=40)
    _, found = judge(reference, [{**r, "area": r["area"] * 100} for r in records], preds)
    assert found == []
    thin = thin_window_finding({"index": 0, "records": 40})
    assert thin.check == "monitor.thin_window" and thin.severity.value == "info"
    assert thin_window_finding({"index": 0, "records": 40},
                               DriftThresholds(min_records=20)) is None


def test_performance_against_the_test_metric():
    expected = {"metric": "rmse", "value": 1.0}
    ok, found = performance_findings(expected, [(0.0, 1.0)] * 60, {"index": 0})
    assert found == [] and ok["value"] == 1.0
    worse, found = performance_findings(expected, [(0.0, 1.5)] * 60, {"index": 0})
    assert [(f.check, f.severity.value) for f in found] == [("drift.performance", "warning")]
    assert worse["worse_by"] == pytest.approx(0.5)
    few, found = performance_findings(expected, [(0.0, 9.0)] * 10, {"index": 0})
    assert found == [] and few == {"labelled": 10}


def test_statistics_behave():
    assert psi([10, 10], [10, 10]) == 0 and psi([10, 10], [19, 1]) > psi([10, 10], [15, 5])
    assert ks_p_value(0.01, 300, 3000) == 1.0 and ks_p_value(0.2, 300, 3000) < 1e-6


def test_window_statistics_match_a_direct_computation(reference):
    """PSI, KS, moments, JS, L-infinity and unseen share of a window, chunked and encoded as
    monitoring does, against the formulas applied to the window's raw values."""
    from scipy.spatial.distance import jensenshannon

    plan, ref, _, _ = reference
    rng = random.Random(7)
    window = [record(rng) for _ in range(400)]
    for i, r in enumerate(window):
        r["area"] *= 1.2
        if i % 9 == 0:
            r["area"] = None
        if i % 13 == 0:
            r["zone"] = ["Z", 5, True, None][i % 4]  # unseen, numbers and booleans, missing
    acc = WindowAccumulator(plan, ref)
    chunk = acc.encode(window[:250])
    for start, stop in ((0, 7), (7, 180), (180, 250)):  # rows of a chunk, window by window
        acc.add_encoded(chunk, start, stop)
    acc.add(window[250:])
    stats = acc.statistics()
    profile = acc.profile()

    area_ref = ref["features"]["area"]
    x = np.array([np.nan if r["area"] is None else r["area"] for r in window])
    finite = x[np.isfinite(x)]
    bins = np.bincount(np.searchsorted(area_ref["edges"], finite, side="right"),
                       minlength=len(area_ref["edges"]) + 1)
    cur = np.append(bins, np.isnan(x).sum()) + 0.5
    train = np.array([*area_ref["counts"], area_ref["missing"]]) + 0.5
    cur, train = cur / cur.sum(), train / train.sum()
    s = stats[("features", "area")]
    assert s["psi"] == pytest.approx(float(((cur - train) * np.log(cur / train)).sum()))
    window_cdf = [(finite <= g).mean() for g in area_ref["grid"]]
    assert s["ks"] == pytest.approx(max(abs(a - b) for a, b in zip(window_cdf, area_ref["cdf"],
                                                                    strict=True)))
    assert s["shift_sd"] == pytest.approx((finite.mean() - area_ref["mean"]) / area_ref["sd"])
    assert profile["features"]["area"]["sd"] == pytest.approx(finite.std())
    assert profile["features"]["area"]["missing"] == int(np.isnan(x).sum())

    zone_ref = ref["features"]["zone"]
    values = [r["zone"] for r in window]
    names = [*zone_ref["counts"], "<missing>", "<unseen>"]

    def category(v):
        return "<missing>" if v is None else ("true" if v is True else str(v)) \
            if str(v) in zone_ref["counts"] else "<unseen>"

    cur = np.array([sum(category(v) == k for v in values) for k in names], dtype=float)
    train = np.array([*zone_ref["counts"].values(), zone_ref["missing"], 0], dtype=float)
    s = stats[("features", "zone")]
    assert s["js"] == pytest.approx(jensenshannon(train / train.sum(), cur / cur.sum(), base=2))
    assert s["linf"] == pytest.approx(np.abs(cur / cur.sum() - train / train.sum()).max())
    assert s["unseen"]["count"] == sum(v is not None and str(v) not in zone_ref["counts"]
                                       for v in values)
    assert sorted(s["unseen"]["values"]) == ["5", "Z", "true"]
    assert profile["features"]["zone"]["counts"]["true"] == sum(v is True for v in values)

    events = profile["features"]["events:type"]  # pooled over every record's events
    assert events["n"] == sum(len(r["events"]) for r in window)


def test_a_contract_of_numeric_fields_only_is_judged():
    """No categorical field at all (a user's all-numeric table): numeric statistics alone."""
    contract = {"fields": {"x0": {"kind": "numeric"}, "x1": {"kind": "numeric"}}}
    rng = np.random.default_rng(0)
    train = [{"x0": float(a), "x1": float(b)} for a, b in rng.normal(size=(2000, 2))]
    plan = feature_plan(contract)
    ref = reference_profile(plan, train, [r["x0"] for r in train])
    healthy, shifted = WindowAccumulator(plan, ref), WindowAccumulator(plan, ref)
    healthy.add(train[:300], [r["x0"] for r in train[:300]])
    moved = [{"x0": r["x0"] + 1.0, "x1": r["x1"]} for r in train[300:600]]
    shifted.add(moved, [r["x0"] for r in moved])
    assert not [f for f in drift_findings(ref, healthy.profile(), {"index": 0})
                if f.check == "drift.feature"]
    found = drift_findings(ref, shifted.profile(), {"index": 0})
    assert ("drift.feature", "x0") in [(f.check, f.where) for f in found]
    assert set(shifted.statistics()) >= {("features", "x0"), ("features", "x1")}
