"""Gridded temperature fields for the WEA autoencoder: real HadGEM2/OSTIA data or synthetic.

Every source becomes frames ``[N, H, W]`` in Kelvin, a validity mask and a time coordinate;
the split is by time (the last steps are the test set), checked by content hash, and the
fields are normalised with training statistics only. See :class:`WeatherDataModule`.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from guardrail.errors import ConfigError, DataError, MissingDependencyError
from guardrail.recipes.splits import SplitLoaders

SOURCES = ("air_temperature", "ostia", "synthetic")
SPLITS = ("train", "val", "test")
# Default (val_steps, test_steps): years per scenario, months, or a fraction of synthetic frames.
_DEFAULT_STEPS = {"air_temperature": (10, 20), "ostia": (6, 12)}
_HOURS_PER_360_DAY_YEAR = 8640.0


def synthetic_fields(
    n_frames: int = 500, height: int = 32, width: int = 48, seed: int = 0,
    land_fraction: float = 0.25, missing_fraction: float = 0.01,
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth, advected, multi-scale temperature fields in Kelvin, seeded.

    A latitude gradient plus a seasonal cycle (stronger towards the pole) plus Gaussian random
    field modes (a k^-3 energy spectrum, as in the atmosphere; ~2 K RMS) that evolve as AR(1)
    processes while their phase shifts with an eastward wind (advection). Land (a static smooth
    blob pattern covering ``land_fraction``) and random gaps (``missing_fraction``) are NaN.

    Returns:
        ``(fields [N, H, W] float32 with NaN where missing, mask [N, H, W] bool, True = valid)``.

    Example:
        >>> f, m = synthetic_fields(4, 8, 12, seed=1)
        >>> f.shape, bool(np.isnan(f[~m]).all())
        ((4, 8, 12), True)

    """
    rng = np.random.default_rng(seed)
    ky = np.fft.fftfreq(height)[:, None]  # cycles per pixel, [H, 1]
    kx = np.fft.rfftfreq(width)[None, :]  # [1, W//2+1]
    k = np.hypot(ky, kx)
    amp = np.where(k > 0, (k + 0.03) ** -2.0, 0.0)  # amplitude ~ k^-2 -> power ~ k^-4
    amp /= np.sqrt((amp**2).sum())  # with norm="forward" below: ~2 K RMS anomalies

    def modes() -> np.ndarray:  # complex white noise, [H, W//2+1]
        return rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape)

    phi = 0.9  # AR(1) memory per step
    wind = rng.uniform(0.5, 1.5)  # pixels per step, eastward
    shift = np.exp(-2j * np.pi * kx * wind)  # one step of advection as a Fourier phase ramp
    coeffs = np.empty((n_frames, *k.shape), dtype=np.complex128)
    c = modes()
    for t in range(n_frames):
        c = phi * c * shift + np.sqrt(1 - phi**2) * modes()
        coeffs[t] = c
    anomalies = np.fft.irfft2(coeffs * amp, s=(height, width), norm="forward")  # [N, H, W]
    lat = np.linspace(0.0, 1.0, height)[:, None]  # 0 = equator, 1 = pole; [H, 1]
    season = np.cos(2 * np.pi * np.arange(n_frames) / 12.0)[:, None, None]  # [N, 1, 1]
    fields = 300.0 - 30.0 * lat + 8.0 * lat * season + anomalies  # [N, H, W]
    mask = np.ones(fields.shape, dtype=bool)
    if land_fraction > 0:
        land = np.fft.irfft2(modes() * amp, s=(height, width))
        mask &= land > np.quantile(land, land_fraction)
    if missing_fraction > 0:
        mask &= rng.random(fields.shape) >= missing_fraction
    return np.where(mask, fields, np.nan).astype(np.float32), mask


def frame_hashes(frames: np.ndarray) -> list[str]:
    """SHA-1 of each frame's bytes (``frames`` is ``[N, ...]``)."""
    return [hashlib.sha1(np.ascontiguousarray(f).tobytes()).hexdigest() for f in frames]


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


