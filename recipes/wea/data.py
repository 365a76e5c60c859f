"""Gridded temperature fields for the WEA autoencoder: real HadGEM2/OSTIA data or synthetic.

Every source becomes frames ``[N, H, W]`` in Kelvin, a validity mask and a time coordinate;
the split is by time (the last steps are the test set), checked by content hash, and the
fields are normalised with training statistics only. See :class:`WeatherDataModule`.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from guardrail.datamodule import SPLITS, RecipeDataModule, TensorRows
from guardrail.errors import ConfigError, DataError
from guardrail.recipes.wea.preprocess import WeatherPreprocessor, field_records
from guardrail.recipes.wea.sources import (
    frame_hashes,
    load_air_temperature,
    load_ostia,
    synthetic_fields,
)

SOURCES = ("air_temperature", "ostia", "synthetic")
# Default (val_steps, test_steps): years per scenario, months, or a fraction of synthetic frames.
_DEFAULT_STEPS = {"air_temperature": (10, 20), "ostia": (6, 12)}


def bilinear_grid(code_size: int, height: int, width: int) -> tuple[int, int]:
    """The grid with the frame's aspect ratio whose cell count is closest to ``code_size``.

    Example:
        >>> bilinear_grid(130, 37, 49)
        (10, 13)

    """
    options = [(h, max(1, round(h * width / height))) for h in range(1, height + 1)]
    return min(options, key=lambda hw: (abs(hw[0] * hw[1] - code_size), hw[0]))


def bilinear_rmse(frames: np.ndarray, mask: np.ndarray, fill: np.ndarray, code_size: int) -> float:
    """RMSE (units of ``frames``) of bilinear down- then up-sampling keeping ~``code_size`` numbers.

    ``frames``/``mask`` are ``[N, H, W]``; masked pixels are replaced by ``fill`` ``[H, W]``
    before resampling and excluded from the error.
    """
    x = torch.from_numpy(np.where(mask, frames, fill)).double()[:, None]  # [N, 1, H, W]
    size = bilinear_grid(code_size, *frames.shape[1:])
    small = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    back = F.interpolate(small, size=frames.shape[1:], mode="bilinear", align_corners=False)
    err = (back[:, 0] - x[:, 0])[torch.from_numpy(mask)]
    return float(err.pow(2).mean().sqrt())


def time_split(times: np.ndarray, val_steps: int, test_steps: int) -> np.ndarray:
    """Split codes by time: 0 train, 1 val, 2 test.

    The last ``test_steps`` distinct times are test, the ``val_steps`` before them validation;
    every series shares the cut (e.g. both scenarios), so no year is on both sides.
    """
    distinct = np.unique(times)
    if val_steps < 1 or test_steps < 1 or val_steps + test_steps >= len(distinct):
        raise ConfigError(
            f"data.val_steps={val_steps} and data.test_steps={test_steps} must be >= 1 and leave "
            f"training steps out of {len(distinct)}; e.g. `data.val_steps=10 data.test_steps=20`."
        )
    codes = np.zeros(len(times), dtype=np.int64)
    codes[times >= distinct[-(val_steps + test_steps)]] = 1
    codes[times >= distinct[-test_steps]] = 2
    return codes


class WeatherDataModule(RecipeDataModule):
    """Temperature fields split by time, normalised with training statistics, padded to /8.

    Normalisation: minus the per-pixel training mean (the climatology), divided by one scalar
    std of the training anomalies. The network then codes only anomalies: on HadGEM2 this
    trained to 0.25 K where a scalar mean/std pair reached 0.41 K (100 epochs), and one std
    keeps every error in one unit (``field_std`` K per normalised unit).
    Frames are zero-padded at the bottom/right to a multiple of 8 with ``mask=False``: padding
    keeps every real pixel (a crop would throw rows away) and leaves the real region at [0, 0].

    Args:
        source: ``air_temperature`` (HadGEM2 A1B+E1, 340 frames 37x49), ``ostia`` (SST, 54
            frames 18x432) or ``synthetic``.
        batch_size: Frames per batch.
        num_workers: DataLoader worker processes.
        seed: Seed of the synthetic generator and of the training shuffle.
        code_size: Numbers per frame the ``bilinear`` baseline keeps: the model's code size.
        val_steps: Time steps (years, months, frames) before the test steps kept for
            validation; None: 10 years, 6 months or 10 % of synthetic frames.
        test_steps: Final time steps held out for test; None: 20 years, 12 months or 20 %.
        n_frames: Synthetic only: number of frames (months).
        height: Synthetic only: grid rows.
        width: Synthetic only: grid columns.
        land_fraction: Synthetic only: fraction of pixels that are land (masked).
        missing_fraction: Synthetic only: fraction of random missing pixels per frame.

    Batches are dicts ``{"field": [B, 1, H, W] float32, "mask": [B, 1, H, W] bool}``.

    Example:
        >>> dm = WeatherDataModule(source="synthetic", n_frames=60, height=16, width=24)
        >>> sorted(dm.net_kwargs().items())
        [('height', 16), ('in_channels', 1), ('width', 24)]
        >>> batch = next(iter(dm.train_dataloader()))
        >>> batch["field"].shape, batch["mask"].dtype
        (torch.Size([16, 1, 16, 24]), torch.bool)
        >>> sorted(dm.baselines())
        ['bilinear', 'pixel_mean']

    """

    def __init__(
        self, source: str = "air_temperature", batch_size: int = 16, num_workers: int = 0,
        seed: int = 0, code_size: int = 130, val_steps: int | None = None,
        test_steps: int | None = None, n_frames: int = 500, height: int = 32, width: int = 48,
        land_fraction: float = 0.25, missing_fraction: float = 0.01,
    ) -> None:
        if source not in SOURCES:
            raise ConfigError(
                f"data.source={source!r} is not a WEA data source; choose one of "
                f"{', '.join(SOURCES)} (e.g. `data.source=synthetic`)."
            )
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.save_hyperparameters(logger=False)
        self.pixel_mean: np.ndarray | None = None  # [h, w] K, real (unpadded) grid
        self.field_std: float | None = None
        self._raw: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # K, mask, time
        self._codes: np.ndarray | None = None  # [N] split of each frame: 0 train, 1 val, 2 test
        self._records: list[dict[str, Any]] = []  # every frame as a client sends it
        self._split_rows: dict[str, np.ndarray] = {}  # split -> frame indices, in time order
        self._preprocessor: WeatherPreprocessor | None = None

    def _load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hp = self.hparams
        if hp.source == "air_temperature":
            return load_air_temperature()
        if hp.source == "ostia":
            return load_ostia()
        fields, mask = synthetic_fields(
            hp.n_frames, hp.height, hp.width, hp.seed, hp.land_fraction, hp.missing_fraction
        )
        return fields, mask, np.arange(hp.n_frames)

    def build_splits(self) -> dict[str, TensorRows]:
        """Load, split by time, check and normalise with training statistics."""
        hp = self.hparams
        frames, mask, times = self._raw = self._load()
        bad = int((~np.isfinite(frames[mask])).sum())
        if bad:
            raise DataError(
                f"data.source={hp.source}: {bad} NaN/inf values at valid (unmasked) pixels; "
                "the data is corrupt: reinstall it (`pip install --force-reinstall "
                "iris-sample-data==2.5.2`) or train on `data.source=synthetic`."
            )
        n = len(np.unique(times))
        val, test = _DEFAULT_STEPS.get(hp.source, (max(1, n // 10), max(1, n // 5)))
        val = val if hp.val_steps is None else hp.val_steps
        codes = time_split(times, val, test if hp.test_steps is None else hp.test_steps)
        hashes = np.asarray(frame_hashes(np.where(mask, frames, 0)))
        for a, b in itertools.combinations(range(3), 2):
            shared = set(hashes[codes == a]) & set(hashes[codes == b])
            if shared:
                raise DataError(
                    f"data.source={hp.source}: {len(shared)} frames are in both the {SPLITS[a]} "
                    f"and {SPLITS[b]} splits (same content hash); the split leaks."
                )
        # what a client sends: one temperature field per record, missing pixels as null
        self._records = field_records(frames, mask)
        self._split_rows = {s: np.flatnonzero(codes == i) for i, s in enumerate(SPLITS)}
        self._preprocessor = WeatherPreprocessor.fit(self.records("train"))
        self.pixel_mean = self._preprocessor.pixel_mean.astype(np.float32)
        self.field_std = self._preprocessor.field_std
        (field,) = self._preprocessor.transform(self._records)  # [N, 1, H8, W8]
        h, w = frames.shape[1:]
        pad = (0, -w % 8, 0, -h % 8)  # right, bottom: the real region stays at [0:h, 0:w]
        valid = F.pad(torch.from_numpy(mask)[:, None], pad)  # pad is False = not a pixel
        self._codes = codes
        return {s: TensorRows(field=field[codes == i], mask=valid[codes == i])
                for i, s in enumerate(SPLITS)}

    def records(self, split: str) -> list[dict[str, Any]]:
        """The frames of ``split`` as a client sends them: ``{"temperature_k": [[K, ...]]}``."""
        if not self._split_rows:
            self.setup()
        return [self._records[i] for i in self._split_rows[split]]

    def preprocessor(self) -> WeatherPreprocessor:
        """The normalisation of records, fitted on the training frames."""
        self.setup()
        return self._preprocessor

    def net_kwargs(self) -> dict[str, Any]:
        """Network constructor arguments that depend on the data (padded grid size)."""
        self.setup()
        _, _, height, width = self.datasets["train"].tensors["field"].shape
        return {"in_channels": 1, "height": int(height), "width": int(width)}

    def module_kwargs(self) -> dict[str, Any]:
        """Module constructor arguments: ``field_std`` (K per normalised unit) for ``rmse_k``."""
        self.setup()
        return {"field_std": self.field_std}

    def compute_baselines(self) -> dict[str, dict[str, float]]:
        """Test-split RMSE in K of the per-pixel training mean and of bilinear resampling."""
        frames, mask, _ = self._raw
        test, test_mask = frames[self._codes == 2], mask[self._codes == 2]
        mean = np.broadcast_to(self.pixel_mean, test.shape)
        pixel = float(np.sqrt(((test - mean)[test_mask].astype(np.float64) ** 2).mean()))
        bilinear = bilinear_rmse(test, test_mask, self.pixel_mean, self.hparams.code_size)
        return {"pixel_mean": {"rmse_k": pixel}, "bilinear": {"rmse_k": bilinear}}
