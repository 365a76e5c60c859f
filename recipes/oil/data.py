"""Synthetic oil fields as CNN inputs: a map patch around each well, split by field.

Each well becomes ``(patch [6, P, P], coords [2], log_eur)``: the five geological maps
(porosity, net pay, ln permeability, water saturation, depth) plus a map of the field's well
locations, cut around the well (edge-padded beyond the field; no wells out there), and its
grid position scaled to [-1, 1]. Fields, never wells, are assigned to splits, so no test
well shares a field (and its spatially correlated maps) with a training well. Map channels are
standardised with statistics of the training fields only.

Example:
    >>> dm = OilDataModule(n_fields=10, grid_size=32, wells_per_field=(5, 8), patch_size=9)
    >>> patch, coords, log_eur = next(iter(dm.train_dataloader()))
    >>> patch.shape[1:], coords.shape[1], log_eur.dtype
    (torch.Size([6, 9, 9]), 2, torch.float32)

"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from guardrail.datamodule import RecipeDataModule, check_disjoint, loader_problems
from guardrail.errors import ConfigError, DataError
from guardrail.recipes.oil.generator import OilFields, generate_fields
from guardrail.recipes.oil.patches import COORD_NAMES, INPUT_CHANNELS
from guardrail.recipes.oil.preprocess import OilPreprocessor


def split_fields(n_fields: int, val_fraction: float, test_fraction: float,
                 seed: int) -> dict[str, np.ndarray]:
    """Field indices of each split (a seeded permutation cut by fractions).

    Example:
        >>> {k: len(v) for k, v in split_fields(10, 0.2, 0.2, seed=0).items()}
        {'train': 6, 'val': 2, 'test': 2}

    """
    n_val, n_test = round(val_fraction * n_fields), round(test_fraction * n_fields)
    if min(n_val, n_test, n_fields - n_val - n_test) < 1:
        raise ConfigError(
            f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} of "
            f"data.n_fields={n_fields} leave a split without fields; each needs at least one, "
            "e.g. `data.val_fraction=0.2 data.test_fraction=0.2 data.n_fields=120`."
        )
    order = np.random.default_rng(seed).permutation(n_fields)
    return {"train": np.sort(order[n_val + n_test:]), "val": np.sort(order[:n_val]),
            "test": np.sort(order[n_val:n_val + n_test])}


def check_field_split(field_of_well: np.ndarray, wells_of: dict[str, np.ndarray]) -> None:
    """Raise :class:`DataError` if a split is empty or a field has wells on two sides.

    Example:
        >>> split = {"train": np.array([0]), "test": np.array([1, 2])}
        >>> check_field_split(np.array([0, 0, 1]), split)
        Traceback (most recent call last):
        ...
        guardrail.errors.DataError: OIL split leaks: 1 fields in both train and test (e.g. 0); ...

    """
    for name, idx in wells_of.items():
        if len(idx) == 0:
            raise DataError(f"OIL split {name!r} has no wells; raise `data.n_fields` or "
                            "`data.wells_per_field`.")
    check_disjoint({name: field_of_well[idx] for name, idx in wells_of.items()}, "fields", "OIL")


def mean_baseline(train_log_eur: np.ndarray, test_log_eur: np.ndarray) -> dict[str, float]:
    """``rmse_log_eur`` of predicting every test well by the training mean of ln EUR.

    Example:
        >>> mean_baseline(np.array([1.0, 3.0]), np.array([2.0, 4.0]))
        {'rmse_log_eur': 1.4142135623730951}

    """
    mean = float(np.mean(train_log_eur))
    return {"rmse_log_eur": float(np.sqrt(np.mean((np.asarray(test_log_eur) - mean) ** 2)))}


class _Dihedral(Dataset):
    """Training wells with a random rotation/flip of the patch (the physics has no compass)."""

    def __init__(self, patches: torch.Tensor, coords: torch.Tensor, target: torch.Tensor) -> None:
        self.patches, self.coords, self.target = patches, coords, target

    def __len__(self) -> int:
        return len(self.target)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        k, flip = torch.randint(0, 4, ()).item(), torch.randint(0, 2, ()).item()
        patch = torch.rot90(self.patches[i], int(k), dims=(1, 2))
        return (patch.flip(2) if flip else patch), self.coords[i], self.target[i]


class OilDataModule(RecipeDataModule):
    """Synthetic fields -> ``(patch, coords, log_eur)`` batches, split by field.

    Args:
        n_fields: Number of generated fields.
        grid_size: Map side in cells (~100 m each).
        wells_per_field: Inclusive ``[min, max]`` wells per field; few wells = sparse data.
        placement_bias: How strongly wells sit on structural highs (0: uniform); the
            sampling bias of real drilling.
        max_faults: At most this many faults (depth steps) per field; 0: no faults.
        noise_sigma: Sd of the log-normal EUR noise.
        patch_size: Side (odd) of the map patch around each well.
        val_fraction: Fraction of fields held out for validation.
        test_fraction: Fraction of fields held out for test.
        augment: Random rotations/flips of training patches.
        batch_size: Wells per batch.
        num_workers: DataLoader workers (the tensors are in memory; 0 is fastest here).
        seed: Seed of the generator and of the field split.

    Example:
        >>> dm = OilDataModule(n_fields=10, grid_size=32, wells_per_field=(5, 8), patch_size=9)
        >>> sorted(dm.net_kwargs()), list(dm.baselines())
        (['in_channels', 'patch_size', 'target_mean', 'target_std'], ['train_mean'])

    """

    def __init__(
        self, n_fields: int = 120, grid_size: int = 64, wells_per_field: Sequence[int] = (5, 30),
        placement_bias: float = 1.0, max_faults: int = 2, noise_sigma: float = 0.3,
        patch_size: int = 17, val_fraction: float = 0.2, test_fraction: float = 0.2,
        augment: bool = True, batch_size: int = 128, num_workers: int = 0, seed: int = 0,
    ) -> None:
        # plain ints, not Hydra's ListConfig: hparams go into checkpoints, loaded weights-only
        wells_per_field = [int(v) for v in np.atleast_1d(np.asarray(wells_per_field))]
        low, high = wells_per_field if len(wells_per_field) == 2 else (0, -1)
        problems = loader_problems(batch_size, num_workers)
        if not 1 <= low <= high <= grid_size**2:
            problems.append(f"`data.wells_per_field={wells_per_field}` must be [min, max] "
                            f"with 1 <= min <= max <= {grid_size**2}, e.g. "
                            "`data.wells_per_field=[5,30]`")
        if placement_bias < 0:
            problems.append(f"`data.placement_bias={placement_bias}` must be >= 0 (0: uniform), "
                            "e.g. `data.placement_bias=1.0`")
        if patch_size < 1 or patch_size % 2 == 0:
            problems.append(f"`data.patch_size={patch_size}` must be odd (the well is the "
                            "centre cell), e.g. `data.patch_size=17`")
        if n_fields < 3 or grid_size < 8 or max_faults < 0 or noise_sigma < 0:
            problems.append(
                f"need `data.n_fields>=3` (got {n_fields}), `data.grid_size>=8` ({grid_size}), "
                f"`data.max_faults>=0` ({max_faults}) and `data.noise_sigma>=0` ({noise_sigma})")
        if problems:
            raise ConfigError("OIL recipe config: " + "; ".join(problems) + ".")
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.save_hyperparameters(logger=False)
        self.wells_per_field = (low, high)
        self.fields: OilFields | None = None

    def shuffle_generator(self) -> None:
        """The global RNG (seeded by the app's ``seed``), which the augmentation draws from too."""
        return None

    def build_splits(self) -> dict[str, Dataset]:
        """Generate, split by field, standardise and cut patches."""
        hp = self.hparams
        fields = generate_fields(**self.survey())
        self.field_split = split_fields(hp.n_fields, hp.val_fraction, hp.test_fraction, hp.seed)
        self.well_split = {name: np.flatnonzero(np.isin(fields.field_of_well, f))
                           for name, f in self.field_split.items()}
        check_field_split(fields.field_of_well, self.well_split)
        bad = {name: int((~np.isfinite(a)).sum()) for name, a in
               (("maps", fields.maps), ("log_eur", fields.log_eur))}
        if any(bad.values()):
            raise DataError(f"OIL generator produced non-finite values {bad} with "
                            f"{dict(hp)}; report this with the config.")
        # what a client sends: a location, one record per well
        self._records = [{"field": f, "row": r, "col": c} for f, (r, c) in zip(
            fields.field_of_well.tolist(), fields.wells.tolist(), strict=True)]
        self._preprocessor = OilPreprocessor.fit(
            [self._records[i] for i in self.well_split["train"]], self.survey(),
            hp.patch_size, fields=fields)
        self.channel_mean = self._preprocessor.channel_mean
        self.channel_std = self._preprocessor.channel_std
        tensors = (*self._preprocessor.transform(self._records),  # patch, coords
                   torch.from_numpy(fields.log_eur.astype(np.float32)))
        datasets: dict[str, Dataset] = {}
        for name, idx in self.well_split.items():
            parts = [t[torch.from_numpy(idx)] for t in tensors]
            augment = name == "train" and hp.augment
            datasets[name] = _Dihedral(*parts) if augment else TensorDataset(*parts)
        self.fields = fields
        return datasets

    def survey(self) -> dict[str, Any]:
        """The generator's arguments (JSON values): they rebuild every field's maps."""
        hp = self.hparams
        return {"n_fields": int(hp.n_fields), "grid_size": int(hp.grid_size),
                "wells_per_field": list(self.wells_per_field),
                "placement_bias": float(hp.placement_bias), "max_faults": int(hp.max_faults),
                "noise_sigma": float(hp.noise_sigma), "seed": int(hp.seed)}

    def records(self, split: str) -> list[dict[str, Any]]:
        """The wells of ``split`` as a client sends them: ``{"field", "row", "col"}``."""
        self.setup()
        return [self._records[i] for i in self.well_split[split]]

    def preprocessor(self) -> OilPreprocessor:
        """Locations to patches, with the training fields' channel statistics."""
        self.setup()
        return self._preprocessor

    # ------------------------------------------------------------------------ the contract
    def net_kwargs(self) -> dict[str, Any]:
        """Return network arguments: channels, patch size, training ln EUR mean/sd."""
        self.setup()
        y = self.fields.log_eur[self.well_split["train"]]
        return {"in_channels": len(INPUT_CHANNELS), "patch_size": self.hparams.patch_size,
                "target_mean": float(y.mean()), "target_std": float(y.std())}

    def module_kwargs(self) -> dict[str, Any]:
        """Return module arguments: input names and the training-field channel mean/std."""
        self.setup()
        return {"feature_names": [*INPUT_CHANNELS, *COORD_NAMES],
                "channel_mean": self.channel_mean, "channel_std": self.channel_std}

    def compute_baselines(self) -> dict[str, dict[str, float]]:
        """Return the test ``rmse_log_eur`` of the training mean of ln EUR."""
        y = self.fields.log_eur
        return {"train_mean": mean_baseline(y[self.well_split["train"]],
                                            y[self.well_split["test"]])}
