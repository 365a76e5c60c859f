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


BEATEN = Finding("baseline.compared", "info", "Compared with 1 baseline(s) on test.", where="test",
                 evidence={"beaten": "mean", "not_beaten": "", "compared": 1, "stage": "test"})


def test_lights_for_a_healthy_run_are_green():
    report = {"status": "completed", "metrics": {"test": {"rmse": 1.0}},
              "baselines": {"mean": {"rmse": 2.0}}}
    lights = traffic_lights(report, [BEATEN])
    assert [c for c, _ in lights] == ["green", "green", "green"]
    assert lights[1][1] == "The model beats every baseline (mean) on the held-out test split."


def test_lights_for_a_run_that_lost_to_its_baseline_are_red():
    report = {"status": "completed", "metrics": {"test": {"rmse": 3.0}},
              "baselines": {"mean": {"rmse": 2.0}}}
    lost = Finding("baseline.not_beaten", "error", "rmse 3 does not beat 2.", where="test/rmse")
    colours = [c for c, _ in traffic_lights(report, [lost, BEATEN])]
    assert colours == ["green", "red", "red"]


def test_a_simpler_model_as_good_is_amber():
    report = {"status": "completed", "metrics": {"test": {"ap": 0.0176}},
              "baselines": {"logistic": {"ap": 0.0175}}}
    simpler = Finding("baseline.simpler_model_suffices", "warning",
                      "The simpler model is as good.", where="test/ap")
    colour, sentence = traffic_lights(report, [simpler, BEATEN])[1]
    assert colour == "amber" and sentence.startswith("A simpler model is as good as this one")


def test_a_baseline_never_compared_is_grey_not_green():
    # baselines and test metrics were recorded, but the model logs none of their metrics
    report = {"status": "completed", "metrics": {"test": {"loss": 1.0}},
              "baselines": {"mean": {"rmse": 2.0}}}
    not_compared = Finding("baseline.not_compared", "info", "rmse not logged.", where="test/rmse")
    colour, sentence = traffic_lights(report, [not_compared])[1]
    assert colour == "grey" and "could be compared" in sentence
    assert traffic_lights(report, [])[1][0] == "grey"
    missing = Finding("baseline.missing", "info", "No baseline.")
    assert "no baselines()" in traffic_lights(report, [missing])[1][1]


def test_ties_the_metric_cannot_separate_are_named_in_a_green_light():
    tie = Finding("baseline.not_separable", "info", "equal.", where="test/recall_at_1pct_fpr")
    colour, sentence = traffic_lights({"status": "completed"}, [BEATEN, tie])[1]
    assert colour == "green" and "cannot separate them: test/recall_at_1pct_fpr" in sentence


def test_reference_models_are_labelled_in_the_metrics_table():
    report = {"status": "completed", "metrics": {"test": {"ap": 0.04}},
              "baselines": {"prior": {"ap": 0.01}, "logistic": {"ap": 0.03}},
              "baseline_roles": {"prior": "trivial", "logistic": "reference"}}
    page = render_html(report, [])
    assert "baseline: prior (test)" in page and "reference model: logistic (test)" in page


def test_long_unbroken_strings_may_wrap():
    assert "overflow-wrap:anywhere" in render_html({"status": "completed"}, [])


def test_what_pins_the_result_shows_the_sample_counts():
    from guardrail.report.sections import manifest_section

    manifest = {"data": {"train": {"samples": 280, "content": "h"},
                         "val": {"samples": 20, "content": "h"},
                         "test": {"samples": 1234567, "content": "h",
                                  "sampled": {"hashed": 1048576, "why": "count", "seed": 0}},
                         "order": {"digest": "o"}}}
    html = manifest_section(manifest)
    assert "train: 280 samples, val: 20 samples, test: 1,234,567 samples (fingerprint of " \
           "1,048,576)" in html
    assert "? samples" not in html
