"""Edge cases of the pure probe rules that the fault suite found."""

from guardrail.checks.gradients import update_ratio_findings, vanishing_findings
from guardrail.checks.loss import divergence_findings, oscillation_findings
from guardrail.checks.resolution import resolution_findings
from guardrail.shapes import Layer


def test_divergence_from_a_loss_of_exactly_zero_fires_instead_of_crashing():
    assert [f.check for f in divergence_findings([0.0] * 10 + [1.0] * 10)] == ["loss.divergence"]


def test_all_zero_gradients_are_not_vanishing():
    assert vanishing_findings([{"net.0": 0.0, "net.7": 0.0}] * 3) == []
    assert vanishing_findings([{"net.0": 1e-9, "net.7": 1e-2}] * 3)


def test_growth_from_a_tiny_first_gradient_is_not_exploding():
    from guardrail.checks.gradients import exploding_findings

    wea = [{"net.encoder.0": 1.04e-5}, {"net.encoder.0": 0.05}, {"net.encoder.0": 0.119}]
    assert exploding_findings(wea) == []
    assert exploding_findings([{"a": 1.0}, {"a": 2e3}, {"a": 5e3}])


def test_a_layer_growing_from_tiny_to_the_networks_scale_is_not_exploding():
    from guardrail.checks.gradients import exploding_findings

    # WEA's default run: the encoder starts at 1e-5 behind a decoder that starts near zero
    # and reaches 1.3 later, while the decoder's own gradient started at 0.4.
    wea = [{"net.encoder.2": 1e-5, "net.decoder.0": 0.4}] + \
        [{"net.encoder.2": 1.32, "net.decoder.0": 0.5}] * 2
    assert exploding_findings(wea) == []
    exploded = [{"net.encoder.2": 1e-5, "net.decoder.0": 0.4}] + \
        [{"net.encoder.2": 900.0, "net.decoder.0": 0.5}] * 2
    assert [f.where for f in exploding_findings(exploded)] == ["net.encoder.2"]


def test_gradients_not_reset_need_finite_figures():
    from guardrail.checks.gradients import not_zeroed_findings

    assert not_zeroed_findings(0.0, float("nan"), "optimizer_zero_grad") == []
    assert not_zeroed_findings(2.0, 3.0, "training_step")


def test_update_ratio_too_large_is_judged_on_the_first_step():
    samples = [{"a": 80.0, "b": 90.0}, {"a": 0.5, "b": 0.3}]
    assert [f.where for f in update_ratio_findings(samples)] == ["b"]
    assert update_ratio_findings([{"a": 0.1, "b": 0.05}] * 4) == []  # healthy Adam at lr 1e-2


def test_small_wiggles_after_a_tenfold_drop_are_not_oscillation():
    assert oscillation_findings([1.35, 0.45, 0.097, 0.117, 0.033, 0.04, 0.03], "val") == []


def test_a_textbook_autoencoders_own_bottleneck_is_not_resolution_loss():
    layers = [Layer("conv1", "conv", (2, 1, 16, 16), (2, 16, 16, 16), 256, 4096, 1, True),
              Layer("pool1", "pool", (2, 16, 16, 16), (2, 16, 8, 8), 4096, 1024, 2, False),
              Layer("conv2", "conv", (2, 16, 8, 8), (2, 4, 8, 8), 1024, 256, 1, True),
              Layer("pool2", "pool", (2, 4, 8, 8), (2, 4, 4, 4), 256, 64, 2, False),
              Layer("up1", "other", (2, 4, 4, 4), (2, 16, 8, 8), 64, 1024, 1, True),
              Layer("up2", "other", (2, 16, 8, 8), (2, 1, 16, 16), 1024, 256, 1, True)]
    assert resolution_findings(layers, 256, 256) == []


def test_heat_maps_that_disagree_warn_only_when_the_model_is_at_fault():
    from guardrail.checks.attribution import attribution_findings

    learned = {"sanity": {"method": "gradients", "similarity_to_randomised": 0.1,
                          "loss_ratio": 0.2}, "agreement": {"pixels": 0.05}}
    [finding] = attribution_findings(learned)
    assert (finding.check, finding.where, finding.severity.value) == (
        "attribution.methods_disagree", "pixels", "info")
    learned["sanity"]["loss_ratio"] = 0.98  # predicts no better than random copies
    assert {(f.check, f.severity.value) for f in attribution_findings(learned)} == {
        ("attribution.sanity_failed", "warning"), ("attribution.methods_disagree", "warning")}


def test_a_gradient_profile_like_random_copies_is_an_info_when_the_model_learned():
    from guardrail.checks.attribution import attribution_findings

    sanity = {"method": "gradients", "similarity_to_randomised": 0.74,
              "similarity_between_randomised": 0.3, "loss_ratio": 0.4}
    [finding] = attribution_findings({"sanity": sanity})
    assert (finding.check, finding.severity.value) == ("attribution.sanity_failed", "info")


def test_near_uniform_probabilities_are_told_apart_by_the_exact_loss():
    import torch
    from torch.nn import functional as F

    from guardrail.checks.loss_function import identify_loss

    g = torch.Generator().manual_seed(0)
    p = (0.01 * torch.randn(96, 32, generator=g)).softmax(1)  # a crawling double softmax
    y = torch.randint(0, 32, (96,), generator=g)
    assert identify_loss(p, [y], float(F.cross_entropy(p, y))).double_activation == "softmax"
    assert identify_loss(p, [y], float(F.nll_loss(p.log(), y))).name == "nll_of_log"
    assert identify_loss(p, [y], float(F.cross_entropy(p, y)) * 1.001) is None
