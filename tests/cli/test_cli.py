import json

import pytest

from guardrail.cli import main
from guardrail.recipes import RECIPES


def test_ls_lists_every_recipe_with_a_description(capsys):
    assert main(["ls"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [r.name for r in RECIPES]
    assert all(len(line) > 40 for line in lines)


@pytest.mark.parametrize("command", ["ls", "report"])
def test_every_subcommand_help_has_examples(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "examples:" in capsys.readouterr().out


def test_report_rerenders_html_from_recorded_files(tmp_path, capsys):
    (tmp_path / "report.json").write_text(json.dumps(
        {"recipe": "est", "status": "completed", "metrics": {"test": {"rmse_log": 0.15}}}))
    (tmp_path / "findings.jsonl").write_text(json.dumps(
        {"check": "baseline.not_beaten", "severity": "error", "message": "lost"}) + "\n")
    assert main(["report", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "rmse_log" in page and "baseline.not_beaten" in page
    assert capsys.readouterr().out.strip() == str(tmp_path / "report.html")


def test_report_on_a_folder_that_is_no_run_says_so(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "is not a guardrail run directory: it has no report.json" in capsys.readouterr().err


def test_report_on_a_corrupt_report_changes_nothing(tmp_path, capsys):
    (tmp_path / "report.json").write_text("{not json")
    assert main(["report", str(tmp_path)]) == 2
    assert "corrupt report file" in capsys.readouterr().err
    assert not (tmp_path / "report.html").exists()
