"""Every shipped recipe's report.html in headless Chromium, as a product owner opens it.

Each recipe is trained briefly through the app (the quick overrides of ``tests/test_train.py``
with two epochs, so that there are learning curves), then its page is loaded: no console
messages, no ``?`` placeholder, nothing wider than a 1280-pixel window, and WEA's explanation
in space (heat maps, a region of the grid) rather than its one feature ``x0[0]``.
"""

import re

import pytest
from test_train import QUICK, run_app

from guardrail.recipes import RECIPES
from guardrail.report.browser import (
    chromium,
    console_messages,
    page_size,
    render_dom,
    visible_text,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser,
              pytest.mark.skipif(chromium() is None, reason="Chromium is not installed "
                                 "(Debian: `apt-get install chromium`)")]

TWO_EPOCHS = [o for o in QUICK if not o.startswith("trainer.max_epochs=")] + [
    "trainer.max_epochs=2"]
PLACEHOLDER = re.compile(r"(?<![\w?])\?(?![\w?])")  # a lone '?', not one ending a question


@pytest.mark.parametrize("recipe", [r.name for r in RECIPES])
def test_recipe_report_reads_cleanly_in_a_browser(recipe, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_app([f"recipe={recipe}", f"hydra.run.dir={run_dir}",
                    f"guardrails.callbacks.config_lock.lock_dir={tmp_path / 'locks'}",
                    *TWO_EPOCHS], tmp_path, env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = run_dir / "report.html"
    dom, log = render_dom(page, tmp_path / "profile")
    assert console_messages(log) == []
    text = visible_text(dom)
    assert "Training completed." in text
    assert not PLACEHOLDER.findall(text), [text[max(m.start() - 40, 0):m.end() + 40]
                                           for m in PLACEHOLDER.finditer(text)]
    assert "? samples" not in text and "nan" not in text.split()
    assert "<svg" in dom and "aria-label=\"learning curves" in dom
    width, _ = page_size(page, tmp_path / "profile", 1280)
    assert width <= 1280
    if recipe == "wea":
        # two short epochs leave the autoencoder untrained, so its explanation may fail the
        # sanity check and the summary then names nothing; whatever it says, never x0[0]
        summary = re.search(r"<section id=\"summary\">.*?</section>", dom, re.DOTALL).group(0)
        assert "x0[0]" not in summary
        assert re.search(r"The model looks most at the [a-z-]+ of the grid(, though little more "
                         r"than the rest)? \(rows \d+-\d+, columns \d+-\d+", text)
        assert "Where in the grid" in text and "reconstruction error" in text
        assert "alt=\"heat maps\"" in dom and "alt=\"where the model looks\"" in dom