def _read_iris_sample(name: str, variable: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``(values, time in hours, variable attributes)`` of one iris-sample-data NetCDF-4 file."""
    why = "the WEA recipe's real gridded data (or use `data.source=synthetic`)"
    try:
        import iris_sample_data
    except ImportError as exc:
        raise MissingDependencyError("iris_sample_data", why, "iris-sample-data==2.5.2") from exc
    try:
        import h5py
    except ImportError as exc:
        raise MissingDependencyError("h5py", why, "h5py") from exc
    with h5py.File(os.path.join(iris_sample_data.path, name), "r") as f:
        var = f[variable]
        return var[...].astype(np.float32), f["time"][...], dict(var.attrs)


def load_air_temperature() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HadGEM2 A1B + E1 annual mean air temperature, duplicates dropped by content hash.

    Returns:
        ``(frames [340, 37, 49] K, mask, year [340])``; 1860-1999 is shared by both scenarios.

    """
    frames, years, seen = [], [], set()
    for name in ("A1B_north_america.nc", "E1_north_america.nc"):
        values, hours, _ = _read_iris_sample(name, "air_temperature")
        year = np.floor(1970 + hours / _HOURS_PER_360_DAY_YEAR).astype(int)  # 360-day calendar
        for frame, y, h in zip(values, year, frame_hashes(values), strict=True):
            if h not in seen:  # identical content, not just the same index, counts as a duplicate
                seen.add(h)
                frames.append(frame)
                years.append(y)
    stack = np.stack(frames)
    return stack, np.ones(stack.shape, dtype=bool), np.asarray(years)


def load_ostia() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OSTIA monthly SST ``[54, 18, 432]`` K; land (the fill value) masked; time = month index."""
    values, _, attrs = _read_iris_sample("ostia_monthly.nc", "surface_temperature")
    fill = float(np.ravel(attrs.get("_FillValue", [1e20]))[0])
    mask = ~np.isclose(values, fill, rtol=1e-6)
    return values, mask, np.arange(len(values))


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


class _Fields(Dataset):
    def __init__(self, field: torch.Tensor, mask: torch.Tensor) -> None:
        self.field, self.mask = field, mask  # [N, 1, H, W] float32 / bool

    def __len__(self) -> int:
        return len(self.field)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"field": self.field[i], "mask": self.mask[i]}


class WeatherDataModule(SplitLoaders, pl.LightningDataModule):
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
        super().__init__()
        if source not in SOURCES:
            raise ConfigError(
                f"data.source={source!r} is not a WEA data source; choose one of "
                f"{', '.join(SOURCES)} (e.g. `data.source=synthetic`)."
            )
        self.save_hyperparameters(logger=False)
        self.data: dict[str, _Fields] = {}
        self.pixel_mean: np.ndarray | None = None  # [h, w] K, real (unpadded) grid
        self.field_std: float | None = None
        self._raw: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # K, mask, time
        self._codes: np.ndarray | None = None  # [N] split of each frame: 0 train, 1 val, 2 test

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

    def setup(self, stage: str | None = None) -> None:
        """Load, split, check and normalise once; later calls do nothing."""
        if self.data:
            return
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
        train, train_mask = frames[codes == 0], mask[codes == 0]
        counts, sums = train_mask.sum(0), np.where(train_mask, train, 0).sum(0)  # [h, w]
        row = sums.sum(1) / np.maximum(counts.sum(1), 1)  # [h] latitude means
        row = np.where(counts.sum(1) > 0, row, float(train[train_mask].mean()))
        # [h, w]; pixels never valid in training (land) get their latitude's mean, which only
        # matters as the fill the bilinear baseline resamples across coasts.
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), row[:, None])
        self.pixel_mean = mean.astype(np.float32)
        self.field_std = float((train - mean)[train_mask].std())
        # Masked pixels are set to the mean first (no 1e20 overflow), so they normalise to 0.
        norm = ((np.where(mask, frames, mean) - mean) / self.field_std).astype(np.float32)
        h, w = frames.shape[1:]
        pad = (0, -w % 8, 0, -h % 8)  # right, bottom: the real region stays at [0:h, 0:w]
        field = F.pad(torch.from_numpy(norm)[:, None], pad)  # [N, 1, H8, W8]
        valid = F.pad(torch.from_numpy(mask)[:, None], pad)  # pad is False = not a pixel
        self.data = {s: _Fields(field[codes == i], valid[codes == i]) for i, s in enumerate(SPLITS)}
        self._codes = codes

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        self.setup()
        generator = torch.Generator().manual_seed(self.hparams.seed) if shuffle else None
        return DataLoader(self.data[split], batch_size=self.hparams.batch_size, shuffle=shuffle,
                          num_workers=self.hparams.num_workers, generator=generator,
                          persistent_workers=self.hparams.num_workers > 0)

    def net_kwargs(self) -> dict[str, Any]:
        """Network constructor arguments that depend on the data (padded grid size)."""
        self.setup()
        _, _, height, width = self.data["train"].field.shape
        return {"in_channels": 1, "height": int(height), "width": int(width)}

    def module_kwargs(self) -> dict[str, Any]:
        """Module constructor arguments: ``field_std`` (K per normalised unit) for ``rmse_k``."""
        self.setup()
        return {"field_std": self.field_std}

    def baselines(self) -> dict[str, dict[str, float]]:
        """Test-split RMSE in K of the per-pixel training mean and of bilinear resampling."""
        self.setup()
        frames, mask, _ = self._raw
        test, test_mask = frames[self._codes == 2], mask[self._codes == 2]
        mean = np.broadcast_to(self.pixel_mean, test.shape)
        pixel = float(np.sqrt(((test - mean)[test_mask].astype(np.float64) ** 2).mean()))
        bilinear = bilinear_rmse(test, test_mask, self.pixel_mean, self.hparams.code_size)
        return {"pixel_mean": {"rmse_k": pixel}, "bilinear": {"rmse_k": bilinear}}
