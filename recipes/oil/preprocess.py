"""OIL records: a location (a field of the survey and a grid cell) to the patch the CNN sees.

A record is ``{"field": 17, "row": 40, "col": 12}``: the index of a surveyed field and the
``(row, col)`` cell of a well, drilled or planned. The preprocessor cuts the field's maps and
well map around the cell exactly as training did (:mod:`guardrail.recipes.oil.patches`: edge
padding, the centre cell marked as a well), standardises the channels with the training
fields' statistics and scales the coordinates: ``(patch [B, 6, P, P], coords [B, 2])``.

The maps themselves are not saved: the state holds the generator's arguments (the survey is
synthetic and seeded, so they rebuild every field bit for bit), the SHA-256 of the maps and
wells they gave at training (a different numpy that drew other maps is refused, not served),
the patch size and the channel statistics: well under a kilobyte of JSON instead of ~10 MB of
maps. A team with real surveys would keep its maps in a store and save the store's version.

Example:
    >>> from guardrail.recipes.oil.generator import generate_fields
    >>> survey = {"n_fields": 3, "grid_size": 16, "wells_per_field": [2, 3], "seed": 1}
    >>> fields = generate_fields(**survey)
    >>> records = [{"field": 0, "row": 3, "col": 5}, {"field": 1, "row": 0, "col": 15}]
    >>> pre = OilPreprocessor.fit(records, survey, patch_size=5, fields=fields)
    >>> patch, coords = pre.transform(records)
    >>> patch.shape, coords.tolist()
    (torch.Size([2, 6, 5, 5]), [[-0.6000000238418579, -0.3333333134651184], [-1.0, 1.0]])
    >>> again = OilPreprocessor.from_state_dict(pre.state_dict())  # regenerates the maps
    >>> bool(torch.equal(again.transform(records)[0], patch))
    True

"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from guardrail.errors import DataError
from guardrail.preprocess import Preprocessor, Record
from guardrail.recipes.oil.generator import OilFields, generate_fields
from guardrail.recipes.oil.patches import channel_stack, extract_patches, scaled_coords

LOCATION = ("field", "row", "col")

__all__ = ["LOCATION", "OilPreprocessor", "survey_hash"]


def survey_hash(fields: OilFields) -> str:
    """SHA-256 of a survey's maps and wells: what the preprocessor must regenerate."""
    h = hashlib.sha256()
    for array in (fields.maps, fields.field_of_well, fields.wells):
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


