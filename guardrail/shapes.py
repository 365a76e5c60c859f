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


def _prod(xs: Sequence[int]) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out


def batch_size(obj: Any) -> int | None:
    """Samples in a batch: the length of its first tensor that has a batch axis.

    Example:
        >>> batch_size((torch.tensor(3.0), {"x": torch.zeros(8, 2)}))
        8
        >>> batch_size(["no tensors"]) is None
        True
    """
    if isinstance(obj, Tensor):
        return int(obj.shape[0]) if obj.ndim > 0 else None
    items = list(obj.values()) if isinstance(obj, dict) else obj \
        if isinstance(obj, list | tuple) else []
    return next((n for n in map(batch_size, items) if n is not None), None)


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


@dataclasses.dataclass
class _Call:
    """One call of the recorded model: its first input and output tensors."""

    input: Tensor | None
    output: Tensor | None = None
    last_leaf: tuple[str, Tensor] | None = None  # the last leaf output inside it


class Recorder:
    """Record what every leaf module does to the shapes while code runs (hooks, removed after).

    Leaf modules are recorded in execution order. Where ``model`` itself is called with a
    tensor result (its ``forward``, through ``__call__``), only the leaves of its first such
    call are kept, and that call's first input and output tensors are the network's: a
    training step's loss modules and metrics run outside it. A call whose result is a scalar
    or nothing is not the network's: under DDP, Lightning routes ``training_step`` itself
    through the module's ``__call__``. With ``measure_lost``, every downsampling leaf also
    gets the share of its input's variance that pooling to its output grid and back removes.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.AvgPool1d(4), nn.Flatten(), nn.Linear(4, 16))
        >>> with Recorder(net) as walk:
        ...     _ = net(torch.randn(2, 1, 16))
        >>> [l.name for l in walk.layers], walk.input.shape, walk.output.shape
        (['0', '1', '2'], torch.Size([2, 1, 16]), torch.Size([2, 16]))
    """

    def __init__(self, model: nn.Module, measure_lost: bool = False) -> None:
        self.model = model
        self.measure_lost = measure_lost
        self.layers: list[Layer] = []
        self.lost: dict[str, float] = {}
        self.input: Tensor | None = None
        self.output: Tensor | None = None
        self.last_leaf: tuple[str, Tensor] | None = None  # the prediction's last leaf
        self._calls: list[_Call] = []
        self._open: list[int] = []  # indices of the model calls under way
        self._within: list[tuple[int, ...]] = []  # per recorded layer: the calls around it
        self._handles: list[Any] = []

    def __enter__(self) -> Recorder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Register the hooks."""
        self._handles = [self.model.register_forward_pre_hook(self._enter_model),
                         self.model.register_forward_hook(self._leave_model)]
        self._handles += [m.register_forward_hook(lambda m, a, o, n=n: self._leaf(m, a, o, n))
                          for n, m in self.model.named_modules() if n and not list(m.children())]

    def stop(self) -> None:
        """Remove the hooks (safe to call twice) and pick the network's call."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        network = next((i for i, call in enumerate(self._calls)
                        if call.output is not None and call.output.ndim), None)
        if network is None:
            return
        call = self._calls[network]
        self.input, self.output, self.last_leaf = call.input, call.output, call.last_leaf
        self.layers = [layer for layer, within in zip(self.layers, self._within, strict=True)
                       if network in within]
        self._within = [(network,)] * len(self.layers)
        self._calls = [call]

    @property
    def prediction(self) -> Tensor | None:
        """The model's output: its ``forward``'s where that was called, else the last leaf's."""
        if self.output is not None:
            return self.output
        return self.last_leaf[1] if self.last_leaf is not None else None

    @property
    def in_numbers(self) -> int | None:
        """Numbers per sample of the network's input (its first tensor, else the first leaf's)."""
        if self.input is not None and self.input.ndim:
            return self.input.numel() // max(self.input.shape[0], 1)
        return self.layers[0].in_numbers if self.layers else None

    @property
    def out_numbers(self) -> int | None:
        """Numbers per sample of the network's output, over the input's batch size."""
        if self.output is not None and self.input is not None and self.input.ndim and \
                self.output.ndim:
            return self.output.numel() // max(self.input.shape[0], 1)
        return self.layers[-1].out_numbers if self.layers else None

    def _enter_model(self, module: nn.Module, args: Any) -> None:
        self._open.append(len(self._calls))
        self._calls.append(_Call(first_tensor(args)))

    def _leave_model(self, module: nn.Module, args: Any, out: Any) -> None:
        if self._open:
            call = self._calls[self._open.pop()]
            call.output, call.last_leaf = first_tensor(out), self.last_leaf

    def _leaf(self, module: nn.Module, args: Any, out: Any, name: str) -> None:
        x, y = first_tensor(args), first_tensor(out)
        if x is None or y is None or x.ndim == 0 or y.ndim == 0 or x.shape[0] == 0:
            return
        kind, stride = _kind(module)
        if kind == "pool":
            stride = round((_prod(x.shape[2:]) / max(_prod(y.shape[2:]), 1))
                           ** (1 / max(x.ndim - 2, 1)))
        layer = Layer(name, kind, tuple(x.shape), tuple(y.shape), x[0].numel(), y[0].numel(),
                      stride, any(True for _ in module.parameters(recurse=False)))
        self.layers.append(layer)
        self._within.append(tuple(self._open))
        if y.is_floating_point():
            self.last_leaf = (name, y)
        if self.measure_lost and x.ndim >= 3 and layer.out_numbers < layer.in_numbers and \
                kind in ("pool", "conv") and x.is_floating_point():
            with torch.no_grad():
                self.lost[name] = lost_fraction(x.detach(), y.detach())


def lost_fraction(x: Tensor, y: Tensor) -> float:
    """Share of ``x``'s variance that pooling it to ``y``'s grid and back removes.

    Example:
        >>> smooth = torch.ones(1, 1, 8, 8)
        >>> lost_fraction(smooth, torch.zeros(1, 1, 2, 2))
        0.0
    """
    pooled = nn.functional.interpolate(x.float(), size=y.shape[2:], mode="area")
    back = nn.functional.interpolate(pooled, size=x.shape[2:], mode="nearest")
    var = x.float().var()
    return float(((x.float() - back) ** 2).mean() / var) if var > 0 else 0.0


def shape_walk(model: nn.Module, inputs: tuple[Any, ...]) -> list[Layer]:
    """Leaf modules in execution order with their shapes (one no-grad forward pass).

    Modules whose input or output holds no tensor (or whose batch is empty) are left out.
    """
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), Recorder(model) as walk:
            model(*inputs)
    finally:
        model.train(was_training)
    return walk.layers
