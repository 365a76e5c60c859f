"""The README's Python examples run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_the_subclassing_and_callback_examples():
    assert any("class HousePrice(guardrail.GuardrailModule)" in b for b in BLOCKS)
    assert any("callbacks=guardrail.default_callbacks()" in b and "BoringModel" in b
               for b in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(block, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(block, str(README), "exec"), {"__name__": "readme"})
    assert list(tmp_path.glob("runs/*/report.json"))
    assert capsys.readouterr().out.strip()
    house = tmp_path / "runs" / "house" / "report.json"
    if house.is_file():  # the healthy example stays healthy: no error finding
        import json

        assert json.loads(house.read_text())["findings"]["by_severity"]["error"] == 0
