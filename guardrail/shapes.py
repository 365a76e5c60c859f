"""A shape walk: run one forward pass and record what every leaf module did to the shapes.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2), nn.Flatten())
    >>> layers = shape_walk(net, (torch.zeros(2, 1, 8, 8),))
    >>> [(l.name, l.kind, l.out_numbers) for l in layers]
    [('0', 'conv', 256), ('1', 'pool', 64), ('2', 'other', 64)]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
          nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
          nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.LPPool1d, nn.LPPool2d)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclasses.dataclass
class Layer:
    """One leaf module's call in a forward pass.

    Attributes:
        name: Module path (``encoder.0``).
        kind: ``pool``, ``conv`` (strided or not), ``linear`` or ``other``.
        in_shape: Shape of the first tensor input, batch dimension included.
        out_shape: Shape of the first tensor output.
        in_numbers: Numbers per sample going in.
        out_numbers: Numbers per sample coming out.
        stride: Spatial reduction per axis (1 if none).
        learned: The module has parameters (it can learn to keep information).
    """

    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    in_numbers: int
    out_numbers: int
    stride: int
    learned: bool

    @property
    def spatial_reduction(self) -> float:
        """How many times fewer spatial positions the output has than the input."""
        spatial_in = _prod(self.in_shape[2:]) if len(self.in_shape) > 2 else 1
        spatial_out = _prod(self.out_shape[2:]) if len(self.out_shape) > 2 else 1
        return spatial_in / max(spatial_out, 1)


def _prod(xs: Sequence[int]) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out


def first_tensor(obj: Any) -> Tensor | None:
    """The first tensor in a (nested) tuple, list or dict, or None."""
    if isinstance(obj, Tensor):
        return obj
    if isinstance(obj, list | tuple):
        for item in obj:
            found = first_tensor(item)
            if found is not None:
                return found
    if isinstance(obj, dict):
        return first_tensor(list(obj.values()))
    return None


def _kind(module: nn.Module) -> tuple[str, int]:
    if isinstance(module, _POOLS):
        return "pool", 0
    if isinstance(module, _CONVS):
        stride = module.stride if isinstance(module.stride, tuple) else (module.stride,)
        return "conv", max(stride)
    if isinstance(module, nn.Linear):
        return "linear", 1
    return "other", 1


def shape_walk(model: nn.Module, inputs: tuple[Any, ...]) -> list[Layer]:
    """Leaf modules in execution order with their shapes (one no-grad forward pass).

    Modules whose input or output holds no tensor (or whose batch is empty) are left out.
    """
    layers: list[Layer] = []

    def hook(module: nn.Module, args: Any, out: Any, name: str) -> None:
        x, y = first_tensor(args), first_tensor(out)
        if x is None or y is None or x.ndim == 0 or y.ndim == 0 or x.shape[0] == 0:
            return
        kind, stride = _kind(module)
        if kind == "pool":
            stride = round((_prod(x.shape[2:]) / max(_prod(y.shape[2:]), 1))
                           ** (1 / max(x.ndim - 2, 1)))
        layers.append(Layer(
            name, kind, tuple(x.shape), tuple(y.shape), x[0].numel(), y[0].numel(),
            stride, any(True for _ in module.parameters(recurse=False))))

    handles = [m.register_forward_hook(lambda m, a, o, n=n: hook(m, a, o, n))
               for n, m in model.named_modules() if n and not list(m.children())]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(*inputs)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return layers
