"""report.html in a real browser: headless Chromium loads it without console errors.

Marked ``browser``; skipped where Chromium is missing (`.ci/run` installs Debian's chromium).
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from conftest import quiet_trainer
from guardrail import GuardrailModule
from guardrail.callbacks import AttributionReport
from guardrail.findings import Finding
from guardrail.report.browser import chromium, console_messages, render_dom, scroll_width
from guardrail.report.run import write_run_files

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(chromium() is None, reason="Chromium is not installed "
                                 "(Debian: `apt-get install chromium`)")]


@pytest.fixture
def run_dir(tmp_path):
    """A run directory with an explanation (plots embedded) and a finding holding markup."""
    x, y = torch.randn(300, 4), torch.randn(300)
    loader = DataLoader(TensorDataset(x, y), batch_size=50)
    quiet_trainer(callbacks=[AttributionReport(tmp_path)]).fit(
        GuardrailModule(nn.Linear(4, 1), feature_names=["a", "b", "c", "d"]), loader, loader)
    report = {"recipe": "est", "status": "completed",
              "metrics": {"test": {"rmse_log": 0.145}},
              "baselines": {"median": {"rmse_log": 0.289}},
              "history": [{"epoch": 0, "val/loss": 1.0}, {"epoch": 1, "val/loss": 0.5}]}
    long_where = ".".join(f"block{i}" for i in range(40))  # a deep module path, unbroken
    write_run_files(tmp_path, report, [
        Finding("probe.dead_units", "warning", "<img src=x onerror=alert(1)> is dead."),
        Finding("baseline.compared", "info", "Compared with 1 baseline(s) on test.",
                where="test", evidence={"beaten": "median", "stage": "test"}),
        Finding("probe.saturation", "warning", "x" * 400, where=long_where,
                hint="/".join(["folder"] * 60))])
    return tmp_path


def test_report_loads_without_console_errors_and_shows_the_summary(run_dir, tmp_path):
    dom, stderr = render_dom(run_dir / "report.html", tmp_path / "profile")
    assert console_messages(stderr) == []
    assert "Summary" in dom and "Training completed." in dom
    assert "The model beats every baseline" in dom
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom  # the finding's markup stayed text
    assert "What the model relies on" in dom and "data:image/png;base64," in dom


def test_findings_table_fits_a_1280_pixel_page(run_dir, tmp_path):
    assert scroll_width(run_dir / "report.html", tmp_path / "profile", width=1280) <= 1280


def test_the_loop_page_fits_a_1280_pixel_page_without_console_errors(tmp_path):
    """``python -m guardrail.loop``'s report.html, with a round's ten measures and a finding."""
    from guardrail.report.feedback import write_loop_html

    measures = {f"measure_number_{i}_of_the_round": 0.1234567 * i for i in range(10)}
    page = write_loop_html(tmp_path, {
        "recipe": "est", "seed": 0, "loop": {"anchoring": 0.3},
        "rounds": [{"round": k, "period": "2007-06 to 2008-03", **measures} for k in (1, 2, 3, 4)],
        "summary": {"anchoring": {"estimate": 0.25, "low": 0.18, "high": 0.32,
                                  "confidence": 0.95, "method": "holdout", "n": 2047}},
        "findings": [Finding("feedback.anchoring", "warning", "Labels follow the model.",
                             where="label").to_dict()]})
    dom, stderr = render_dom(page, tmp_path / "profile")
    assert console_messages(stderr) == [] and "Do new labels follow the model?" in dom
    assert scroll_width(page, tmp_path / "profile", width=1280) <= 1280


def test_a_page_too_wide_is_measured_so(tmp_path):
    page = tmp_path / "wide.html"
    page.write_text("<!DOCTYPE html><html><body><div style='width:3000px'>x</div></body></html>")
    assert scroll_width(page, tmp_path / "profile", width=1280) > 1280


def test_a_page_with_a_script_error_is_caught(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><p>hi</p>"
                    "<script>undefinedFunction()</script></body></html>")
    _, stderr = render_dom(page, tmp_path / "profile")
    assert any("undefinedFunction" in line for line in console_messages(stderr))


def test_screenshot_script_writes_a_png(run_dir, tmp_path):
    out = tmp_path / "shot.png"
    subprocess.run([sys.executable, "scripts/screenshot_report.py", str(run_dir), str(out)],
                   check=True, cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
