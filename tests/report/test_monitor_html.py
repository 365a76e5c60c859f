"""monitor.html: what ``guardrail monitor`` found, drawn from its plain data.

Fast tests on a small hand-built result (the shape of monitor.json and windows.jsonl), and a
browser test (marked ``browser``; skipped where Chromium is missing): no console messages, no
``?`` placeholder, nothing wider than a 1280-pixel window.
"""

import json
import re

import pytest

from guardrail.report.browser import (
    chromium,
    console_messages,
    page_size,
    render_dom,
    visible_text,
)
from guardrail.report.monitor import (
    aggregate_windows,
    bin_labels,
    render_monitor,
    write_monitor_html,
)

MARKUP = "<script>alert(1)</script>"
PLACEHOLDER = re.compile(r"(?<![\w?])\?(?![\w?])")  # a lone '?', not one ending a question


def numeric(shares, psi=0.01, ks=0.02, n=300):
    return {"kind": "numeric", "field": "area", "summary": None,
            "statistics": {"psi": psi, "ks": ks, "p_value": 0.5, "shift_sd": 0.1},
            "current": {"n": n, "missing": 0, "mean": 1.0, "sd": 1.0, "shares": shares}}


def categorical(shares, unseen=0.0, js=0.05, field="town"):
    return {"kind": "categorical", "field": field, "summary": None,
            "statistics": {"js": js, "linf": 0.05, "p_value": 0.5, "unseen_share": unseen},
            "current": {"n": 300, "missing": 0, "shares": shares, "unseen": unseen}}


def window(index, records, features, findings=()):
    counts = {s: sum(f["severity"] == s for f in findings) for s in ("error", "warning", "info")}
    return {"index": index, "key": None, "start": None, "end": None, "first_id": "1",
            "last_id": str(records), "records": records, "features": features,
            "predictions": {}, "performance": None, "findings": list(findings),
            "findings_counts": counts}


def finding(check, severity, where, index, **evidence):
    return {"check": check, "severity": severity, "message": f"{where} changed in window "
            f"{index}.", "where": where, "hint": "Check the source.",
            "evidence": {"window": {"index": index}, **evidence}, "step": None, "epoch": None}


@pytest.fixture
def result():
    """Three windows: healthy, one where `area` drifted and a category was renamed, a thin one."""
    drift = finding("drift.feature", "warning", "area", 1, feature="area", statistic="psi",
                    value=0.9)
    unseen = finding("skew.unseen_categories", "warning", MARKUP, 1, feature=MARKUP)
    thin = finding("monitor.thin_window", "info", None, 2)
    thin["message"] = "Window 2 has 0 records, fewer than the 100 needed to judge drift."
    windows = [
        window(0, 300, {"area": numeric([0.5, 0.5, 0.0]),
                        MARKUP: categorical({"a&b": 0.6, "<i>c</i>": 0.4})}),
        window(1, 300, {"area": numeric([0.1, 0.9, 0.0], psi=0.9, ks=0.5),
                        MARKUP: categorical({"a&b": 0.0, "<i>c</i>": 0.4}, unseen=0.6,
                                            js=0.5)}, [drift, unseen]),
        window(2, 0, {"area": numeric([0.0, 0.0, 0.0], n=0),
                      MARKUP: categorical({"a&b": 0.0, "<i>c</i>": 0.0})}, [thin]),
    ]
    headlines = []
    for w in windows:
        counts = w.pop("findings_counts")
        headlines.append({k: w[k] for k in ("index", "key", "start", "end", "first_id",
                                            "last_id", "records", "performance")}
                         | {"findings": counts, "drifted": sorted(
                             {f["where"] for f in w["findings"] if f["where"]})})
    reference = {"features": {
        "area": {"kind": "numeric", "edges": [2.5], "shares": [0.5, 0.5, 0.0], "mean": 2.5,
                 "sd": 1.0, "quantiles": None},
        MARKUP: {"kind": "categorical", "shares": {"a&b": 0.6, "<i>c</i>": 0.4},
                 "missing": 0.0}}, "predictions": {}}
    monitor = {"run_dir": "/runs/est", "source": {"kind": "records", "path": "served.jsonl"},
               "windowing": {"window": 300}, "records": 600, "thresholds": {"psi_warning": 0.175,
                                                                           "min_records": 100},
               "status": "warnings", "exit_code": 1,
               "counts": {"by_severity": {"error": 0, "warning": 2, "info": 1}},
               "windows": headlines, "folder": None,
               "findings": [drift, unseen, thin], "reference": reference}
    return monitor, windows


