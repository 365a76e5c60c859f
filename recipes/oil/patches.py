"""Map patches around wells: what the OIL datamodule feeds the CNN and decision support reads.

Both the training data (:class:`~guardrail.recipes.oil.data.OilDataModule`) and
:meth:`~guardrail.recipes.oil.model.OilModule.predict_locations` cut patches the same way, so
a candidate well is seen exactly as a training well was.

Example:
    >>> maps = np.zeros((5, 8, 8), np.float32)
    >>> extract_patches(channel_stack(maps, np.array([[2, 3]])), np.array([[2, 3]]), 3).shape
    (1, 6, 3, 3)

"""

from __future__ import annotations

import numpy as np

from guardrail.recipes.oil.generator import CHANNELS

WELLS_CHANNEL = "wells"
COORD_NAMES = ("row", "col")
INPUT_CHANNELS = (*CHANNELS, WELLS_CHANNEL)


def channel_stack(maps: np.ndarray, wells: np.ndarray) -> np.ndarray:
    """``[6, H, W]``: the five maps plus a 0/1 map of the cells holding a well."""
    indicator = np.zeros((1, *maps.shape[1:]), dtype=maps.dtype)
    indicator[0, wells[:, 0], wells[:, 1]] = 1.0
    return np.concatenate([maps, indicator])


def extract_patches(channels: np.ndarray, cells: np.ndarray, size: int) -> np.ndarray:
    """``[m, C, size, size]`` patches of ``channels [C, H, W]`` centred on ``cells [m, 2]``.

    Map channels are edge-padded (geology continues past the survey); the last channel (the
    wells) is zero-padded (no known wells outside the field).

    Example:
        >>> ch = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
        >>> extract_patches(ch, np.array([[0, 0]]), 3)[0, 0].tolist()
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [3.0, 3.0, 4.0]]

    """
    half = size // 2
    padded = np.concatenate([
        np.pad(channels[:-1], ((0, 0), (half, half), (half, half)), mode="edge"),
        np.pad(channels[-1:], ((0, 0), (half, half), (half, half))),
    ])
    offsets = np.arange(size)
    rows = cells[:, 0, None] + offsets  # [m, size] in padded coordinates
    cols = cells[:, 1, None] + offsets
    return padded[:, rows[:, :, None], cols[:, None, :]].transpose(1, 0, 2, 3)


def scaled_coords(cells: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(row, col)`` cells of a grid of ``shape`` -> ``[m, 2]`` float32 in [-1, 1].

    Example:
        >>> scaled_coords(np.array([[0, 31]]), (32, 32)).tolist()
        [[-1.0, 1.0]]

    """
    scale = np.maximum(np.asarray(shape, np.float32) - 1.0, 1.0)
    return (2.0 * np.asarray(cells, np.float32) / scale - 1.0).astype(np.float32)
