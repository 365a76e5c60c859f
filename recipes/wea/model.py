"""The WEA convolutional autoencoder (fixed compression ratio) and its LightningModule.

``pool`` average-pools the input before the encoder's convolutions; the encoder's total
downsampling stays 8, so the code size is the same for every ``pool``, but ``pool=8`` throws
the resolution away before any convolution sees it (the paper's two-week incident).

Example:
    >>> net = WeatherAutoencoder(height=40, width=56, code_size=130, pool=2)
    >>> net(torch.zeros(3, 1, 40, 56)).shape, net.encode(torch.zeros(3, 1, 40, 56)).shape
    (torch.Size([3, 1, 40, 56]), torch.Size([3, 130]))

"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torchmetrics
from torch import Tensor, nn

from guardrail.errors import ConfigError
from guardrail.module import GuardrailModule

POOLS = (1, 2, 4, 8)
DOWNSAMPLING = 8  # encoder's total downsampling (pool x stride-2 convs); grids are padded to /8


class WeatherAutoencoder(nn.Module):
    """Conv encoder -> ``code_size`` numbers -> conv decoder, plus a learned per-pixel bias.

    Args:
        in_channels: Channels of the field (1: temperature).
        height: Grid rows, a multiple of 8 (from the data module).
        width: Grid columns, a multiple of 8 (from the data module).
        code_size: Numbers kept per frame: the compression ratio is ``height*width/code_size``.
        pool: Average-pooling factor applied to the input before the encoder: 1, 2, 4 or 8.
            The encoder uses ``log2(8/pool)`` stride-2 convolutions, so the code grid and the
            code size do not change with ``pool``; only the resolution the convolutions see.
        channels: Feature channels of the three encoder stages (mirrored in the decoder).

    Example:
        >>> net = WeatherAutoencoder(height=16, width=24, code_size=32, pool=8)
        >>> net(torch.zeros(2, 1, 16, 24)).shape
        torch.Size([2, 1, 16, 24])

    """

    def __init__(
        self, in_channels: int = 1, height: int = 40, width: int = 56, code_size: int = 130,
        pool: int = 1, channels: Sequence[int] = (16, 32, 64),
    ) -> None:
        super().__init__()
        if type(pool) is not int or pool not in POOLS:  # bool and float are not pool factors
            raise ConfigError(
                f"model.pool={pool!r} is not supported; choose one of {', '.join(map(str, POOLS))}"
                f" (the encoder's total downsampling is {DOWNSAMPLING}), e.g. `model.pool=1`."
            )
        if height % DOWNSAMPLING or width % DOWNSAMPLING:
            raise ConfigError(
                f"model.height={height} and model.width={width} must be multiples of "
                f"{DOWNSAMPLING}; take them from the data module (it pads), e.g. drop the override."
            )
        channels = tuple(int(c) for c in channels)
        if len(channels) != 3:
            raise ConfigError(f"model.channels={list(channels)} needs 3 entries, e.g. "
                              "`model.channels=[16,32,64]`.")
        self.in_channels, self.height, self.width = in_channels, height, width
        self.code_size, self.pool = code_size, pool
        grid = (height // DOWNSAMPLING, width // DOWNSAMPLING)
        n_down = (DOWNSAMPLING // pool).bit_length() - 1  # stride-2 stages: 3, 2, 1, 0
        enc: list[nn.Module] = [nn.AvgPool2d(pool)] if pool > 1 else []
        c_in = in_channels
        for i, c in enumerate(channels):
            enc += [nn.Conv2d(c_in, c, 3, stride=2 if i < n_down else 1, padding=1), nn.GELU()]
            c_in = c
        enc += [nn.Flatten(), nn.Linear(c_in * grid[0] * grid[1], code_size)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Linear(code_size, c_in * grid[0] * grid[1]),
                                nn.Unflatten(1, (c_in, *grid)), nn.GELU()]
        for c in (*channels[-2::-1], channels[0]):  # (16, 32, 64): 64 -> 32 -> 16 -> 16, x2 each
            dec += [nn.ConvTranspose2d(c_in, c, 4, stride=2, padding=1), nn.GELU()]
            c_in = c
        dec.append(nn.Conv2d(c_in, in_channels, 3, padding=1))
        self.decoder = nn.Sequential(*dec)
        # [1, C, H, W]: what every frame shares (its residual climatology, the pad) costs no code.
        self.bias = nn.Parameter(torch.zeros(1, in_channels, height, width))

    def encode(self, x: Tensor) -> Tensor:
        """``[B, C, H, W]`` -> code ``[B, code_size]``."""
        return self.encoder(x)

    def decode(self, code: Tensor) -> Tensor:
        """Code ``[B, code_size]`` -> field ``[B, C, H, W]``."""
        return self.decoder(code) + self.bias

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruct ``x`` ``[B, C, H, W]`` through the code."""
        return self.decode(self.encode(x))


