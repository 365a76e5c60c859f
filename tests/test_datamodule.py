"""RecipeDataModule: loaders, the seed convention, prepare_data/setup, cached baselines."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from conftest import quiet_trainer
from guardrail import GuardrailModule
from guardrail.build import build
from guardrail.datamodule import (
    SPLITS,
    BatchedTensors,
    RecipeDataModule,
    TensorRows,
    check_disjoint,
    collate,
)
from guardrail.errors import ConfigError, DataError


class Lines(RecipeDataModule):
    """``y = 2 x + 1`` on 40 rows; counts how often each hook ran."""

    feature_names = ("x",)

    def __init__(self, batch_size: int = 8, seed: int = 0, **kwargs) -> None:
        super().__init__(batch_size=batch_size, seed=seed, **kwargs)
        self.calls = {"prepare_data": 0, "build_splits": 0, "compute_baselines": 0}

    def prepare_data(self) -> None:
        self.calls["prepare_data"] += 1

    def build_splits(self) -> dict[str, TensorDataset]:
        self.calls["build_splits"] += 1
        x = torch.arange(40.0)[:, None]
        y = 2 * x[:, 0] + 1
        return {"train": TensorDataset(x[:24], y[:24]), "val": TensorDataset(x[24:32], y[24:32]),
                "test": TensorDataset(x[32:], y[32:])}

    def net_kwargs(self) -> dict[str, int]:
        return {"in_features": 1, "out_features": 1}

    def compute_baselines(self) -> dict[str, dict[str, float]]:
        self.calls["compute_baselines"] += 1
        train_mean = float(self.datasets["train"].tensors[1].mean())
        test = self.datasets["test"].tensors[1]
        return {"train_mean": {"rmse": float((test - train_mean).pow(2).mean().sqrt())}}


def _order(loader: DataLoader) -> list[float]:
    return [float(v) for x, _ in loader for v in x[:, 0]]


def test_loaders_shuffle_training_only_and_use_their_batch_sizes():
    dm = Lines(batch_size=8, eval_batch_size=3)
    train = _order(dm.train_dataloader())
    assert sorted(train) == list(np.arange(24.0)) and train != sorted(train)
    assert _order(dm.val_dataloader()) == list(np.arange(24.0, 32.0))  # in the split's order
    assert [len(x) for x, _ in dm.test_dataloader()] == [3, 3, 2]
    assert [len(x) for x, _ in dm.train_dataloader()] == [8, 8, 8]


def test_one_seed_gives_the_same_batches_and_epochs_differ():
    loader = Lines(seed=3).train_dataloader()
    first, second = _order(loader), _order(loader)
    assert first != second  # reshuffled every epoch
    again = Lines(seed=3).train_dataloader()
    assert [_order(again), _order(again)] == [first, second]  # a new run: the same epochs
    torch.manual_seed(123)  # the global RNG does not matter
    assert _order(Lines(seed=3).train_dataloader()) == first
    assert _order(Lines(seed=4).train_dataloader()) != first


def test_setup_builds_once_and_prepares_outside_a_trainer():
    dm = Lines()
    dm.net_kwargs(), dm.setup(), dm.setup("fit"), dm.train_dataloader(), dm.test_dataloader()
    assert dm.calls["build_splits"] == 1 and dm.calls["prepare_data"] == 1


def test_prepare_data_runs_on_local_rank_zero_only(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    dm = Lines()
    dm.setup()
    assert dm.calls == {"prepare_data": 0, "build_splits": 1, "compute_baselines": 0}


def test_baselines_are_computed_once_and_the_cache_cannot_be_mutated():
    dm = Lines()
    first = dm.baselines()
    first["train_mean"]["rmse"] = -1.0
    assert dm.baselines()["train_mean"]["rmse"] == pytest.approx(48.22, abs=0.01)
    assert dm.calls["compute_baselines"] == 1


def test_defaults_of_the_contract_hooks():
    class Bare(RecipeDataModule):
        def build_splits(self) -> dict[str, TensorDataset]:
            return {s: TensorDataset(torch.zeros(4, 2)) for s in SPLITS}

    bare = Bare()
    assert (bare.net_kwargs(), bare.module_kwargs(), bare.baselines(),
            bare.baseline_roles()) == ({}, {}, {}, {})
    assert Lines().module_kwargs() == {"feature_names": ["x"]}


def test_a_missing_split_and_bad_loader_arguments_are_clear_errors():
    class NoTest(RecipeDataModule):
        def build_splits(self) -> dict[str, TensorDataset]:
            return {"train": TensorDataset(torch.zeros(2)), "val": TensorDataset(torch.zeros(2))}

    with pytest.raises(ConfigError, match=r"NoTest.build_splits\(\) returned no test split"):
        NoTest().setup()
    with pytest.raises(ConfigError, match=r"Lines: `data.batch_size=0` must be >= 1.*"
                                          r"`data.num_workers=-2` must be >= 0"):
        Lines(batch_size=0, num_workers=-2)
    with pytest.raises(NotImplementedError, match="must implement build_splits"):
        RecipeDataModule().setup()


def test_the_app_builds_a_recipe_from_it_and_a_trainer_fits():
    cfg = OmegaConf.create({
        "data": {"_target_": "test_datamodule.Lines"},
        "model": {"_target_": "torch.nn.Linear"},
        "module": {"_target_": "guardrail.GuardrailModule", "task": "regression"}})
    built = build(cfg)
    assert isinstance(built.net, nn.Linear) and built.net.in_features == 1
    assert built.module.feature_names == ["x"]
    built.module.example_input_array = torch.zeros(2, 1)
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(built.module, built.datamodule)
    trainer.test(built.module, built.datamodule, verbose=False)
    # Lightning ran prepare_data again (it is idempotent); the splits were built once
    assert built.datamodule.calls["build_splits"] == 1


def test_a_subclass_without_feature_names_builds_with_the_app():
    class Plain(Lines):
        feature_names = None

    module = GuardrailModule(net=nn.Linear(1, 1), task="regression",
                             **Plain().module_kwargs())
    assert module.feature_names is None
    assert isinstance(Plain(), pl.LightningDataModule)


def test_check_disjoint_fires_on_a_shared_id_and_is_silent_otherwise():
    check_disjoint({"train": np.array([1, 2, 2]), "val": np.array([3]), "test": [4]}, "users",
                   "DEMO")
    with pytest.raises(DataError, match=r"DEMO split leaks: 1 users in both val and test "
                                        r"\(e.g. 3\)"):
        check_disjoint({"train": [1, 2], "val": [3], "test": [3, 4]}, "users", "DEMO")


def test_batched_tensors_and_tensor_rows_batch_like_plain_datasets():
    x, y = torch.arange(10.0), torch.arange(10)
    batched = list(DataLoader(BatchedTensors(x, y), 4, collate_fn=collate))
    plain = list(DataLoader(TensorDataset(x, y), 4))
    assert all(torch.equal(a, b) for pa, pb in zip(batched, plain, strict=True)
               for a, b in zip(pa, pb, strict=True))
    rows = next(iter(DataLoader(TensorRows(x=x, y=y), 4, collate_fn=collate)))
    assert torch.equal(rows["x"], x[:4]) and torch.equal(rows["y"], y[:4])
    with pytest.raises(ValueError, match="one length"):
        TensorRows(x=x, y=y[:3])
