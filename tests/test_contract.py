"""The data contract: inference from training records, JSON round trip, the CLI summary."""

from __future__ import annotations

import json
import math

import pytest

from guardrail.checks.contract import check_records
from guardrail.contract import KINDS, QUANTILES, contract_summary, infer_contract
from guardrail.errors import ConfigError, DataError


def loans(n: int = 200) -> list[dict]:
    return [{"amount": 1000.0 + 50 * i, "term": 36 if i % 3 else 60,
             "grade": "ABCD"[i % 4], "verified": i % 2 == 0,
             "income": None if i % 10 == 0 else 30000 + 100 * i,
             "score": math.nan if i == 7 else 0.5 + i / 1000}
            for i in range(n)]


def test_tabular_fields_get_kind_dtype_range_quantiles_and_shares():
    fields = infer_contract(loans())["fields"]
    assert {n: (s["kind"], s["dtype"]) for n, s in fields.items()} == {
        "amount": ("numeric", "float"), "term": ("numeric", "int"),
        "grade": ("categorical", "str"), "verified": ("categorical", "bool"),
        "income": ("numeric", "int"), "score": ("numeric", "float")}
    amount = fields["amount"]
    assert (amount["min"], amount["max"], amount["count"]) == (1000.0, 10950.0, 200)
    assert list(amount["quantiles"]) == [str(q) for q in QUANTILES]
    assert amount["quantiles"]["50"] == pytest.approx(5975.0)
    assert fields["income"]["missing"] == 0.1 and fields["income"]["absent"] == 0.0
    assert fields["income"]["count"] == 180
    assert fields["score"]["non_finite"] == pytest.approx(1 / 200)
    assert math.isfinite(fields["score"]["max"])  # ranges are over finite values only
    assert fields["grade"]["vocabulary"] == [["A", 50], ["B", 50], ["C", 50], ["D", 50]]
    assert fields["verified"]["vocabulary"] == [[False, 100], [True, 100]]
    assert fields["grade"]["capped"] is False and fields["grade"]["distinct"] == 4


def test_ids_are_inferred_from_uniqueness_with_counts_and_capped_vocabularies_say_so():
    records = [{"user": f"u{i % 95}", "city": "AB"[i % 2]} for i in range(100)]
    fields = infer_contract(records)["fields"]
    assert fields["user"]["kind"] == "id" and fields["city"]["kind"] == "categorical"
    assert fields["user"]["distinct"] == 95
    assert fields["user"]["vocabulary"][:2] == [["u0", 2], ["u1", 2]]
    capped = infer_contract(records, max_vocabulary=10)["fields"]["user"]
    assert capped["capped"] is True and len(capped["vocabulary"]) == 10
    assert capped["distinct"] == 95
    few = infer_contract([{"user": f"u{i}"} for i in range(5)])["fields"]["user"]
    assert few["kind"] == "categorical"  # five distinct strings are too few to call ids


def test_declared_kinds_override_inference():
    records = [{"user": i % 30, "zone": i % 4, "x": float(i)} for i in range(60)]
    fields = infer_contract(records, kinds={"user": "id", "zone": "categorical"})["fields"]
    assert (fields["user"]["kind"], fields["user"]["dtype"]) == ("id", "int")
    assert fields["zone"]["vocabulary"] == [[0, 15], [1, 15], [2, 15], [3, 15]]
    assert fields["x"]["kind"] == "numeric"


def test_wrong_declarations_and_unusable_records_are_named():
    with pytest.raises(ConfigError, match=r"Unknown kind.*'x': 'number'.*valid kinds: numeric"):
        infer_contract([{"x": 1}], kinds={"x": "number"})
    with pytest.raises(ConfigError, match=r"declares \['amout'\], which no training record "
                                          r"has; the fields are: amount"):
        infer_contract([{"amount": 1}], kinds={"amout": "numeric"})
    with pytest.raises(ConfigError, match=r"'grade' is declared 'numeric' but holds the "
                                          r"string 'A'"):
        infer_contract([{"grade": "A"}], kinds={"grade": "numeric"})
    with pytest.raises(DataError, match=r"Training record 1 is a list of 2 items, not a JSON"):
        infer_contract([{"x": 1}, [1, 2]])
    with pytest.raises(DataError, match=r"non-empty list of training records"):
        infer_contract([])
    with pytest.raises(DataError, match=r"Field 'x' mixes int and list values"):
        infer_contract([{"x": 1}, {"x": [1]}])


def test_event_logs_are_sequences_of_objects_with_a_recursive_contract():
    records = [{"customer": i, "events": [{"day": d, "type": "login" if d % 2 else "buy",
                                           **({"amount": 9.5} if d % 2 == 0 else {})}
                                          for d in range(1 + i % 5)]} for i in range(50)]
    events = infer_contract(records)["fields"]["events"]
    assert events["kind"] == "sequence"
    assert (events["length"]["min"], events["length"]["max"]) == (1, 5)
    assert events["accepts"] == {"min_length": 1, "max_length": None}
    element = events["element"]
    assert element["kind"] == "object" and list(element["fields"]) == ["day", "type", "amount"]
    assert element["fields"]["type"]["vocabulary"][0][0] in ("login", "buy")
    assert element["fields"]["day"]["max"] == 4
    assert 0 < element["fields"]["amount"]["absent"] < 1  # optional inside each event
    declared = infer_contract(records, lengths={"events": (1, 64)},
                              kinds={"events[].type": "categorical"})["fields"]["events"]
    assert declared["accepts"] == {"min_length": 1, "max_length": 64}