def test_page_names_the_drifted_field_and_the_verdict(result):
    monitor, windows = result
    text = visible_text(render_monitor(monitor, windows))
    assert "Warnings (exit code 1)" in text
    assert "Input fields drifted: area (in 1 of 3 windows)" in text
    assert "Categories never seen in training arrived in: " + MARKUP in text
    assert "1 window(s) had too few records to be judged" in text
    assert "area drifted (numeric)" in text  # the field's chart is marked
    assert "never seen in training" in text  # the renamed category's bar


def test_field_names_and_categories_are_escaped(result):
    monitor, windows = result
    page = render_monitor(monitor, windows)
    assert "<script>" not in page and "<i>c</i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;i&gt;c&lt;/i&gt;" in page and "a&amp;b" in page


def test_page_is_self_contained(result):
    monitor, windows = result
    page = render_monitor(monitor, windows)
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page and "<link" not in page and "src=" not in page
    assert "<script" not in page


def test_empty_and_thin_windows_render(result):
    monitor, windows = result
    assert "No records were read" in visible_text(render_monitor(
        {"status": "ok", "exit_code": 0, "windows": [], "findings": []}))
    thin_only = {**monitor, "windows": monitor["windows"][2:], "findings": monitor["findings"][2:],
                 "exit_code": 0, "counts": {"by_severity": {"error": 0, "warning": 0, "info": 1}}}
    text = visible_text(render_monitor(thin_only, windows[2:]))
    assert "Nothing found" in text and "monitor.thin_window" in text
    assert "No input field drifted." in text


def test_a_healthy_result_is_green_and_draws_both_sides(result):
    monitor, windows = result
    healthy = {**monitor, "windows": monitor["windows"][:1], "findings": [], "exit_code": 0}
    page = render_monitor(healthy, windows[:1])
    assert "light green" in page and "light amber" not in page
    assert "Input fields drifted" not in visible_text(page)
    assert "served, all windows" in page and "training" in page


def test_without_windows_only_the_training_side_is_drawn(result):
    monitor, _ = result
    text = visible_text(render_monitor(monitor))
    assert "windows.jsonl, which was not given" in text


def test_aggregate_weights_windows_by_records(result):
    _, windows = result
    served = aggregate_windows(windows, {"psi_warning": 0.175})
    area = served["features"]["area"]
    assert area["shares"] == {"0": pytest.approx(0.3), "1": pytest.approx(0.7), "2": 0.0}
    assert area["worst"]["window"] == "#1" and area["maxima"]["psi"] == 0.9
    assert area["judged"] == 2  # the empty window is not judged


def test_bins_are_named_by_their_edges():
    assert bin_labels([10.0, 20.0, 1500.0]) == ["< 10", "10 to 20", "20 to 1,500", "≥ 1,500",
                                                "missing"]


def test_write_streams_windows_jsonl(result, tmp_path):
    monitor, windows = result
    (tmp_path / "windows.jsonl").write_text("".join(json.dumps(w) + "\n" for w in windows))
    page = write_monitor_html(tmp_path, monitor).read_text(encoding="utf-8")
    assert "served, window #1 (drifted most)" in page


def test_many_windows_are_bucketed_and_listed_briefly(result):
    monitor, _ = result
    quiet = monitor["windows"][0]
    many = {**monitor, "windows": [{**quiet, "index": i} for i in range(1000)] +
            monitor["windows"][1:2], "findings": monitor["findings"][:2]}
    page = render_monitor(many)
    assert "each column: 5 windows" in page
    assert "the 1 with findings are listed" in visible_text(page)


@pytest.mark.browser
@pytest.mark.skipif(chromium() is None, reason="Chromium is not installed "
                    "(Debian: `apt-get install chromium`)")
def test_monitor_page_reads_cleanly_in_a_browser(result, tmp_path):
    monitor, windows = result
    (tmp_path / "windows.jsonl").write_text("".join(json.dumps(w) + "\n" for w in windows))
    long_name = "_".join(["a_very_long_field_name"] * 12)
    monitor["findings"][0]["where"] = long_name
    page = write_monitor_html(tmp_path, monitor)
    dom, log = render_dom(page, tmp_path / "profile")
    assert console_messages(log) == []
    text = visible_text(dom)
    assert "Summary" in text and "Training against served" in text
    assert not PLACEHOLDER.findall(text), [text[max(m.start() - 40, 0):m.end() + 40]
                                           for m in PLACEHOLDER.finditer(text)]
    assert "nan" not in text.split() and "None" not in text.split()
    width, _ = page_size(page, tmp_path / "profile", 1280)
    assert width <= 1280
