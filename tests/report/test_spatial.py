"""A grid model's explanation is spatial: where in the grid, without padding, in plain words.

A one-channel grid is one feature, so "which feature" has one answer (``x0[0]``); the report
says instead which region of the grid moves the output, and, for an autoencoder, what each
sample's reconstruction error is.
"""

import pytest
import torch
from torch import nn

from guardrail.attribution import explain
from guardrail.attribution.features import grid_extent
from guardrail.report.plots import attribution_plots
from guardrail.report.sections import attribution_section, relies_on, sanity_sentence

H, W, PAD_ROWS, PAD_COLUMNS = 12, 18, 4, 6  # a 12 x 18 field padded to 16 x 24


class Window(nn.Module):
    """Reconstructs only one window of the grid (rows, columns): the rest comes out zero."""

    def __init__(self, rows: slice, columns: slice) -> None:
        super().__init__()
        self.rows, self.columns = rows, columns
        self.scale = nn.Parameter(torch.tensor(3.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x)
        out[:, :, self.rows, self.columns] = x[:, :, self.rows, self.columns] * self.scale
        return out


def padded(n: int, pad: bool = True) -> torch.Tensor:
    x = torch.randn(n, 1, H, W)
    return nn.functional.pad(x, (0, PAD_COLUMNS, 0, PAD_ROWS)) if pad else x


def explained(rows: slice, columns: slice, task: str = "reconstruction", pad: bool = True):
    torch.manual_seed(0)
    x, reference = padded(8, pad), padded(40, pad)
    return explain(Window(rows, columns), (x,), (reference,), task=task, randomisations=0)


def test_padding_is_trimmed_and_an_unpadded_grid_keeps_its_extent():
    assert grid_extent(padded(20)) == (0, H, 0, W)
    assert grid_extent(padded(20, pad=False)) == (0, H, 0, W)
    result, _ = explained(slice(8, 12), slice(12, 18))
    assert result["grids"]["0"]["trimmed"] == {"top": 0, "bottom": PAD_ROWS, "left": 0,
                                               "right": PAD_COLUMNS}
    result, _ = explained(slice(8, 12), slice(12, 18), pad=False)
    assert set(result["grids"]["0"]["trimmed"].values()) == {0}


@pytest.mark.parametrize(("rows", "columns", "region"), [
    (slice(8, 12), slice(12, 18), "bottom-right"),
    (slice(0, 4), slice(0, 6), "top-left"),
])
def test_the_region_the_model_reads_is_the_summary_answer(rows, columns, region):
    result, _ = explained(rows, columns)
    grid = result["grids"]["0"]
    assert grid["top_region"] == region
    assert {r["top_region"] for r in result["local"]} == {region}
    shares = {r["name"]: r["share"] for r in grid["regions"]}
    assert shares[region] > 0.99 and sum(shares.values()) == pytest.approx(1, abs=1e-3)
    _, sentence = sanity_sentence(result)
    assert f"relies most on the {region} of the grid" in sentence
    assert "x0[0]" not in sentence and "100% of the attribution on 11% of its area" in sentence


def test_a_tabular_model_is_summarised_by_its_features_not_a_grid():
    torch.manual_seed(0)
    net = nn.Linear(3, 1)
    result, _ = explain(net, (torch.randn(16, 3),), (torch.randn(40, 3),),
                        names=["area", "year", "rooms"], randomisations=0)
    assert "grids" not in result and "reconstruction_errors" not in result
    assert "grid" not in relies_on(result) and "area" in relies_on(result)


def test_an_autoencoder_reports_its_reconstruction_error_and_a_regressor_its_prediction():
    result, _ = explained(slice(8, 12), slice(12, 18))
    errors = result["reconstruction_errors"]
    # the window comes back 3x (error 2|x| there), the rest of the field as zeros (error |x|)
    assert len(errors) == 8 and all(e > 0.5 for e in errors)
    html = attribution_section(result, None)
    assert "reconstruction error (RMSE, input units)" in html
    assert "where in the grid it looks most" in html and ">bottom-right<" in html
    assert "top features" not in html  # one feature: naming it says nothing
    regression, _ = explained(slice(8, 12), slice(12, 18), task="regression")
    assert "reconstruction_errors" not in regression
    assert "<th>prediction</th>" in attribution_section(regression, None)


def test_the_page_shows_maps_without_padding_and_says_what_was_left_out(tmp_path):
    result, arrays = explained(slice(8, 12), slice(12, 18))
    result["plots"] = attribution_plots(tmp_path, result, arrays)
    assert set(result["plots"]) == {"regions_input0", "heat_maps_input0"}  # no one-bar chart
    html = attribution_section(result, tmp_path)
    assert html.count("data:image/png;base64,") == 2
    assert "The model looks most at the bottom-right of the grid (rows 8-11, columns 12-17" \
        in html
    assert "Rows 12-15 and columns 18-23 of the 16 x 24 grid hold one value in every " \
           "training sample (padding) and are left out." in html


def test_a_binary_classifier_shows_probabilities_not_logits():
    torch.manual_seed(0)
    net = nn.Linear(3, 1)
    with torch.no_grad():
        net.weight.fill_(5.0)  # logits far outside [0, 1]
    x = torch.randn(16, 3)
    result, _ = explain(net, (x,), (torch.randn(40, 3),), task="binary", randomisations=0)
    probabilities = result["probabilities"]
    assert all(0 <= p <= 1 for p in probabilities)
    assert probabilities == pytest.approx(torch.sigmoid(net(x)).flatten().tolist(), abs=1e-6)
    assert "probability of the positive class" in attribution_section(result, None)
    regression, _ = explain(net, (x,), (torch.randn(40, 3),), randomisations=0)
    assert "probabilities" not in regression
