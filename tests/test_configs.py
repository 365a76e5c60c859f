"""Every shipped config composes, and what it names instantiates."""

import inspect

import hydra
import lightning.pytorch as pl
import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf, open_dict

from guardrail.preflight import GROUPS, group_options
from guardrail.recipes import RECIPES


def composed(*overrides):
    with initialize_config_module("guardrail.configs", version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = "/tmp/guardrail-test-configs"
        cfg.hydra = None
    return cfg


def test_registry_and_recipe_configs_agree():
    assert [r.name for r in RECIPES] == group_options("recipe")


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_of_every_group_composes(group):
    for option in group_options(group):
        cfg = composed(f"{group}={option}")
        assert OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("recipe", [r.name for r in RECIPES])
def test_recipe_instantiates_data_network_module_and_callbacks(recipe, tmp_path):
    cfg = composed(f"recipe={recipe}")
    assert cfg.recipe_name == recipe
    datamodule = hydra.utils.instantiate(cfg.data)
    net = hydra.utils.instantiate(cfg.model, **datamodule.net_kwargs())
    module = hydra.utils.instantiate(cfg.module, net=net, **datamodule.module_kwargs())
    assert module.example_input_array is not None
    assert datamodule.baselines()
    for callback in cfg.guardrails.callbacks.values():
        assert isinstance(hydra.utils.instantiate(callback), pl.Callback)


@pytest.mark.parametrize("trainer", ["cpu", "ddp_cpu"])
def test_cpu_trainers_instantiate(trainer, tmp_path):
    cfg = composed(f"trainer={trainer}")
    assert isinstance(hydra.utils.instantiate(cfg.trainer, default_root_dir=tmp_path), pl.Trainer)


GPU_TRAINERS = {"gpu": "SingleDeviceStrategy", "ddp": "DDPStrategy", "fsdp": "FSDPStrategy"}


@pytest.mark.parametrize("trainer", sorted(GPU_TRAINERS))
def test_gpu_trainers_instantiate_their_strategy(trainer, tmp_path):
    """On a CUDA machine the whole trainer; elsewhere everything but the accelerator."""
    cfg = composed(f"trainer={trainer}")
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision == "bf16-mixed"
    if torch.cuda.is_available():
        built = hydra.utils.instantiate(cfg.trainer, default_root_dir=tmp_path)
        assert type(built.strategy).__name__ == GPU_TRAINERS[trainer]
        return
    if trainer == "fsdp":  # Lightning refuses FSDP on a CPU: build the strategy alone
        strategy = hydra.utils.instantiate(cfg.trainer.strategy)
        assert type(strategy).__name__ == "FSDPStrategy"
        return
    with open_dict(cfg):
        cfg.trainer.accelerator = "cpu"
        cfg.trainer.devices = 2 if trainer == "ddp" else 1
    built = hydra.utils.instantiate(cfg.trainer, default_root_dir=tmp_path)
    assert type(built.strategy).__name__ == GPU_TRAINERS[trainer]


def test_multi_node_launch_is_documented_where_the_configs_are():
    from pathlib import Path

    import guardrail.configs

    ddp = (Path(guardrail.configs.__file__).parent / "trainer" / "ddp.yaml").read_text()
    for needed in ("torchrun", "--nnodes", "srun", "trainer.num_nodes", "hydra.run.dir"):
        assert needed in ddp, needed


@pytest.mark.parametrize("trainer", group_options("trainer"))
def test_every_trainer_key_is_a_trainer_argument(trainer):
    keys = set(OmegaConf.to_container(composed(f"trainer={trainer}").trainer)) - {"_target_"}
    assert keys <= set(inspect.signature(pl.Trainer.__init__).parameters)


@pytest.mark.parametrize("logger", group_options("logger"))
def test_loggers_instantiate(logger, tmp_path):
    cfg = composed(f"logger={logger}")
    assert hydra.utils.instantiate(cfg.logger, save_dir=str(tmp_path)) is not None
