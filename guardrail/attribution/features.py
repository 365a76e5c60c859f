"""What a model's inputs are, as named features: the unit every attribution is reported in.

A *feature* is a slice of one forward input along its feature axis:

========================  ==================  ==========================================
input shape               feature axis        one feature is
========================  ==================  ==========================================
``[N]``                   none                the whole input (an id, a scalar)
``[N, F]``                1                   a column (a tabular feature)
``[N, T, F]``             2                   a per-step feature across all time steps
``[N, C, H, W]``          1                   a channel (a field of a grid)
========================  ==================  ==========================================

Names come from the module's ``feature_names`` (one per feature, inputs in order, as
:class:`~guardrail.GuardrailModule` declares them); without them, or when their count does
not match, features are numbered ``x0[3]`` (input 0, column 3). A categorical column that
a model embeds is one integer column, so its embedding is never split into pieces; one-hot
columns named alike (``["colour", "colour", "colour", "size"]``) are one feature, reported
under that name.

Example:
    >>> import torch
    >>> feats = describe((torch.zeros(4, 2), torch.zeros(4, 3, dtype=torch.long)), ["a", "b"])
    >>> [(f.name, f.input, f.index, f.kind) for f in feats]
    [('x0[0]', 0, 0, 'numeric'), ('x0[1]', 0, 1, 'numeric'), ('x1[0]', 1, 0, 'categorical'), \
('x1[1]', 1, 1, 'categorical'), ('x1[2]', 1, 2, 'categorical')]
    >>> [f.name for f in describe((torch.zeros(4, 2),), ["area", "year"])]
    ['area', 'year']
    >>> [(f.name, f.index) for f in describe((torch.zeros(4, 3),), ["colour", "colour", "size"])]
    [('colour', (0, 1)), ('size', 2)]

"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Feature:
    """One named feature of one input.

    ``index`` is its position along the input's feature axis: None for the whole input, a
    tuple for the one-hot columns of one variable.
    """

    name: str
    input: int
    index: int | tuple[int, ...] | None
    kind: str  # numeric | categorical | channel | id

    @property
    def columns(self) -> tuple[int, ...]:
        """The positions along the feature axis (empty for a whole input)."""
        if self.index is None:
            return ()
        return self.index if isinstance(self.index, tuple) else (self.index,)


def feature_axis(x: Tensor) -> int | None:
    """The axis whose positions are features (see the module docstring), or None."""
    return {2: 1, 3: 2, 4: 1}.get(x.ndim)


def input_kind(x: Tensor) -> str:
    """``tabular``, ``sequence``, ``grid``, ``ids`` or ``other``, by shape and dtype."""
    if x.ndim == 1:
        return "ids" if not x.is_floating_point() else "tabular"
    return {2: "tabular", 3: "sequence", 4: "grid"}.get(x.ndim, "other")


def describe(inputs: Sequence[Tensor], names: Sequence[str] | None = None) -> list[Feature]:
    """The features of ``inputs``, named by ``names`` when there is one name per feature."""
    slots: list[tuple[int, int | None, str]] = []
    for i, x in enumerate(inputs):
        axis = feature_axis(x)
        if x.ndim == 1 or axis is None:
            slots.append((i, None, "numeric" if x.is_floating_point() else "id"))
            continue
        kind = "channel" if x.ndim == 4 else (
            "numeric" if x.is_floating_point() else "categorical")
        slots.extend((i, j, kind) for j in range(x.shape[axis]))
    named = names is not None and len(names) == len(slots)
    out: list[Feature] = []
    for k, (i, j, kind) in enumerate(slots):
        name = str(names[k]) if named and names is not None else (
            f"x{i}" if j is None else f"x{i}[{j}]")
        same = next((n for n, f in enumerate(out) if f.name == name and f.input == i
                     and j is not None and f.index is not None), None)
        if same is None:
            out.append(Feature(name, i, j, kind))
        else:  # a one-hot column of a variable already seen: the same feature
            out[same] = Feature(name, i, (*out[same].columns, j), out[same].kind)
    return out


def feature_masks(inputs: Sequence[Tensor], features: Sequence[Feature]) -> tuple[Tensor, ...]:
    """Captum feature masks: one integer mask per input, feature k's elements hold k.

    Each mask has a leading dimension of 1 and broadcasts over the batch.

    Example:
        >>> x = torch.zeros(5, 3, 2)
        >>> feature_masks((x,), describe((x,)))[0][0].tolist()
        [[0, 1], [0, 1], [0, 1]]

    """
    masks = [torch.zeros((1, *x.shape[1:]), dtype=torch.long, device=x.device) for x in inputs]
    for k, f in enumerate(features):
        if f.index is None:
            masks[f.input].fill_(k)
        for j in f.columns:
            masks[f.input].select(feature_axis(inputs[f.input]) or 0, j).fill_(k)
    return tuple(masks)


def per_feature(attributions: Sequence[Tensor | None], masks: Sequence[Tensor],
                features: Sequence[Feature], reduce: str = "sum") -> Tensor:
    """``[N, n_features]``: each sample's attribution to each feature (NaN where unknown).

    ``reduce="sum"`` adds the feature's elements (gradient methods: completeness holds per
    feature); ``"first"`` takes one element (perturbation methods give every element of a
    permuted or ablated feature the same value).

    Example:
        >>> x = torch.ones(2, 2, 3)
        >>> feats = describe((x,))
        >>> per_feature((x,), feature_masks((x,), feats), feats).tolist()
        [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]

    """
    n = next((a.shape[0] for a in attributions if a is not None), 0)
    out = torch.full((n, len(features)), float("nan"))
    for k, f in enumerate(features):
        attr = attributions[f.input]
        if attr is None:
            continue
        select = (masks[f.input][0] == k).to(attr.device)
        values = attr.detach()[:, select].float().cpu()
        out[:, k] = values.sum(1) if reduce == "sum" else values[:, 0]
    return out


# ---------------------------------------------------------------------------- grids, in space
# A grid input with one channel is one feature: "which feature" has a single answer. What a
# reader asks of it is *where*: which region of the grid moves the output. Regions are the
# cells of a 3 x 3 split of the grid's informative extent (fewer on a grid under 3 pixels).
_ROWS = {1: ("",), 2: ("top", "bottom"), 3: ("top", "middle", "bottom")}
_COLUMNS = {1: ("",), 2: ("left", "right"), 3: ("left", "centre", "right")}


def grid_extent(reference: Tensor) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)``: the informative rows and columns of a grid input.

    Rows ``[top, bottom)`` and columns ``[left, right)`` of ``reference`` ``[N, C, H, W]``.

    Border rows and columns holding one value in every reference sample and channel (the
    padding a datamodule adds to reach a size the network needs) are trimmed: nothing there
    can move the output, and no method attributes anything to them. A grid constant
    everywhere keeps its full extent.

    Example:
        >>> x = torch.nn.functional.pad(torch.randn(8, 1, 5, 6), (0, 2, 0, 3))  # right, bottom
        >>> x.shape[2:], grid_extent(x)
        (torch.Size([8, 8]), (0, 5, 0, 6))

    """
    x = reference.detach().float()
    h, w = x.shape[2], x.shape[3]

    def varying(dims: tuple[int, ...]) -> list[int]:
        return torch.nonzero(x.amax(dims) > x.amin(dims)).flatten().tolist()

    rows, columns = varying((0, 1, 3)), varying((0, 1, 2))
    if not rows or not columns:
        return 0, h, 0, w
    return rows[0], rows[-1] + 1, columns[0], columns[-1] + 1


