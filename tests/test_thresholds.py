"""Thresholds: one validated dataclass per check module, the README and YAML kept equal to it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from guardrail.callbacks import ActivationProbe, GradientProbe, LossProbe
from guardrail.checks.gradients import GradientThresholds, exploding_findings
from guardrail.checks.loss import LossThresholds, plateau_findings
from guardrail.errors import ConfigError
from guardrail.thresholds import Thresholds, all_thresholds, markdown

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
YAML_BLOCK = {  # thresholds class -> its callback's block in configs/guardrails/default.yaml
    "ResolutionThresholds": "architecture", "ActivationThresholds": "activation_probe",
    "GradientThresholds": "gradient_probe", "LossThresholds": "loss_probe",
    "BaselineThresholds": "baseline_check", "ResourceThresholds": "resources",
    "DataThresholds": "data_probe", "AttributionThresholds": "attribution",
    "ContractThresholds": "data_contract", "EffortThresholds": "effort",
    "MembershipThresholds": "privacy",
}
COMMAND_FLAG = {  # thresholds of a command, not a training callback -> the command
    "DriftThresholds": "monitor", "DependencyThresholds": "doctor",
}
LOOP_WORLDS = {"FeedbackThresholds"}  # set by `loop.thresholds` of configs/loop/world/*.yaml


def test_readme_threshold_table_is_the_generated_one():
    block = README.split("<!-- thresholds:start -->\n")[1].split("\n<!-- thresholds:end -->")[0]
    assert block == markdown(), "regenerate it with `python scripts/thresholds_table.py`"


@pytest.mark.parametrize("cls", all_thresholds(), ids=lambda c: c.__name__)
def test_check_table_states_each_default_as_the_code_has_it(cls):
    for field in dataclasses.fields(cls):
        shown = field.metadata["shown"]
        if shown is None:
            continue
        row = next(line for line in README.splitlines()
                   if line.startswith(f"| `{field.metadata['check']}` |"))
        assert shown in row, f"{cls.__name__}.{field.name}: the check table row does not " \
                             f"say {shown!r}:\n{row}"


@pytest.mark.parametrize("cls", [c for c in all_thresholds()
                                 if c.__name__ not in {*COMMAND_FLAG, *LOOP_WORLDS}],
                         ids=lambda c: c.__name__)
def test_default_yaml_lists_every_threshold_at_its_default(cls):
    config = OmegaConf.load(ROOT / "configs" / "guardrails" / "default.yaml")
    listed = OmegaConf.to_container(config.callbacks[YAML_BLOCK[cls.__name__]].thresholds)
    assert listed == {f.name: f.default for f in dataclasses.fields(cls)}
    assert cls.coerce(listed) == cls()


def test_bad_values_are_named_together_and_unknown_names_listed():
    with pytest.raises(ConfigError, match=r"exploding_growth=0.5 must be in \(1, inf\); "
                                          r"update_persist=1.5 must be a whole number"):
        GradientThresholds(exploding_growth=0.5, update_persist=1.5)
    with pytest.raises(ConfigError, match=r"no threshold 'plateau_gain'; its thresholds: "
                                          r"initial_factor, "):
        LossProbe(thresholds={"plateau_gain": 0.05})
    with pytest.raises(ConfigError, match=r"dead_fraction='high' must be a number"):
        ActivationProbe(thresholds={"dead_fraction": "high"})


def test_thresholds_are_frozen_and_yaml_numbers_take_the_field_type():
    limits = LossThresholds.coerce({"plateau_min_epochs": 8.0, "plateau_min_gain": 1})
    assert limits.plateau_min_epochs == 8 and isinstance(limits.plateau_min_epochs, int)
    assert isinstance(limits.plateau_min_gain, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.plateau_min_gain = 0.5  # type: ignore[misc]
    assert all(issubclass(cls, Thresholds) for cls in all_thresholds())


def test_a_changed_threshold_changes_the_rule():
    """The pair: the default stays silent where a stricter setting fires, and the reverse."""
    norms = [{"a": 1.0, "b": 1.0}] + [{"a": 500.0, "b": 1.0}] * 2
    assert exploding_findings(norms) == []
    assert [f.where for f in exploding_findings(norms, GradientThresholds(
        exploding_growth=100.0))] == ["a"]
    losses = [1.0, 0.97, 0.96, 0.96]  # 4% better than the first epoch
    assert plateau_findings(losses, None, "val") == []
    demanding = LossThresholds(plateau_min_gain=0.05)
    assert [f.check for f in plateau_findings(losses, None, "val", limits=demanding)] == [
        "loss.plateau"]


def test_callbacks_take_an_instance_or_a_mapping():
    probe = GradientProbe(thresholds=GradientThresholds(not_updated_steps=2))
    assert probe.thresholds.not_updated_steps == 2
    assert GradientProbe(thresholds={"not_updated_steps": 2}).thresholds == probe.thresholds
    assert LossProbe().thresholds == LossThresholds()


def test_a_monitor_that_is_never_logged_lists_what_was(tmp_path):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    from guardrail import GuardrailModule

    data = DataLoader(TensorDataset(torch.randn(32, 4), torch.randn(32)), batch_size=16)
    trainer = pl.Trainer(callbacks=[LossProbe(monitor="val_los")], max_epochs=1,
                         logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir=tmp_path)
    with pytest.raises(ConfigError, match=re.escape("LossProbe(monitor='val_los')") +
                       r".*it logged: .*val/loss"):
        trainer.fit(GuardrailModule(torch.nn.Linear(4, 1)), data, data)


@pytest.mark.parametrize("name", sorted(COMMAND_FLAG))
def test_command_thresholds_are_set_by_the_commands_flag(name):
    from guardrail.cli import build_parser
    from guardrail.thresholds import assignments

    cls = next(c for c in all_thresholds() if c.__name__ == name)
    assert set(YAML_BLOCK).isdisjoint(COMMAND_FLAG)
    field = dataclasses.fields(cls)[0]
    value = float(field.default) / 2 or 0.5
    args = build_parser().parse_args([COMMAND_FLAG[name], "RUN", "--threshold",
                                      f"{field.name}={value}"])
    assert getattr(cls.coerce(assignments(args.threshold)), field.name) == value
    with pytest.raises(ConfigError, match="give NAME=NUMBER"):
        assignments([field.name])
    with pytest.raises(ConfigError, match="no threshold 'nonexistent'"):
        cls.coerce(assignments(["nonexistent=0.3"]))


def test_the_loop_worlds_take_feedback_thresholds():
    from guardrail.checks.feedback import FeedbackThresholds

    worlds = sorted((ROOT / "configs" / "loop" / "world").glob("*.yaml"))
    assert [w.stem for w in worlds] == ["est", "rec"]
    for world in worlds:
        assert OmegaConf.load(world).thresholds is None  # the defaults, changed by key
    field = dataclasses.fields(FeedbackThresholds)[0]
    assert FeedbackThresholds.coerce({field.name: field.default}) == FeedbackThresholds()
