"""k-anonymity and l-diversity against pyCANON; the RET table's risk and its remedy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from guardrail.privacy.anonymity import (
    anonymity_findings,
    generalisations,
    k_anonymity,
    l_diversity,
    risk_summary,
    unique_combinations,
)
from guardrail.recipes.ret.data import REGIONS, RetentionDataModule

QUASI = ["gender", "age_band", "city"]


@pytest.fixture(scope="module")
def ret_rows():
    """RET's synthetic training users, 1,500 of them: small data, where people stand out."""
    dm = RetentionDataModule(source="synthetic", n_users=3000, val_fraction=0.25,
                             test_fraction=0.25)
    dm.setup("fit")
    return [{k: r[k] for k in [*QUASI, "install_weekday"]} for r in dm.records("train")]


def test_ret_table_singles_people_out_and_a_generalisation_reaches_k5(ret_rows):
    summary = risk_summary(ret_rows, QUASI, k=5, hierarchies={"city": REGIONS})
    assert summary["k"] == 1 and summary["unique"] > 0
    finding, = anonymity_findings(summary)
    assert finding.check == "privacy.k_anonymity" and finding.where == "gender, age_band, city"
    fix = finding.evidence["generalisation"]
    assert fix is not None and fix["k"] >= 5
    assert f"reaches k = {fix['k']}" in finding.hint
    # the fix, applied, does what it says
    options = {tuple(g["changes"]): g["k"] for g in summary["generalisations"]}
    assert options[tuple(fix["changes"])] == fix["k"]


def test_a_k_anonymous_table_stays_silent(ret_rows):
    summary = risk_summary(ret_rows, ["gender"], k=5)
    assert summary["k"] >= 5 and anonymity_findings(summary) == []


def test_a_class_with_one_sensitive_value_fails_l_diversity():
    rows = [{"city": c, "illness": s} for c, s in [("A", "flu"), ("A", "flu"), ("B", "flu"),
                                                     ("B", "cold")]]
    found = anonymity_findings(risk_summary(rows, ["city"], ["illness"], k=2))
    assert [(f.check, f.where) for f in found] == [("privacy.l_diversity", "illness")]
    rows[1]["illness"] = "cold"  # every class now holds two values
    assert anonymity_findings(risk_summary(rows, ["city"], ["illness"], k=2)) == []


def test_unique_combinations_are_the_minimal_ones():
    rows = [{"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 2, "c": 1}, {"a": 1, "b": 2, "c": 1},
            {"a": 2, "b": 1, "c": 1}, {"a": 2, "b": 1, "c": 1}]
    combos = [tuple(c["fields"]) for c in unique_combinations(rows, ["a", "b", "c"], k=2)]
    assert combos == [("a", "b")]  # a alone and b alone leave nobody below 2; (a, b) does


def test_generalisation_chain_ends_k_anonymous():
    rows = [{"age_band": a, "city": c} for a, c in [("18-24", "A"), ("25-34", "A"),
                                                      ("25-34", "B"), ("35-44", "B")] * 2]
    assert k_anonymity(rows, ["age_band", "city"]) == 2
    chain = generalisations(rows, ["age_band", "city"], k=4)[-1]
    assert chain.k >= 4 and chain.changes


@pytest.mark.parametrize("seed", range(6))
def test_k_and_l_agree_with_pycanon(seed, ret_rows):
    """Half random tables (seeds 0-2: many small classes), half RET's (3-5: real shapes)."""
    anonymity = pytest.importorskip("pycanon.anonymity")
    rng = np.random.default_rng(seed)
    if seed < 3:
        n = 200
        frame = pd.DataFrame({"g": rng.choice(["f", "m"], n), "age": rng.integers(1, 6, n),
                              "city": rng.choice(list("ABCDEFG"), n),
                              "s": rng.choice(["x", "y", "z"], n, p=[0.7, 0.2, 0.1])})
        quasi, sensitive = ["g", "age", "city"], ["s"]
    else:
        rows = [ret_rows[i] for i in rng.choice(len(ret_rows), 600, replace=False)]
        frame = pd.DataFrame(rows)
        quasi, sensitive = QUASI[: seed - 2], ["install_weekday"]
    rows = frame.to_dict("records")
    assert k_anonymity(rows, quasi) == anonymity.k_anonymity(frame, quasi)
    assert l_diversity(rows, quasi, sensitive) == anonymity.l_diversity(frame, quasi, sensitive)
