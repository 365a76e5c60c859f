"""WEA records: one temperature field in Kelvin per record, normalised as in training.

A record is ``{"temperature_k": [[...], ...]}``: the frame's ``H x W`` grid of temperatures in
Kelvin, a missing pixel (land in a sea-surface field, a gap) as ``null``. The preprocessor
subtracts the per-pixel training mean (the climatology), divides by one training deviation,
sets missing pixels to 0 (the mean) and pads the grid with zeros at the bottom and right to a
multiple of 8: the autoencoder's input ``[B, 1, H8, W8]``. Its state is the climatology and the
deviation (``H x W + 1`` numbers), fitted on the training frames only.

Example:
    >>> records = [{"temperature_k": [[280.0, 290.0], [270.0, None]]},
    ...            {"temperature_k": [[282.0, 292.0], [272.0, None]]}]
    >>> pre = WeatherPreprocessor.fit(records)  # a pixel never valid gets its row's mean
    >>> pre.fields(), pre.pixel_mean.tolist(), pre.field_std
    ({'temperature_k': 'sequence'}, [[281.0, 291.0], [271.0, 271.0]], 1.0)
    >>> (field,) = pre.transform(records[:1])
    >>> field.shape, field[0, 0, :2, :2].tolist()
    (torch.Size([1, 1, 8, 8]), [[-1.0, -1.0], [-1.0, 0.0]])
    >>> pre.predictions(field)[0]
    [[280.0, 290.0], [270.0, 271.0]]

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from guardrail.errors import DataError
from guardrail.preprocess import Preprocessor, Record

FIELD = "temperature_k"

__all__ = ["FIELD", "WeatherPreprocessor", "field_records"]


def field_records(frames: np.ndarray, mask: np.ndarray) -> list[dict[str, Any]]:
    """Frames ``[N, H, W]`` (Kelvin) as records; pixels where ``mask`` is False are ``None``.

    Example:
        >>> field_records(np.array([[[1.5, 2.0]]], np.float32), np.array([[[True, False]]]))
        [{'temperature_k': [[1.5, None]]}]

    """
    records = []
    for frame, valid in zip(frames, mask, strict=True):
        grid = frame.tolist()  # float32 -> the same value as a Python float
        for i, j in np.argwhere(~valid).tolist():
            grid[i][j] = None
        records.append({FIELD: grid})
    return records


class WeatherPreprocessor(Preprocessor):
    """Temperature-field records to the autoencoder's normalised, padded input.

    Args:
        pixel_mean: ``[H, W]`` training mean per pixel (K); pixels never valid in training hold
            their latitude's mean.
        field_std: One deviation (K) of the training anomalies.
        missing: Whether training frames had missing pixels: the field is then declared a
            ``sequence`` of rows (a ``grid`` of the data contract holds numbers only, no nulls).

    """

    def __init__(self, pixel_mean: Any, field_std: float, missing: bool = False) -> None:
        self.pixel_mean = np.asarray(pixel_mean, dtype=np.float64)  # [H, W]
        self.field_std = float(field_std)
        self.missing = bool(missing)

    @classmethod
    def fit(cls, records: Sequence[Record]) -> WeatherPreprocessor:
        """Climatology and deviation of the training ``records`` (valid pixels only)."""
        train = _frames(records, None).astype(np.float32)  # [N, H, W]: NaN where missing
        train_mask = np.isfinite(train)
        counts, sums = train_mask.sum(0), np.where(train_mask, train, 0).sum(0)  # [H, W]
        row = sums.sum(1) / np.maximum(counts.sum(1), 1)  # [H] latitude means
        row = np.where(counts.sum(1) > 0, row, float(train[train_mask].mean()))
        # pixels never valid in training (land) get their latitude's mean
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), row[:, None])
        std = float((train - mean)[train_mask].std())
        return cls(mean, std, missing=not bool(train_mask.all()))

    def fields(self) -> dict[str, str]:
        """``temperature_k``: a ``grid``, or a ``sequence`` of rows where pixels may be null."""
        return {FIELD: "sequence" if self.missing else "grid"}

    def transform(self, records: Sequence[Record]) -> tuple[torch.Tensor, ...]:
        """``(field [B, 1, H8, W8] float32,)``: normalised anomalies, 0 where missing or pad."""
        frames = _frames(records, self.pixel_mean.shape)
        valid = np.isfinite(frames)
        mean = self.pixel_mean
        norm = ((np.where(valid, frames, mean) - mean) / self.field_std).astype(np.float32)
        h, w = mean.shape
        pad = (0, -w % 8, 0, -h % 8)  # right, bottom: the real region stays at [0:h, 0:w]
        return (F.pad(torch.from_numpy(norm)[:, None], pad),)

    def predictions(self, output: torch.Tensor) -> list[Any]:
        """Each record's reconstructed field in Kelvin on its ``H x W`` grid (nested lists)."""
        h, w = self.pixel_mean.shape
        out = output.detach().cpu().double().numpy()[:, 0, :h, :w]
        return (out * self.field_std + self.pixel_mean).tolist()

    def state_dict(self) -> dict[str, Any]:
        """Climatology (nested lists), deviation and whether pixels may be missing."""
        return {"pixel_mean": self.pixel_mean.tolist(), "field_std": self.field_std,
                "missing": self.missing}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> WeatherPreprocessor:
        """The preprocessor :meth:`state_dict` describes."""
        return cls(state["pixel_mean"], state["field_std"], state.get("missing", False))


def _frames(records: Sequence[Record], shape: tuple[int, ...] | None) -> np.ndarray:
    """``[N, H, W]`` float64 of the records' fields, NaN where a pixel is null."""
    try:
        frames = np.array([r[FIELD] for r in records], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(
            f"WEA records must each hold '{FIELD}': a rectangular grid (lists of rows) of "
            f"temperatures in Kelvin, null for a missing pixel; these do not ({type(err).__name__}"
            f": {err}). Send one grid per record, every row of the same length.") from None
    if frames.ndim != 3 or (shape is not None and frames.shape[1:] != tuple(shape)):
        want = "x".join(map(str, shape)) if shape is not None else "H x W"
        raise DataError(
            f"WEA records' '{FIELD}' has shape {list(frames.shape[1:])}; the model was trained "
            f"on {want} grids. Send each field on the training grid (regrid it first).")
    return frames
