"""A time budget for an explanation: estimate each stage's cost, and scale the work to fit.

An explanation is one-off work at the end of a run; on a short run its fixed cost would
dominate (7-10 s after a 30-s fit of a small CNN). :func:`plan` estimates the seconds of each
stage from two measured unit costs (a forward row, a forward-and-backward row) and lowers the
settings, one rung of :data:`LADDER` at a time, until the estimate fits ``target_s`` or every
setting is at its floor (:data:`FLOORS`: below them the figures mean too little: bootstrap
intervals over fewer than 32 samples, IG's Riemann sum over fewer than 16 steps, a
randomisation test without a random copy). What was lowered, from what to what, is returned
for ``attribution.json``.

Example:
    >>> costs = Costs(forward_row=1e-4, backward_row=3e-4, features=10, windows=0)
    >>> settings = {"samples": 64, "n_steps": 32, "permutations": 3, "randomisations": 2,
    ...             "occlusion_samples": 0}
    >>> round(estimate(settings, costs), 3)
    2.235
    >>> new, reduced = plan(settings, costs, target_s=0.6)
    >>> reduced["n_steps"], estimate(new, costs) <= 0.6
    ({'from': 32, 'to': 16}, True)
    >>> sorted(reduced)
    ['n_steps', 'permutations', 'randomisations', 'samples']
    >>> plan(settings, costs, target_s=60.0)[1]
    {}

"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

#: The lowest value the budget may lower each setting to (a smaller configured value is kept).
FLOORS: dict[str, int] = {"samples": 32, "n_steps": 16, "permutations": 1,
                          "randomisations": 1, "occlusion_samples": 1}

#: The order settings are lowered in: first what costs most and adds least (occlusion maps
#: for more samples, a second random copy), last what the ranking itself rests on.
LADDER: tuple[tuple[str, int], ...] = (
    ("occlusion_samples", 2), ("randomisations", 1), ("n_steps", 24), ("occlusion_samples", 1),
    ("n_steps", 16), ("samples", 48), ("permutations", 2), ("samples", 32), ("permutations", 1),
)

#: Seconds matplotlib takes per heat-map panel (one panel per sample and method, plus the
#: input), colour bar included, and for the map of where in a grid the attribution lies: a
#: 2-core CPU draws and encodes a panel with its colour bar in about 0.2 s, the regions'
#: map in about 0.5 s.
PANEL_S = 0.2
GRID_MAP_S = 0.5

#: Seconds the plots cost whatever the settings: the global-importance chart (0.3-0.5 s on a
#: 2-core CPU) and, the first time in a process, importing matplotlib (0.6-1.5 s).
CHART_S = 0.4
IMPORT_S = 0.8


@dataclass(frozen=True)
class Costs:
    """Measured unit costs of one explanation's model (seconds per row) and its shape.

    ``loss_s`` is one evaluation of the randomisation test's loss (0 without one); ``windows``
    the occlusion windows per grid sample (0 without a grid); ``backward_row`` covers a
    forward and a backward pass.
    """

    forward_row: float
    backward_row: float
    features: int
    windows: int
    loss_s: float = 0.0
    grads: bool = True  # a floating-point input: IG runs (else permutation stands in)


def stage_seconds(settings: dict[str, Any], costs: Costs) -> dict[str, float]:
    """Estimated seconds of each stage under ``settings``.

    Example:
        >>> c = Costs(forward_row=1e-3, backward_row=3e-3, features=4, windows=64)
        >>> s = {"samples": 10, "n_steps": 8, "permutations": 1, "randomisations": 1,
        ...      "occlusion_samples": 2}
        >>> {k: round(v, 3) for k, v in stage_seconds(s, c).items()}
        {'permutation': 0.04, 'integrated_gradients': 0.24, 'occlusion': 0.13, \
'randomisation': 0.24, 'plots': 1.9}

    """
    n = settings["samples"]
    perm = settings["permutations"] * costs.features * n * costs.forward_row
    ig = settings["n_steps"] * n * costs.backward_row if costs.grads else 0.0
    occ = settings["occlusion_samples"] * (costs.windows + 1) * costs.forward_row \
        if costs.windows else 0.0
    copies = settings["randomisations"]
    random = copies * (ig if costs.grads else perm) + (copies + 1) * costs.loss_s \
        if copies else 0.0
    panels = 1 + (3 * min(settings["occlusion_samples"], n) if costs.windows else 0)
    return {"permutation": perm, "integrated_gradients": ig, "occlusion": occ,
            "randomisation": random,
            "plots": panels * PANEL_S + (GRID_MAP_S if costs.windows else 0.0)}


def fixed_seconds() -> float:
    """Seconds the plots cost whatever the settings: what a budget sets aside first.

    The global-importance chart, and matplotlib's import when this process has not made it.

    Example:
        >>> fixed_seconds() in (CHART_S, CHART_S + IMPORT_S)
        True

    """
    return CHART_S + (0.0 if "matplotlib.figure" in sys.modules else IMPORT_S)


def estimate(settings: dict[str, Any], costs: Costs) -> float:
    """Estimated seconds of a whole explanation under ``settings``."""
    return sum(stage_seconds(settings, costs).values())


def plan(settings: dict[str, Any], costs: Costs,
         target_s: float | None) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    """``settings`` lowered rung by rung until their estimate fits ``target_s``.

    Returns the settings to use and ``{setting: {"from": configured, "to": used}}`` for each
    one lowered. None: no target, nothing lowered. Never below :data:`FLOORS` (nor raised
    above what was configured).
    """
    new = dict(settings)
    if target_s is None:
        return new, {}
    for key, value in LADDER:
        if estimate(new, costs) <= target_s:
            break
        if new[key] > value >= FLOORS[key]:
            new[key] = value
    reduced = {k: {"from": int(settings[k]), "to": int(new[k])}
               for k in settings if new[k] != settings[k]}
    return new, reduced
