"""The personal-data scan: each pattern fires on its data and stays silent on the recipes'."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module
from hydra.utils import instantiate

from guardrail.privacy.pii import pii_findings, redact, scan_records
from guardrail.recipes.ret.generator import support_notes

FIRING = {
    "email": "Please write to anna.berg@example.se about my order",
    "phone": "call me on +46 70 123 45 67 after five",
    "payment_card": "my card is 4111-1111-1111-1111, charge it",
    "iban": "refund to SE45 5000 0000 0583 9825 7466 please",
    "personal_number": "personnummer 811218-9876",
    "ipv4": "logged in from 192.168.10.23 yesterday",
    "ipv6": "from 2001:db8:85a3::8a2e:370:7334",
}
# Text that looks numeric or structured but holds no personal data.
SILENT = [
    "order 4111 1111 1111 1112 arrived",  # 16 digits failing Luhn
    "delivered 2024-03-15 at 14:30, version 1.2.3",  # dates, times and versions
    "SE45 5000 0000 0583 9825 7467",  # an IBAN with wrong check digits
    "the score was 3-1, room 1204, 25 kr",
    "pi is 3.14159265, e is 2.71828",
]


@pytest.mark.parametrize("pattern", sorted(FIRING))
def test_each_pattern_fires_on_its_data_naming_the_field(pattern):
    records = [{"id": i, "comment": "all fine"} for i in range(9)]
    records.append({"id": 9, "comment": FIRING[pattern]})
    scan = scan_records(records)
    assert [(m.field, m.pattern, m.records) for m in scan.matches] == [("comment", pattern, 1)]
    finding, = pii_findings(scan)
    assert finding.check == "privacy.pii" and finding.severity == "error"
    assert finding.where == "comment" and finding.evidence["share"] == pytest.approx(0.1)
    raw = FIRING[pattern].split()[-1]
    assert raw not in finding.message and raw not in str(finding.evidence)


@pytest.mark.parametrize("text", SILENT)
def test_look_alikes_stay_silent(text):
    assert scan_records([{"comment": text}]).matches == []


def test_nested_fields_and_declared_identifiers():
    records = [{"user": "u1", "events": [{"note": "mail x.y@z.org"}, {"note": "ok"}]},
               {"user": "u2", "events": [{"note": "ok"}]}]
    scan = scan_records(records)
    assert [(m.field, m.records) for m in scan.matches] == [("events[].note", 1)]
    assert [f.where for f in pii_findings(scan)] == ["events[].note"]
    assert pii_findings(scan, direct_identifiers=["events"]) == []  # the root field declared


def test_redaction_keeps_shape_not_content():
    assert redact("jane.doe@example.com") == "j*******@e******.com"
    assert "4111" not in redact("4111 1111 1111 1111")[1:]


def test_ret_support_notes_are_found():
    notes = support_notes(2000, seed=3)
    scan = scan_records([{"user": i, "note": n} for i, n in enumerate(notes)])
    found = {m.pattern: m.records for m in scan.matches}
    assert set(found) == {"email", "phone"} and all(m.field == "note" for m in scan.matches)
    assert 40 <= found["email"] <= 70  # ~2.5% of notes hold an address, ~2.5% a phone number


RECIPES = ["est", "oil", "ret", "wea", "ccf", "bot", "rec"]


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipes_training_records_are_clean(recipe):
    """No false alarm on real data: ids, codes, dates and numbers of all seven recipes."""
    with initialize_config_module("guardrail.configs", version_base="1.3"):
        cfg = compose("train", overrides=[f"recipe={recipe}"])
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    records = datamodule.records("train")
    scan = scan_records(records, max_records=5000)
    assert scan.scanned == min(len(records), 5000)
    assert pii_findings(scan, cfg.privacy.direct_identifiers) == [], scan.matches
