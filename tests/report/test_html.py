from guardrail import Finding
from guardrail.report import render_html
from guardrail.report.html import traffic_lights

MARKUP = "<script>alert(1)</script>"


def test_every_recorded_string_is_escaped():
    report = {"recipe": MARKUP, "status": "completed", "overrides": [f"data.name={MARKUP}"],
              "metrics": {"test": {MARKUP: 1.0}}, "baselines": {MARKUP: {MARKUP: 2.0}}}
    finding = Finding(MARKUP, "error", MARKUP, where=MARKUP, hint=MARKUP)
    page = render_html(report, [finding])
    assert "<script>" not in page
    assert page.count("&lt;script&gt;") >= 7


def test_page_is_self_contained():
    page = render_html({"status": "completed", "history": [
        {"epoch": 0, "val/loss": 2.0}, {"epoch": 1, "val/loss": 1.0}]}, [])
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page and "<link" not in page and "src=" not in page


def test_lights_for_a_healthy_run_are_green():
    report = {"status": "completed", "metrics": {"test": {"rmse": 1.0}},
              "baselines": {"mean": {"rmse": 2.0}}}
    assert [c for c, _ in traffic_lights(report, [])] == ["green", "green", "green"]


def test_lights_for_a_run_that_lost_to_its_baseline_are_red():
    report = {"status": "completed", "metrics": {"test": {"rmse": 3.0}},
              "baselines": {"mean": {"rmse": 2.0}}}
    lost = Finding("baseline.not_beaten", "error", "rmse 3 does not beat 2.", where="test/rmse")
    colours = [c for c, _ in traffic_lights(report, [lost])]
    assert colours == ["green", "red", "red"]
