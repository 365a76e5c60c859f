"""Tests of the WEA recipe: time split, normalisation, generator, masking, network, baselines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import quiet_trainer
from guardrail.datamodule import SPLITS
from guardrail.errors import ConfigError, DataError, MissingDependencyError
from guardrail.recipes.wea import (
    MaskedRMSE,
    WeatherAutoencoder,
    WeatherAutoencoderModule,
    WeatherDataModule,
    synthetic_fields,
)
from guardrail.recipes.wea.data import bilinear_grid, bilinear_rmse, time_split
from guardrail.recipes.wea.preprocess import WeatherPreprocessor
from guardrail.recipes.wea.sources import frame_hashes

CONFIG = Path(__file__).parents[2] / "configs" / "recipe" / "wea.yaml"
SMALL = {"source": "synthetic", "n_frames": 60, "height": 16, "width": 24, "batch_size": 8}


def small_dm(**overrides) -> WeatherDataModule:
    return WeatherDataModule(**{**SMALL, **overrides})


# ------------------------------------------------------------------------------------ data
def test_time_split_puts_no_frame_on_both_sides():
    dm = small_dm()
    dm.setup()
    hashes = {s: set(frame_hashes(d.tensors["field"].numpy())) for s, d in dm.datasets.items()}
    assert not hashes["train"] & hashes["val"]
    assert not hashes["train"] & hashes["test"]
    assert not hashes["val"] & hashes["test"]
    assert [len(d) for d in dm.datasets.values()] == [42, 6, 12]  # 70 % / 10 % / 20 % in time order


def test_time_split_cuts_every_series_at_the_same_time():
    times = np.array([0, 1, 2, 3, 4, 2, 3, 4])  # two scenarios sharing steps 2..4
    assert time_split(times, val_steps=1, test_steps=2).tolist() == [0, 0, 1, 2, 2, 1, 2, 2]
    with pytest.raises(ConfigError, match=r"data\.val_steps"):
        time_split(times, val_steps=3, test_steps=2)


def test_a_frame_in_two_splits_raises(monkeypatch):
    dm = small_dm()
    fields, mask, times = dm._load()
    fields[-1], mask[-1] = fields[0], mask[0]  # a test frame that copies a training frame
    monkeypatch.setattr(dm, "_load", lambda: (fields, mask, times))
    with pytest.raises(DataError, match="both the train and test splits"):
        dm.setup()


def test_normalisation_uses_training_statistics_only(monkeypatch):
    reference = small_dm()
    reference.setup()
    changed = small_dm()
    fields, mask, times = changed._load()
    fields[-1] += 50.0  # the last frame is a test frame
    monkeypatch.setattr(changed, "_load", lambda: (fields, mask, times))
    changed.setup()
    np.testing.assert_array_equal(changed.pixel_mean, reference.pixel_mean)
    assert changed.field_std == reference.field_std
    new, old = changed.datasets, reference.datasets
    assert torch.equal(new["train"].tensors["field"], old["train"].tensors["field"])
    assert not torch.equal(new["test"].tensors["field"], old["test"].tensors["field"])
    train = reference.datasets["train"].tensors
    assert abs(float(train["field"][train["mask"]].mean())) < 1e-4  # zero mean on training pixels


def test_masked_pixels_are_zero_and_nan_at_valid_pixels_raises(monkeypatch):
    dm = small_dm(land_fraction=0.3)
    dm.setup()
    for split in dm.datasets.values():
        assert torch.all(split.tensors["field"][~split.tensors["mask"]] == 0)
    bad = small_dm()
    fields, mask, times = bad._load()
    fields[3, 2, 2], fields[4, 1, 1] = np.nan, np.inf
    mask[3, 2, 2] = mask[4, 1, 1] = True
    monkeypatch.setattr(bad, "_load", lambda: (fields, mask, times))
    with pytest.raises(DataError, match=r"data\.source=synthetic: 2 NaN/inf"):
        bad.setup()


def test_setup_is_idempotent_and_grid_is_padded_to_multiples_of_8():
    dm = small_dm(height=13, width=21)
    dm.setup()
    train = dm.datasets["train"]
    dm.setup("fit")
    assert dm.datasets["train"] is train
    assert dm.net_kwargs() == {"in_channels": 1, "height": 16, "width": 24}
    mask = train.tensors["mask"]
    assert not mask[..., 13:, :].any() and not mask[..., 21:].any()


def test_unknown_source_raises():
    with pytest.raises(ConfigError, match=r"data\.source='era5'.*`data\.source=synthetic`"):
        WeatherDataModule(source="era5")


def test_synthetic_generator_is_deterministic_and_smooth():
    a, mask_a = synthetic_fields(50, 32, 48, seed=3)
    b, mask_b = synthetic_fields(50, 32, 48, seed=3)
    c, _ = synthetic_fields(50, 32, 48, seed=4)
    assert a.tobytes() == b.tobytes() and mask_a.tobytes() == mask_b.tobytes()
    assert a.tobytes() != c.tobytes()
    full, _ = synthetic_fields(50, 32, 48, seed=3, land_fraction=0.0, missing_fraction=0.0)
    anomaly = full - full.mean(axis=0)
    corr = np.corrcoef(anomaly[:, :, :-1].ravel(), anomaly[:, :, 1:].ravel())[0, 1]
    assert corr > 0.9
    lag1 = np.corrcoef(anomaly[:-1].ravel(), anomaly[1:].ravel())[0, 1]
    assert lag1 > 0.5  # AR(1) evolution: consecutive frames are related


def test_missing_iris_sample_data_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "iris_sample_data", None)
    dm = WeatherDataModule(source="air_temperature")
    with pytest.raises(MissingDependencyError, match=r"pip install iris-sample-data==2\.5\.2"):
        dm.setup()


def test_real_air_temperature_split_by_years():
    pytest.importorskip("iris_sample_data")
    pytest.importorskip("h5py")
    dm = WeatherDataModule(source="air_temperature")
    dm.setup()
    frames, _, years = dm._raw
    assert frames.shape == (340, 37, 49)  # the 140 shared 1860-1999 frames kept once
    assert len(set(frame_hashes(frames))) == 340
    codes = dm._codes
    assert set(years[codes == 2]) == set(range(2080, 2100)) and (codes == 2).sum() == 40
    assert set(years[codes == 1]) == set(range(2070, 2080)) and (codes == 1).sum() == 20
    assert years[codes == 0].max() == 2069
    base = dm.baselines()
    assert base["pixel_mean"]["rmse_k"] > base["bilinear"]["rmse_k"] > 0.5


# ------------------------------------------------------------------------------- baselines
def test_bilinear_keeping_more_numbers_has_lower_error():
    fields, mask = synthetic_fields(20, 32, 48, seed=0, land_fraction=0.2)
    fill = np.full(fields.shape[1:], np.nanmean(fields))
    errors = [bilinear_rmse(fields, mask, fill, n) for n in (24, 96, 384)]
    assert errors[0] > errors[1] > errors[2] > 0
    assert bilinear_grid(130, 37, 49) == (10, 13)


def test_baselines_have_the_module_metric_names():
    base = small_dm().baselines()
    assert set(base) == {"pixel_mean", "bilinear"}
    assert all(set(v) == {"rmse_k"} and v["rmse_k"] > 0 for v in base.values())
    assert small_dm(code_size=40).baselines()["bilinear"]["rmse_k"] > base["bilinear"]["rmse_k"]


# ---------------------------------------------------------------------------------- model
@pytest.mark.parametrize("pool", [1, 2, 4, 8])
def test_network_keeps_shape_and_code_size_for_every_pool(pool):
    net = WeatherAutoencoder(height=16, width=24, code_size=20, pool=pool, channels=(4, 8, 8))
    x = torch.randn(3, 1, 16, 24)
    assert net(x).shape == x.shape
    assert net.encode(x).shape == (3, 20)


@pytest.mark.parametrize("pool", [0, 3, 16, "2", 2.0, True])
def test_invalid_pool_raises(pool):
    with pytest.raises(ConfigError, match=r"model\.pool=.*choose one of 1, 2, 4, 8"):
        WeatherAutoencoder(height=16, width=24, pool=pool)


def test_masked_pixels_are_excluded_from_loss_and_metric():
    module = WeatherAutoencoderModule(WeatherAutoencoder(height=16, width=24), field_std=2.0)
    field = torch.zeros(2, 1, 16, 24)
    mask = torch.rand(2, 1, 16, 24) > 0.3
    preds = torch.where(mask, torch.full_like(field, 0.5), torch.full_like(field, 1e6))
    assert module.compute_loss(preds, (field, mask)).item() == pytest.approx(0.25)
    metric = MaskedRMSE(scale=2.0)
    metric.update(preds, field, mask)
    assert metric.compute().item() == pytest.approx(1.0)  # 0.5 normalised units * 2 K


def test_metric_is_exact_over_the_split_not_a_mean_of_batches():
    metric = MaskedRMSE()
    metric.update(torch.ones(1, 1, 1, 1), torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1).bool())
    metric.update(torch.zeros(1, 1, 1, 3), torch.zeros(1, 1, 1, 3), torch.ones(1, 1, 1, 3).bool())
    assert metric.compute().item() == pytest.approx(0.5)  # sqrt(1/4), not (1 + 0) / 2


def test_tiny_fit_and_test_run():
    pl.seed_everything(0)
    dm = small_dm()
    net = WeatherAutoencoder(**dm.net_kwargs(), code_size=16, channels=(4, 8, 8))
    module = WeatherAutoencoderModule(net, **dm.module_kwargs())
    assert module.example_input_array.shape[1:] == (1, 16, 24)
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    trainer.fit(module, dm)
    result = trainer.test(module, dm, verbose=False)[0]
    assert set(result) == {"test/loss", "test/rmse_k"} and np.isfinite(result["test/rmse_k"])


def test_recipe_config_instantiates():
    cfg = OmegaConf.load(CONFIG)
    cfg.seed = 0  # from configs/train.yaml in a composed run
    assert CONFIG.read_text().startswith("# @package _global_")
    assert "python -m guardrail.train recipe=wea" in CONFIG.read_text()
    cfg.data.update({**SMALL, "code_size": "${model.code_size}"})
    dm = instantiate(cfg.data)
    net = instantiate(cfg.model, **dm.net_kwargs())
    module = instantiate(cfg.module, net=net, **dm.module_kwargs())
    assert cfg.recipe_name == "wea" and net.pool == 1 and net.code_size == dm.hparams.code_size
    assert isinstance(module, WeatherAutoencoderModule)
    assert module.configure_optimizers()["lr_scheduler"] is not None


# ------------------------------------------------------------------ raw records and serving
@pytest.mark.parametrize("overrides", [{}, {"source": "air_temperature"}])
def test_records_are_fields_in_kelvin_aligned_with_the_datasets(overrides):
    dm = small_dm(**overrides)
    dm.setup()
    pre = dm.preprocessor()
    for split in SPLITS:
        records = dm.records(split)
        (field,) = pre.transform(records)
        assert torch.equal(field, dm.datasets[split].tensors["field"])
        assert all(list(r) == ["temperature_k"] for r in records)  # no mask, no target
    test = dm.records("test")
    assert all(json.loads(json.dumps(r, allow_nan=False)) == r for r in test)
    _, mask, _ = dm._raw
    values = np.array(test[0]["temperature_k"], dtype=float)  # null -> NaN
    assert np.array_equal(np.isfinite(values), mask[dm._codes == 2][0])
    assert pre.fields() == {"temperature_k": "grid" if mask.all() else "sequence"}


def test_preprocessor_state_round_trips_as_json():
    dm = small_dm()
    dm.setup()
    pre = dm.preprocessor()
    again = WeatherPreprocessor.from_state_dict(json.loads(json.dumps(pre.state_dict(),
                                                                      allow_nan=False)))
    records = dm.records("val")
    assert torch.equal(again.transform(records)[0], pre.transform(records)[0])
    assert again.fields() == pre.fields() and again.field_std == pre.field_std


def test_predictions_are_the_reconstruction_in_kelvin_on_the_real_grid():
    dm = small_dm(height=13, width=21)
    dm.setup()
    pre, records = dm.preprocessor(), dm.records("test")[:2]
    (field,) = pre.transform(records)
    answered = np.array(pre.predictions(field))  # the identity "model": the input back
    assert answered.shape == (2, 13, 21)
    sent = np.array([r["temperature_k"] for r in records], dtype=float)
    valid = np.isfinite(sent)
    np.testing.assert_allclose(answered[valid], sent[valid], atol=1e-3)


@pytest.mark.parametrize("record, match", [
    ({"temperature_k": [[280.0] * 24] * 15}, r"has shape \[15, 24\]; the model was trained on "
                                              r"16x24 grids"),
    ({"temperature_k": [[280.0] * 24] * 15 + [[280.0]]}, "rectangular grid"),
    ({"temp": [[280.0]]}, "must each hold 'temperature_k'"),
])
def test_a_field_of_the_wrong_shape_is_refused_with_the_fix(record, match):
    dm = small_dm()
    dm.setup()
    assert dm.preprocessor().transform([{"temperature_k": [[280.0] * 24] * 16}])[0].shape == (
        1, 1, 16, 24)  # the training grid passes
    with pytest.raises(DataError, match=match):
        dm.preprocessor().transform([record])


@pytest.mark.slow
def test_app_run_exports_with_parity_and_prints_records(tmp_path):
    run = tmp_path / "wea"
    subprocess.run([sys.executable, "-m", "guardrail.train", "recipe=wea", "trainer.max_epochs=1",
                    "trainer.enable_progress_bar=false", "data.source=synthetic",
                    "data.n_frames=60", "data.height=16", "data.width=24", "model.code_size=16",
                    "model.channels=[4,8,8]", "guardrails.callbacks.config_lock.mode=warn",
                    f"hydra.run.dir={run}"], check=True, capture_output=True, timeout=900,
                   env=_ENV)
    done = subprocess.run([sys.executable, "-m", "guardrail", "export", str(run)],
                          capture_output=True, text=True, timeout=900, env=_ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    parity = json.loads((run / "export" / "export.json").read_text())["parity"]
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-5
    lines = subprocess.run([sys.executable, "-m", "guardrail", "records", str(run), "--split",
                            "test", "--limit", "3"], capture_output=True, text=True, check=True,
                           timeout=900, env=_ENV).stdout.splitlines()
    assert len(lines) == 3 and list(json.loads(lines[0])) == ["temperature_k"]


_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