def informative_pixels(reference: Tensor) -> Tensor:
    """``[H, W]`` bool: pixels whose value varies across reference samples (or channels).

    Padding, and masked pixels filled with one value (land in a sea-surface field), are False.

    Example:
        >>> x = torch.zeros(4, 1, 2, 2)
        >>> x[:, 0, 0, 0] = torch.arange(4.0)
        >>> informative_pixels(x).tolist()
        [[True, False], [False, False]]

    """
    x = reference.detach().float()
    return x.amax((0, 1)) > x.amin((0, 1))


def grid_regions(extent: Sequence[int]) -> list[dict[str, object]]:
    """The regions of a grid's extent ``(top, bottom, left, right)``, named in plain words.

    Each has its rows and columns (first, last; inclusive).

    Example:
        >>> [(r["name"], r["rows"], r["columns"]) for r in grid_regions((0, 37, 0, 49))][:5]
        ... # doctest: +NORMALIZE_WHITESPACE
        [('top-left', [0, 11], [0, 15]), ('top', [0, 11], [16, 32]),
         ('top-right', [0, 11], [33, 48]), ('left', [12, 24], [0, 15]),
         ('centre', [12, 24], [16, 32])]
        >>> [r["name"] for r in grid_regions((0, 2, 0, 1))]
        ['top', 'bottom']

    """
    top, bottom, left, right = extent

    def cuts(start: int, stop: int) -> list[tuple[int, int]]:
        n = min(3, stop - start)
        edges = [start + round(k * (stop - start) / n) for k in range(n + 1)]
        return [(edges[k], edges[k + 1] - 1) for k in range(n)]

    rows, columns = cuts(top, bottom), cuts(left, right)
    out: list[dict[str, object]] = []
    for row_name, (r0, r1) in zip(_ROWS[len(rows)], rows, strict=True):
        for col_name, (c0, c1) in zip(_COLUMNS[len(columns)], columns, strict=True):
            words = [w for w in (row_name, col_name) if w not in ("", "middle", "centre")]
            name = "-".join(words) or ("centre" if (row_name, col_name) != ("", "") else
                                       "whole grid")
            out.append({"name": name, "rows": [r0, r1], "columns": [c0, c1]})
    return out


def region_text(region: dict[str, object]) -> str:
    """A region in words: ``bottom-right (rows 25-36, columns 33-48)``.

    Example:
        >>> region_text({"name": "top", "rows": [0, 12], "columns": [17, 32]})
        'top (rows 0-12, columns 17-32)'

    """
    (r0, r1), (c0, c1) = region["rows"], region["columns"]  # type: ignore[misc]
    return f"{region['name']} (rows {r0}-{r1}, columns {c0}-{c1})"


def region_shares(maps: Tensor, regions: Sequence[dict[str, object]]) -> Tensor:
    """``[N, R]``: each sample's share of its total |attribution| that falls in each region.

    ``maps`` is ``[N, H, W]`` (|attribution| per pixel); samples with no attribution at all
    get zeros.

    Example:
        >>> maps = torch.zeros(1, 4, 4)
        >>> maps[0, 3, 3] = 2.0
        >>> region_shares(maps, grid_regions((0, 4, 0, 4)))[0, -1].item()  # bottom-right
        1.0

    """
    maps = maps.detach().abs().float()
    sums = []
    for region in regions:
        (r0, r1), (c0, c1) = region["rows"], region["columns"]  # type: ignore[misc]
        sums.append(maps[:, r0:r1 + 1, c0:c1 + 1].sum((1, 2)))
    per_region = torch.stack(sums, 1)
    return per_region / per_region.sum(1, keepdim=True).clamp_min(1e-30)
