"""Decision support: the EUR a new well at given cells of a field would recover.

``predict_eur(model, field, cells)`` takes a trained :class:`OilModule` (or the path of a
checkpoint the training app saved, e.g. ``outputs/oil/<run>/checkpoints/epoch012.ckpt``), a
field's raw maps and drilled wells, and candidate ``(row, col)`` cells, and returns the
predicted EUR in stock-tank barrels and its natural log.

Example:
    >>> from guardrail.recipes.oil.generator import generate_fields
    >>> from guardrail.recipes.oil.model import OilNet
    >>> field = generate_fields(n_fields=1, grid_size=32, wells_per_field=(5, 5)).field(0)
    >>> net = OilNet(in_channels=6, patch_size=9, channels=(8, 8), target_mean=12.0)
    >>> module = OilModule(net)
    >>> out = predict_eur(module, field, [[3, 4], [20, 30]])
    >>> out.eur_stb.shape, bool(np.allclose(out.eur_stb, np.exp(out.log_eur)))
    ((2,), True)

"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from guardrail.errors import DataError
from guardrail.recipes.oil.generator import Field
from guardrail.recipes.oil.model import OilModule, OilNet


@dataclasses.dataclass(frozen=True)
class EURPrediction:
    """Predicted recovery of candidate wells.

    Attributes:
        cells: ``[m, 2]`` the candidate ``(row, col)`` cells.
        log_eur: ``[m]`` natural log of EUR (STB).
        eur_stb: ``[m]`` EUR in stock-tank barrels.

    """

    cells: np.ndarray
    log_eur: np.ndarray
    eur_stb: np.ndarray


def load_module(checkpoint: str | Path, map_location: str = "cpu") -> OilModule:
    """Rebuild a trained :class:`OilModule` from a checkpoint of the training app.

    The file is read with ``weights_only=True``: tensors and plain values only, nothing
    unpickled that could run code.

    Raises:
        DataError: The file is missing, not a checkpoint of the OIL training app, holds more
            than weights (a pickled object), or its weights do not fit the network it names.
    """
    try:
        ckpt = torch.load(checkpoint, map_location=map_location, weights_only=True)
        net = OilNet(**ckpt["oil_net_config"])
        hparams = ckpt.get("hyper_parameters", {})
        module = OilModule(net, **{k: hparams[k] for k in ("lr", "weight_decay",
                                                           "feature_names", "channel_mean",
                                                           "channel_std") if k in hparams})
        module.load_state_dict(ckpt["state_dict"])
    except Exception as err:  # unreadable, unsafe or mismatched: one clear paragraph
        first = (str(err).splitlines() or [""])[0][:300]
        raise DataError(
            f"The checkpoint {checkpoint} cannot be loaded as an OIL model ({type(err).__name__}"
            f": {first}). It is missing or corrupt, holds pickled objects besides weights "
            "(it is read with weights_only=True, so nothing in it can run code), or is not a "
            "checkpoint of `python -m guardrail.train recipe=oil`. Pass a .ckpt from an OIL "
            "run's checkpoints/ folder, or the trained OilModule itself.") from None
    return module.eval()


def predict_eur(model: OilModule | str | Path, field: Field,
                cells: np.ndarray | list[list[int]]) -> EURPrediction:
    """Predicted EUR of a new well at each of ``cells`` of ``field``.

    Args:
        model: A trained module, or the path of its checkpoint.
        field: The field's raw maps and its drilled wells (each candidate is judged alone
            with them; close neighbours share drainage, so crowded cells recover less).
        cells: ``[m, 2]`` candidate ``(row, col)`` grid cells.

    Returns:
        The cells, ln EUR and EUR (STB) of each candidate.

    """
    module = model if isinstance(model, OilModule) else load_module(model)
    cells = np.asarray(cells, np.int64).reshape(-1, 2)
    log_eur = module.predict_locations(field.maps, field.wells, cells)
    return EURPrediction(cells, log_eur, np.exp(log_eur))
