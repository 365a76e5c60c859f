"""Values are checked against what their targets declare, before anything is built."""

import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf, open_dict

from guardrail.config_values import check_values, conforms
from guardrail.preflight import GROUPS, check_argv, group_options
from guardrail.recipes import RECIPES


def composed(*overrides):
    with initialize_config_module("guardrail.configs", version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra = None
    return cfg


class Unknown:
    """A class the check knows nothing about."""


class Target:
    """A user's class with every kind of annotation the check meets."""

    def __init__(self, count: int, rate: float = 0.1, name: str | None = None,
                 sizes: tuple[int, ...] = (1,), mode: Literal["a", "b"] = "a",
                 path: Path | None = None, thing: Unknown | None = None,
                 later: "NotImportedAnywhere" = None,  # noqa: F821 - never resolves
                 sloppy: int = None) -> None:  # noqa: RUF013 - a None default says Optional
        self.count = count


def target_cfg(**values):
    return OmegaConf.create({"part": {"_target_": f"{__name__}.Target", **values}})


@pytest.mark.parametrize("recipe", [r.name for r in RECIPES])
def test_every_recipe_default_config_passes(recipe):
    assert check_values(composed(f"recipe={recipe}")) == []


@pytest.mark.parametrize("group", [g for g in GROUPS if g != "recipe"])
def test_every_group_option_passes(group):
    for option in group_options(group):
        assert check_values(composed(f"{group}={option}")) == [], option


def test_bad_trainer_value_names_key_type_value_and_fix():
    message = check_argv(["recipe=est", "trainer.max_epochs=abc"])
    assert message == (
        "`trainer.max_epochs` is 'abc' (a string, from the command line), but "
        "lightning.pytorch.Trainer takes max_epochs as an int or null. Give an int or null, "
        "e.g. `trainer.max_epochs=60`.")


def test_wrong_typed_recipe_key_is_refused_with_the_recipe_default_as_example():
    message = check_argv(["recipe=est", "data.batch_size=big"])
    assert "`data.batch_size` is 'big' (a string, from the command line)" in message
    assert "AmesDataModule takes batch_size as an int" in message
    assert "e.g. `data.batch_size=128`" in message


def test_every_problem_at_once_one_paragraph_each():
    message = check_argv(["recipe=wea", "trainer.max_epochs=abc", "data.source=3",
                          "model.channels=[16,a]"])
    paragraphs = message.split("\n\n")
    assert [p.split("`")[1] for p in paragraphs] == ["trainer.max_epochs", "data.source",
                                                      "model.channels"]
    assert "takes channels as a list of ints" in paragraphs[2]


def test_interpolated_value_names_the_key_to_change_once():
    message = check_argv(["recipe=wea", "seed=abc"])
    assert message.startswith("`seed` is 'abc' (a string, from the command line)")
    assert "e.g. `seed=42`" in message and "\n\n" not in message


@pytest.mark.parametrize(("override", "words"), [
    ("trainer.max_epochs=-5", "takes max_epochs -1 (no limit) or more"),
    ("trainer.limit_train_batches=1.5", "a fraction of the batches (float from 0 to 1)"),
    ("trainer.accumulate_grad_batches=0", "takes accumulate_grad_batches 1 or more"),
    ("data.batch_size=0", "takes batch_size 1 or more"),
])
def test_out_of_range_is_refused(override, words):
    message = check_argv(["recipe=est", override])
    assert f"`{override.split('=')[0]}` is {override.split('=')[1]} (from the command line), " \
        "out of range" in message
    assert words in message


@pytest.mark.parametrize("override", [
    "trainer.max_epochs=5", "trainer.limit_train_batches=0.5", "trainer.limit_train_batches=3",
    "trainer.precision=bf16-mixed", "trainer.precision=16", "trainer.devices=auto",
    "trainer.devices=[0]", "trainer.deterministic=warn", "trainer.gradient_clip_val=1",
    "module.lr=1", "trainer.max_epochs=-1", "+trainer.max_time=00:01:00:00",
])
def test_valid_values_pass(override):
    assert check_argv(["recipe=est", override]) is None


def test_null_is_valid_for_optional_only():
    assert check_argv(["recipe=wea", "data.val_steps=null"]) is None
    message = check_argv(["recipe=est", "trainer.max_epochs=null"])  # the scheduler needs it
    assert message.startswith("`trainer.max_epochs` is null (from the command line), but "
                              "torch.optim.lr_scheduler.CosineAnnealingLR takes T_max as an int")
    assert "(`module.scheduler.T_max` is `${trainer.max_epochs}`)" in message


def test_a_key_the_target_does_not_take_is_named_with_a_suggestion():
    message = check_argv(["recipe=wea", "+data.bacth_size=3"])
    assert message.startswith("`data.bacth_size` (added on the command line by "
                              "`+data.bacth_size=3`) is not an argument of ")
    assert "Did you mean 'batch_size'?" in message


def test_annotations_it_cannot_judge_are_never_refused():
    cfg = target_cfg(count=3, rate=2, name=None, sizes=[1, 2], mode="b", path="out",
                     thing="anything", later=[1], sloppy=None)
    assert check_values(cfg) == []


def test_user_target_wrong_types_from_the_config_files():
    problems = check_values(target_cfg(count="x", sizes=[1, "y"], mode="c", name=3))
    assert [p.split("`")[1] for p in problems] == ["part.count", "part.sizes", "part.mode",
                                                   "part.name"]  # in config order
    assert problems[0].endswith(f"(a string, from the config files), but {__name__}.Target "
                                "takes count as an int. Give an int in the YAML, or override it, "
                                "e.g. `part.count=10`.")
    assert "takes mode as one of 'a', 'b'. Give one in the YAML, or override it, e.g. " \
        "`part.mode=a`" in problems[2]


def test_missing_values_and_unimportable_targets_are_skipped():
    assert check_values(target_cfg(count="???")) == []
    assert check_values(OmegaConf.create({"x": {"_target_": "no.such.Thing", "a": 1}})) == []


def test_conforms_basics():
    assert conforms(3, float) and not conforms(True, int) and not conforms(3, bool)
    assert conforms(None, int | None) and conforms(None, int) is False
    assert conforms(16, Literal[16, "16-mixed"]) and not conforms("16", Literal[16])
    assert conforms(object(), Unknown) is None


def test_bad_value_leaves_no_run_directory_and_no_traceback(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "guardrail.train", "recipe=est", "trainer.max_epochs=abc",
         "data.batch_size=big", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "AssertionError" not in proc.stderr
    assert "`trainer.max_epochs` is 'abc'" in proc.stderr
    assert "`data.batch_size` is 'big'" in proc.stderr
    assert "Params" not in proc.stdout  # no model summary: nothing was built
    assert not run_dir.exists()
