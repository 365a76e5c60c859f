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


# ------------------------------------------------------------------------- learning curves
def decaying(epochs: int, start: float, end: float) -> list[dict]:
    """train and val loss falling geometrically from ``start`` to ``end``."""
    ratio = (end / start) ** (1 / (epochs - 1))
    return [{"epoch": e, "train/loss": start * ratio ** e, "val/loss": 1.1 * start * ratio ** e}
            for e in range(epochs)]


def y_ticks(svg: str) -> list[str]:
    import re

    return re.findall(r"text-anchor='end'>([^<]+)</text>", svg)


def test_a_loss_spanning_decades_gets_a_log_axis_with_round_ticks():
    from guardrail.report.html import learning_curve_svg

    svg = learning_curve_svg(decaying(120, 1.624, 0.0168))  # WEA: 97x over 120 epochs
    assert "loss (log scale)" in svg
    assert y_ticks(svg) == ["0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1", "2"]
    assert ">100</text>" in svg and ">epoch</text>" in svg  # x ticks and the axis title
    assert svg.count("stroke='#d0d7de'") == len(y_ticks(svg)) + 7  # a grid line per tick


def test_a_loss_within_one_decade_keeps_a_linear_axis():
    from guardrail.report.html import learning_curve_svg

    svg = learning_curve_svg(decaying(20, 0.0105, 0.0074))  # CCF
    assert "log scale" not in svg and ">loss</text>" in svg
    assert y_ticks(svg) == ["0.007", "0.008", "0.009", "0.01", "0.011", "0.012"]


def test_the_curve_fills_the_page_and_its_legend_stays_off_the_data():
    import re

    from guardrail.report.html import learning_curve_svg

    svg = learning_curve_svg(decaying(10, 2.0, 1.0), width=900)
    assert "viewBox='0 0 900 300'" in svg and "width='100%'" in svg
    plot = re.search(r"<rect x='(\d+)' y='\d+' width='(\d+)'", svg)
    right_edge = int(plot.group(1)) + int(plot.group(2))
    legend = re.findall(r"<text x='([\d.]+)' y='[\d.]+' font-size='12'>(?:train|val)/loss", svg)
    assert len(legend) == 2 and all(float(x) > right_edge for x in legend)
    points = [float(p.split(",")[0]) for p in re.findall(r"[\d.]+,[\d.]+", svg)]
    assert max(points) <= right_edge


def test_a_curve_with_markup_in_its_key_stays_text():
    from guardrail.report.html import learning_curve_svg

    history = [{"epoch": 0, "<b>x</b>": 1.0}, {"epoch": 1, "<b>x</b>": 0.5}]
    svg = learning_curve_svg(history, keys=["<b>x</b>"])
    assert "&lt;b&gt;x&lt;/b&gt;" in svg and "<b>" not in svg


# ---------------------------------------------------------------------------- plain text
def test_joined_sentences_and_self_references_are_mended_on_the_page():
    joined = Finding("baseline.not_beaten", "error", "rmse 3 does not beat 2.; mae 4 does not "
                     "beat 3.", where="test/rmse", hint="See the per-sample table in report.html.")
    page = render_html({"status": "completed"}, [joined])
    assert ".;" not in page and "report.html" not in page
    assert "rmse 3 does not beat 2; mae 4" in page and "table on this page." in page
    clean = Finding("baseline.not_beaten", "error", "rmse 3 does not beat 2.", hint="Train more.")
    page = render_html({"status": "completed"}, [clean])
    assert "rmse 3 does not beat 2." in page and "Train more." in page  # left as written


def test_large_counts_have_thousands_separators():
    from guardrail.report.sections import manifest_section

    html = manifest_section({"model": {"parameters": 655571, "final_hash": "h"}})
    assert "655,571 parameters" in html


# ------------------------------------------------------------------- trust in the explanation
def explanation(loss_ratio):
    return {"features": [{"name": n} for n in ("net_pay", "porosity", "depth")],
            "ranking": ["net_pay", "porosity", "depth"],
            "methods": {"permutation": {"importance": [3.0, 2.0, 1.0]}},
            "sanity": {"passed": False, "similarity_to_randomised": 0.5003,
                       "similarity_between_randomised": 0.4, "loss_ratio": loss_ratio}}


def test_a_model_at_fault_makes_the_explanation_light_amber():
    from guardrail.report.sections import sanity_sentence

    colour, sentence = sanity_sentence(explanation(loss_ratio=0.97))
    assert colour == "amber" and "failed its sanity check" in sentence


def test_a_model_that_learned_keeps_its_permutation_ranking_green():
    # OIL: random copies rank the gradients alike (the patch geometry), the model predicts
    # far better than they do: attribution.sanity_failed is an info, the light is not amber
    from guardrail.report.sections import sanity_sentence

    colour, sentence = sanity_sentence(explanation(loss_ratio=0.08))
    assert colour == "green" and "failed" not in sentence
    assert sentence.startswith("The model relies most on net_pay, porosity, depth, by "
                               "permutation importance")


def test_overrides_in_backticks_show_as_code_and_markup_in_them_stays_text():
    hint = Finding("probe.dead_units", "warning", "Dead.", hint="Run `model.pool=2 <b>`.")
    page = render_html({"status": "completed"}, [hint])
    assert "Run <code>model.pool=2 &lt;b&gt;</code>." in page
    plain = Finding("probe.dead_units", "warning", "Dead.", hint="Lower the learning rate.")
    assert "<td>Lower the learning rate.</td>" in render_html({"status": "completed"}, [plain])


def test_an_explanation_of_training_samples_does_not_claim_held_out_ones():
    from guardrail.report.sections import attribution_section

    result = {"features": [{"name": "a"}], "ranking": ["a"], "samples": 64, "local": []}
    assert "measured on 64 held-out samples" in attribution_section(result, None)
    result["explained"] = "training"
    assert "measured on 64 training samples" in attribution_section(result, None)


def test_a_sanity_check_without_figures_is_inconclusive_not_missing():
    from guardrail.report.sections import sanity_sentence

    ran = {"ranking": ["movieId", "userId"], "sanity": {
        "elements": 2, "similarity_to_randomised": None, "loss_ratio": None, "passed": None}}
    colour, sentence = sanity_sentence(ran)
    assert colour == "grey" and "inconclusive: 2 inputs are too few to compare" in sentence
    _, sentence = sanity_sentence({"ranking": ["a"], "sanity": None})
    assert sentence.endswith("(no sanity check was run).")