def test_lists_of_scalars_are_sequences_and_fixed_length_ones_accept_only_that_length():
    records = [{"tags": ["a", "b"][: 1 + i % 2], "point": [1.0 * i, 2.0]} for i in range(20)]
    fields = infer_contract(records)["fields"]
    assert fields["tags"]["element"]["kind"] == "categorical"
    assert fields["point"]["kind"] == "sequence"
    assert fields["point"]["accepts"] == {"min_length": 2, "max_length": 2}


def test_a_temperature_field_is_a_grid_with_its_shape_and_range():
    records = [{"t": [[float(i + r + c) for c in range(4)] for r in range(3)]}
               for i in range(10)]
    grid = infer_contract(records)["fields"]["t"]
    assert (grid["kind"], grid["dtype"], grid["shape"]) == ("grid", "float", [3, 4])
    assert (grid["min"], grid["max"]) == (0.0, 14.0)
    ragged_width = [{"t": [[0.0] * (4 + i % 2)] * 3} for i in range(4)]
    assert infer_contract(ragged_width)["fields"]["t"]["shape"] == [3, None]


def test_the_contract_survives_a_json_round_trip_and_checks_the_same():
    records = loans(50)
    for i, r in enumerate(records):
        r["events"] = [{"day": d, "type": "login"} for d in range(1 + i % 3)]
        r["grid"] = [[1.0, 2.0], [3.0, float(i)]]
        r["user"] = f"user{i}"
    contract = infer_contract(records)
    text = json.dumps(contract, allow_nan=False)  # strict JSON: no NaN anywhere
    again = json.loads(text)
    assert again == contract and again["version"] == 1 and again["records"] == 50
    assert set(s["kind"] for s in again["fields"].values()) <= set(KINDS)
    bad = [{"amount": "x", "events": [{"day": "3"}], "grid": [[1.0]], "user": "nobody"}]
    assert check_records(again, bad) == check_records(contract, bad)
    assert len(check_records(contract, bad)) >= 8


def test_summary_has_one_line_per_field():
    text = contract_summary(infer_contract(loans()))
    lines = text.splitlines()
    assert len(lines) == 6
    assert lines[0].startswith("amount    numeric float  [1,000 .. 10,950], median 5,975")
    assert "missing 10%" in next(line for line in lines if line.startswith("income"))
    assert "non-finite 0.5%" in next(line for line in lines if line.startswith("score"))
    assert "4 values: A (50)" in next(line for line in lines if line.startswith("grade"))
    events = [{"events": [{"day": 1}] * (1 + i % 2), "t": [[1.0, 2.0]]} for i in range(5)]
    text = contract_summary(infer_contract(events))
    assert "sequence of objects {day}  length [1 .. 2]" in text
    assert "grid float 1x2  [1 .. 2]" in text


def test_a_declared_grid_may_be_a_vector_or_one_number_per_record():
    records = [{"x0": [float(i), 1.0, 2.0], "x1": float(i)} for i in range(10)]
    fields = infer_contract(records, kinds={"x0": "grid", "x1": "grid"})["fields"]
    assert (fields["x0"]["kind"], fields["x0"]["shape"]) == ("grid", [3])
    assert (fields["x1"]["kind"], fields["x1"]["shape"]) == ("grid", [])
    contract = {"fields": fields}
    assert check_records(contract, records) == []
    assert [(p.field, p.kind) for p in check_records(contract, [
        {"x0": [1.0, 2.0], "x1": "a"}])] == [("x0", "malformed_sequence"), ("x1", "wrong_type")]
    with pytest.raises(ConfigError, match=r"'x' is a grid but holds the string 'a'"):
        infer_contract([{"x": "a"}], kinds={"x": "grid"})


def test_private_fields_keep_counts_but_no_value():
    records = [{"city": "AB"[i % 2], "note": f"mail u{i}@example.org", "events": [
        {"who": f"u{i}"}]} for i in range(40)]
    contract = infer_contract(records, private=["note", "events"])
    note, city = contract["fields"]["note"], contract["fields"]["city"]
    assert note["private"] and note["vocabulary"] == [] and note["distinct"] == 40
    assert contract["fields"]["events"]["element"]["fields"]["who"]["vocabulary"] == []
    assert [v for v, _ in city["vocabulary"]] == ["A", "B"]
    assert "example.org" not in json.dumps(contract)
    new = [{"city": "A", "note": "call me", "events": [{"who": "v1"}]}]
    assert check_records(contract, new) == []  # a new text is no unseen category
