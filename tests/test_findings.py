import json

import pytest

from guardrail import Finding, GuardrailError, Severity
from guardrail.findings import count_findings


def test_finding_round_trips_through_json():
    f = Finding("probe.dead_units", "warning", "Half the units are dead.", where="net.0",
                evidence={"fraction": 0.5}, hint="Lower the learning rate.", step=3, epoch=0)
    assert Finding.from_dict(json.loads(json.dumps(f.to_dict()))) == f
    assert f.severity is Severity.WARNING


def test_unknown_severity_is_refused():
    with pytest.raises(ValueError, match="'fatal' is not a valid Severity"):
        Finding("x.y", "fatal", "bad")


def test_counts_have_every_severity():
    counts = count_findings([Finding("a", "error", "m"), Finding("a", "error", "n")])
    assert counts == {"by_severity": {"error": 2, "warning": 0, "info": 0}, "by_check": {"a": 2}}


def test_guardrail_error_names_check_where_and_hint():
    err = GuardrailError.from_finding(
        Finding("config.lock", "error", "A key changed.", where="data.shuffle", hint="Approve it."))
    assert "[config.lock] at data.shuffle" in str(err) and "Hint: Approve it." in str(err)
