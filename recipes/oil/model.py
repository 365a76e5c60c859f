"""The OIL network (a CNN on the map patch around a well) and its GuardrailModule.

Besides training, :meth:`OilModule.predict_locations` answers the decision-support question
"what would a well at these cells of this field recover?" from raw (unstandardised) maps.

Example:
    >>> net = OilNet(in_channels=6, patch_size=17)
    >>> net(torch.zeros(3, 6, 17, 17), torch.zeros(3, 2)).shape
    torch.Size([3, 1])

"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torchmetrics
from torch import Tensor, nn

from guardrail.errors import ConfigError, DataError
from guardrail.module import GuardrailModule, SchedulerFactory
from guardrail.recipes.oil.patches import channel_stack, extract_patches, scaled_coords
from guardrail.recipes.scoring import check_feature_names


class OilNet(nn.Module):
    """Conv stack on the ``[C, P, P]`` patch, joined with the well's coordinates -> ln EUR.

    Two 3x3 conv stages (each two convs, then 2x2 max-pooling) keep a coarse spatial layout
    (where along the patch the good rock or a neighbour lies matters, so no global pooling);
    an MLP reads it with the scaled ``(row, col)``. The output is
    ``target_mean + target_std * mlp(...)``: the layers work on a unit scale.

    Args:
        in_channels: Patch channels (from the datamodule: five maps + wells).
        patch_size: Patch side (from the datamodule).
        n_coords: Coordinate features per well.
        channels: Feature channels of the two conv stages.
        hidden: Width of the MLP's hidden layer.
        dropout: Dropout before the MLP's output layer.
        target_mean: Training mean of ln EUR (from the datamodule).
        target_std: Training sd of ln EUR (from the datamodule).

    Example:
        >>> OilNet(in_channels=6, patch_size=9, channels=(8, 8))(torch.zeros(2, 6, 9, 9),
        ...                                                       torch.zeros(2, 2)).shape
        torch.Size([2, 1])

    """

    def __init__(
        self, in_channels: int = 6, patch_size: int = 17, n_coords: int = 2,
        channels: Sequence[int] = (32, 64), hidden: int = 64, dropout: float = 0.1,
        target_mean: float = 0.0, target_std: float = 1.0,
    ) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if len(channels) != 2 or min(channels) < 1:
            raise ConfigError(f"`model.channels={channels}` needs two positive widths, e.g. "
                              "`model.channels=[32,64]`.")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"`model.dropout={dropout}` must be in [0, 1), e.g. "
                              "`model.dropout=0.1`.")
        self.config = {"in_channels": in_channels, "patch_size": patch_size, "n_coords": n_coords,
                       "channels": channels, "hidden": hidden, "dropout": dropout,
                       "target_mean": float(target_mean), "target_std": float(target_std)}
        self.in_channels, self.patch_size, self.n_coords = in_channels, patch_size, n_coords
        layers: list[nn.Module] = []
        c_in = in_channels
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.GELU(),
                       nn.Conv2d(c, c, 3, padding=1), nn.GELU(), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers, nn.Flatten())
        side = patch_size // 4  # two floor-halvings: 17 -> 8 -> 4
        self.head = nn.Sequential(
            nn.Linear(c_in * side * side + n_coords, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )
        self.register_buffer("target_mean", torch.tensor(float(target_mean)))
        self.register_buffer("target_std", torch.tensor(float(target_std)))

    def forward(self, patch: Tensor, coords: Tensor) -> Tensor:
        """Ln EUR ``[B, 1]`` from ``patch [B, C, P, P]`` (standardised) and ``coords [B, 2]``."""
        h = torch.cat([self.features(patch), coords], dim=1)  # [B, c*side^2 + 2]
        return self.target_mean + self.target_std * self.head(h)


class OilModule(GuardrailModule):
    """Regression of ln EUR from a map patch and coordinates; reports ``rmse_log_eur``.

    Args:
        net: The network, e.g. :class:`OilNet`; its inputs are ``(patch, coords)``.
        lr: Learning rate of AdamW.
        weight_decay: Weight decay of AdamW.
        feature_names: One per input: the patch channels, then the coordinates (from the
            datamodule).
        channel_mean: Training-field mean of each patch channel (from the datamodule); kept
            so :meth:`predict_locations` can standardise raw maps.
        channel_std: Training-field sd of each patch channel (from the datamodule).
        scheduler: Optional partial LR scheduler taking the optimiser, stepped per epoch.

    Example:
        >>> module = OilModule(OilNet(in_channels=6, patch_size=9, channels=(8, 8)))
        >>> sorted(module.metrics["test_metrics"].keys())
        ['test/rmse_log_eur']
        >>> module(*module.example_input_array).shape
        torch.Size([2])

    """

    task = "regression"

    def __init__(
        self, net: OilNet, lr: float = 2e-3, weight_decay: float = 1e-4,
        feature_names: Sequence[str] | None = None, channel_mean: Sequence[float] | None = None,
        channel_std: Sequence[float] | None = None, scheduler: SchedulerFactory | None = None,
    ) -> None:
        feature_names = check_feature_names(
            "OilModule", feature_names, net.in_channels + net.n_coords,
            f"{net.in_channels} channels + {net.n_coords} coordinates")
        super().__init__(net=net, lr=lr, weight_decay=weight_decay, scheduler=scheduler,
                         feature_names=feature_names)
        mean = torch.zeros(net.in_channels) if channel_mean is None else torch.tensor(channel_mean)
        std = torch.ones(net.in_channels) if channel_std is None else torch.tensor(channel_std)
        self.register_buffer("channel_mean", mean.float())
        self.register_buffer("channel_std", std.float())
        self.example_input_array = (torch.zeros(2, net.in_channels, net.patch_size,
                                                net.patch_size), torch.zeros(2, net.n_coords))

    def build_metrics(self) -> dict[str, torchmetrics.Metric]:
        """``rmse_log_eur``: RMSE of ln EUR over the whole split (lower is better)."""
        return {"rmse_log_eur": torchmetrics.MeanSquaredError(squared=False)}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the network's constructor arguments, so a checkpoint alone rebuilds it."""
        checkpoint["oil_net_config"] = dict(self.net.config)

    @torch.no_grad()
    def predict_locations(self, maps: np.ndarray, wells: np.ndarray,
                          cells: np.ndarray) -> np.ndarray:
        """Ln EUR (STB) of a new well at each of ``cells`` ``[m, 2]`` (row, col) of one field.

        Args:
            maps: ``[5, H, W]`` raw maps of the field (channels of
                :data:`guardrail.recipes.oil.generator.CHANNELS`).
            wells: ``[n, 2]`` cells of the wells already drilled there (they share drainage).
            cells: Candidate cells, each judged alone with the drilled wells; a candidate on
                a drilled well's cell is that well.

        Returns:
            ``[m]`` predicted ln EUR.

        """
        maps, wells = np.asarray(maps, np.float32), np.asarray(wells, np.int64).reshape(-1, 2)
        cells = np.rint(np.asarray(cells, float)).astype(np.int64).reshape(-1, 2)
        grid = np.array(maps.shape[1:])
        if maps.ndim != 3 or maps.shape[0] + 1 != self.net.in_channels:
            raise DataError(f"maps has shape {maps.shape}; expected [{self.net.in_channels - 1}, "
                            "H, W] (the field's raw maps).")
        outside = ((cells < 0) | (cells >= grid)).any(1)
        if outside.any():
            raise DataError(f"{int(outside.sum())} candidate cells lie outside the "
                            f"{grid[0]}x{grid[1]} grid, e.g. {cells[outside][0].tolist()}.")
        patches = extract_patches(channel_stack(maps, wells), cells, self.net.patch_size)
        patches[:, -1, self.net.patch_size // 2, self.net.patch_size // 2] = 1.0  # the candidate
        x = (torch.from_numpy(patches).to(self.device) - self.channel_mean[:, None, None]) \
            / self.channel_std[:, None, None]
        coords = torch.from_numpy(scaled_coords(cells, tuple(grid))).to(self.device)
        was_training = self.training
        self.eval()
        try:
            return self(x, coords).double().cpu().numpy().reshape(-1)
        finally:
            self.train(was_training)
