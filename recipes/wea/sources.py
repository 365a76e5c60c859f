"""The WEA recipe's temperature fields: HadGEM2 air temperature, OSTIA SST, or synthetic.

Every source gives frames ``[N, H, W]`` in Kelvin, a validity mask (``True`` = a valid
pixel) and a time coordinate per frame, which the datamodule splits by.

Example:
    >>> fields, mask = synthetic_fields(3, 8, 12)
    >>> fields.shape, len(set(frame_hashes(np.where(mask, fields, 0))))
    ((3, 8, 12), 3)
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np

from guardrail.errors import MissingDependencyError

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