class OilPreprocessor(Preprocessor):
    """Locations to ``(patch, coords)``: map patches of a regenerated survey, standardised.

    Args:
        survey: Keyword arguments of :func:`~guardrail.recipes.oil.generator.generate_fields`
            (JSON values) that rebuild the surveyed fields.
        patch_size: Side (odd) of the patch around the cell.
        channel_mean: Training-field mean of each of the six patch channels.
        channel_std: Training-field deviation of each patch channel.
        sha256: :func:`survey_hash` of the survey at training; checked when the maps are
            regenerated (``None``: not checked).
        fields: The survey, when the caller has it already (else generated on first use).

    Field indices are declared ``numeric``: the split is by field, so the validation and
    test fields are never in training by design, and the catalogue is every surveyed field,
    not the training ones; an index outside it is refused by :meth:`transform`.
    """

    kinds = {"field": "numeric", "row": "numeric", "col": "numeric"}

    def __init__(self, survey: Mapping[str, Any], patch_size: int,
                 channel_mean: Sequence[float], channel_std: Sequence[float],
                 sha256: str | None = None, fields: OilFields | None = None) -> None:
        self.survey = {k: (list(v) if isinstance(v, list | tuple) else v)
                       for k, v in survey.items()}
        self.patch_size = int(patch_size)
        self.channel_mean = [float(v) for v in channel_mean]
        self.channel_std = [float(v) for v in channel_std]
        self.sha256 = sha256
        self._fields = fields
        self._stacks: dict[int, np.ndarray] = {}  # field -> [6, H, W] maps + well map

    @classmethod
    def fit(cls, records: Sequence[Record], survey: Mapping[str, Any], patch_size: int,
            fields: OilFields | None = None) -> OilPreprocessor:
        """Channel statistics of the fields the training ``records`` lie in.

        The well channel is left raw (0/1): mean 0, deviation 1.
        """
        fields = fields if fields is not None else generate_fields(**survey)
        train = np.unique(np.array([int(r["field"]) for r in records], dtype=np.int64))
        maps = fields.maps[train].astype(np.float64)  # [F_tr, 5, H, W]
        return cls(survey, patch_size, [*maps.mean((0, 2, 3)).tolist(), 0.0],
                   [*maps.std((0, 2, 3)).tolist(), 1.0], survey_hash(fields), fields)

    def survey_fields(self) -> OilFields:
        """The survey, regenerated (and checked against :attr:`sha256`) on first use."""
        if self._fields is None:
            fields = generate_fields(**self.survey)
            if self.sha256 is not None and survey_hash(fields) != self.sha256:
                raise DataError(
                    f"The OIL survey regenerated from {self.survey} differs from the one the "
                    "model was trained on (its SHA-256 does not match the preprocessor's): this "
                    "numpy draws other maps. Serve with the numpy version of training "
                    "(`pip install numpy==<version in export.json>`) or train again here.")
            self._fields = fields
        return self._fields

    def transform(self, records: Sequence[Record]) -> tuple[torch.Tensor, ...]:
        """``(patch [B, 6, P, P] float32, coords [B, 2] float32)`` of the records' cells."""
        fields = self.survey_fields()
        grid = fields.maps.shape[2:]
        location = self._locations(records, len(fields.maps), grid)  # [B, 3]
        patches = np.empty((len(location), len(self.channel_mean), self.patch_size,
                            self.patch_size), dtype=np.float32)
        for f in np.unique(location[:, 0]).tolist():
            rows = np.flatnonzero(location[:, 0] == f)
            patches[rows] = extract_patches(self._stack(f), location[rows, 1:], self.patch_size)
        centre = self.patch_size // 2
        patches[:, -1, centre, centre] = 1.0  # the location is a well (drilled or planned)
        mean, std = (np.asarray(v, np.float32)[:, None, None] for v in
                     (self.channel_mean, self.channel_std))
        return (torch.from_numpy((patches - mean) / std),
                torch.from_numpy(scaled_coords(location[:, 1:], tuple(grid))))

    def predictions(self, output: torch.Tensor) -> list[Any]:
        """Each location's predicted recovery: ``{"log_eur": ln STB, "eur_stb": STB}``."""
        return [{"log_eur": v, "eur_stb": math.exp(v)}
                for v in output.detach().cpu().double().reshape(-1).tolist()]

    def state_dict(self) -> dict[str, Any]:
        """Survey arguments, its SHA-256, patch size and channel statistics (no maps)."""
        return {"survey": self.survey, "sha256": self.sha256, "patch_size": self.patch_size,
                "channel_mean": self.channel_mean, "channel_std": self.channel_std}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> OilPreprocessor:
        """The preprocessor :meth:`state_dict` describes (the maps regenerated on first use)."""
        return cls(state["survey"], state["patch_size"], state["channel_mean"],
                   state["channel_std"], state.get("sha256"))

    def _stack(self, field: int) -> np.ndarray:
        if field not in self._stacks:
            fields = self.survey_fields()
            self._stacks[field] = channel_stack(fields.maps[field],
                                                fields.wells[fields.field_of_well == field])
        return self._stacks[field]

    @staticmethod
    def _locations(records: Sequence[Record], n_fields: int,
                   grid: tuple[int, ...]) -> np.ndarray:
        try:
            location = np.array([[r[k] for k in LOCATION] for r in records], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(
                f"OIL records must each hold 'field', 'row' and 'col' (whole numbers); these do "
                f"not ({type(err).__name__}: {err}). Send e.g. "
                '{"field": 17, "row": 40, "col": 12}.') from None
        location = location.reshape(-1, len(LOCATION))
        bounds = np.array([n_fields, *grid])
        bad = ~np.isfinite(location).all(1) | (location != np.round(location)).any(1) | (
            (location < 0) | (location >= bounds)).any(1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            named = dict(zip(LOCATION, location[i].tolist(), strict=True))
            raise DataError(
                f"OIL record {i} names the location {named}"
                f", which is not in the survey ({n_fields} fields of {grid[0]}x{grid[1]} cells;"
                f" {int(bad.sum())} such records). Send a field index 0-{n_fields - 1} and a "
                f"cell with row 0-{grid[0] - 1} and col 0-{grid[1] - 1}.")
        return location.astype(np.int64)