class MaskedRMSE(torchmetrics.Metric):
    """RMSE over valid pixels of a whole split, in physical units (``scale`` per unit).

    Sums squared error and pixel count across batches (and ranks), so it is exact, not a mean
    of batch RMSEs.

    Example:
        >>> m = MaskedRMSE(scale=2.0)
        >>> m.update(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2),
        ...          torch.tensor([[[[True, False], [False, False]]]]))
        >>> float(m.compute())
        2.0

    """

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, scale: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.add_state("sum_sq", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor, mask: Tensor) -> None:
        """Add one batch; ``mask`` is True where a pixel is valid."""
        err = (preds.detach() - target)[mask].double() * self.scale
        self.sum_sq += err.pow(2).sum()
        self.count += mask.sum()

    def compute(self) -> Tensor:
        """Root of the mean squared error over every valid pixel seen."""
        return (self.sum_sq / self.count.clamp(min=1)).sqrt().float()


class WeatherAutoencoderModule(GuardrailModule):
    """Trains a :class:`WeatherAutoencoder` with MSE on valid pixels; reports ``rmse_k``.

    Args:
        net: The autoencoder network (it provides the grid size for the example input).
        lr: Learning rate of AdamW.
        weight_decay: Weight decay of AdamW.
        field_std: Kelvin per normalised unit (from the data module), for ``rmse_k``.
        offset_std: Std (normalised units) of a random constant added to each training frame's
            valid pixels. The time split makes the test years warmer than any training year
            (+2.6 K on HadGEM2 A1B/E1); seeing shifted frames teaches the code to carry the
            shift instead of failing out of range. 0 turns it off.
        optimizer: Optional partial optimiser replacing AdamW.
        scheduler: Optional partial LR scheduler, stepped per epoch.

    Logged keys: ``{train,val,test}/loss`` (normalised MSE) and ``{stage}/rmse_k`` (K).

    Example:
        >>> m = WeatherAutoencoderModule(WeatherAutoencoder(height=16, width=24), field_std=2.0)
        >>> mask = torch.ones(2, 1, 16, 24, dtype=torch.bool)
        >>> inputs, target = m.split_batch({"field": torch.zeros(2, 1, 16, 24), "mask": mask})
        >>> m(*inputs).shape, m.example_input_array.shape
        (torch.Size([2, 1, 16, 24]), torch.Size([2, 1, 16, 24]))

    """

    task = "reconstruction"

    def __init__(
        self, net: WeatherAutoencoder, lr: float = 3e-3, weight_decay: float = 0.0,
        field_std: float = 1.0, offset_std: float = 1.0, optimizer: Any = None,
        scheduler: Any = None,
    ) -> None:
        self.field_std = float(field_std)  # read by build_metrics, which the base calls
        super().__init__(net=net, lr=lr, weight_decay=weight_decay, optimizer=optimizer,
                         scheduler=scheduler)
        self.example_input_array = torch.zeros(2, net.in_channels, net.height, net.width)

    def build_metrics(self) -> dict[str, torchmetrics.Metric]:
        """``rmse_k``: RMSE in Kelvin over valid pixels."""
        return {"rmse_k": MaskedRMSE(scale=self.field_std)}

    def split_batch(self, batch: Any) -> tuple[tuple[Tensor], tuple[Tensor, Tensor]]:
        """``{"field", "mask"}`` (or ``(field, mask)``) -> ``((field,), (field, mask))``."""
        field, mask = (batch["field"], batch["mask"]) if isinstance(batch, dict) else batch
        return (field,), (field, mask)

    def compute_loss(self, preds: Tensor, target: tuple[Tensor, Tensor]) -> Tensor:
        """Mean squared error over valid pixels only (land, gaps and padding excluded)."""
        field, mask = target
        return (preds - field).pow(2)[mask].mean()

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """One training step on frames shifted by a random offset (see ``offset_std``)."""
        _, (field, mask) = self.split_batch(batch)
        if self.hparams.offset_std > 0:
            offset = torch.randn(len(field), 1, 1, 1, device=field.device, dtype=field.dtype)
            batch = {"field": torch.where(mask, field + self.hparams.offset_std * offset, field),
                     "mask": mask}  # [B, 1, 1, 1] offsets; masked pixels stay 0
        return self.shared_step(batch, "train")

    def update_metrics(
        self, metrics: torchmetrics.MetricCollection, preds: Tensor,
        target: tuple[Tensor, Tensor],
    ) -> None:
        """Feed the masked squared errors to ``rmse_k``."""
        field, mask = target
        metrics.update(preds.detach(), field, mask)
