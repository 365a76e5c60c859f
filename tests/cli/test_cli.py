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


@pytest.mark.parametrize("command", ["approve", "new", "diff"])
def test_other_subcommands_help_has_examples(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "examples:" in capsys.readouterr().out


def test_new_writes_a_recipe_and_refuses_to_overwrite_it(tmp_path, capsys):
    assert main(["new", "demo_a"]) == 0
    out = capsys.readouterr().out
    for path in ("demo_a/__init__.py", "demo_a/data.py", "demo_a/model.py",
                 "configs/recipe/demo_a.yaml", "tests/test_demo_a.py"):
        assert (tmp_path / path).is_file() and f"wrote {path}" in out
    text = (tmp_path / "demo_a" / "data.py").read_text()
    assert "class DemoADataModule(RecipeDataModule)" in text and "{{" not in text
    before = (tmp_path / "demo_a" / "model.py").read_text() + "# edited\n"
    (tmp_path / "demo_a" / "model.py").write_text(before)
    assert main(["new", "demo_a"]) == 2
    err = capsys.readouterr().err
    assert "would overwrite demo_a/__init__.py, demo_a/data.py, demo_a/model.py" in err
    assert "nothing was written" in err
    assert (tmp_path / "demo_a" / "model.py").read_text() == before


def test_new_refuses_one_existing_file_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_demo_b.py").write_text("keep")
    assert main(["new", "demo_b"]) == 2
    assert "would overwrite tests/test_demo_b.py" in capsys.readouterr().err
    assert not (tmp_path / "demo_b").exists() and not (tmp_path / "configs").exists()


@pytest.mark.parametrize(("name", "reason"), [
    ("My-Proj", "is not a lower-case Python package name"),
    ("class", "is not a lower-case Python package name"),
    ("json", "is already an importable module"),
    ("torch", "is already an importable module"),
    ("est", "is taken by a case-study recipe"),
])
def test_new_refuses_a_bad_name(name, reason, tmp_path, capsys):
    assert main(["new", name]) == 2
    assert reason in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_ls_lists_a_recipe_of_the_current_folder_after_the_package_ones(tmp_path, capsys):
    (tmp_path / "configs" / "recipe").mkdir(parents=True)
    (tmp_path / "configs" / "recipe" / "mine.yaml").write_text(
        "# @package _global_\n# title: My model\n# description: Our data,\n#   our net.\n"
        "recipe_name: mine\n")
    assert main(["ls"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [r.name for r in RECIPES] + ["mine"]
    assert lines[-1].startswith("mine ") and "My model — Our data, our net. [" in lines[-1]


def test_approve_an_unknown_recipe_lists_the_available_ones(tmp_path, capsys):
    assert main(["approve", "recipe=nope"]) == 2
    err = capsys.readouterr().err
    assert "Unknown recipe 'nope'. Available recipes:" in err and "  est " in err
    assert main(["approve", "est"]) == 2
    assert "Expected `recipe=NAME`; got 'est'" in capsys.readouterr().err
