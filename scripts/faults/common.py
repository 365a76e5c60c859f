"""What every fault case shares: the check ids, the case record, data and building blocks."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from lightning.pytorch import LightningModule
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

CHECKS = {"nonfinite": "probe.nonfinite", "dead_units": "probe.dead_units",
          "saturation": "probe.saturation", "resolution_loss": "probe.resolution_loss",
          "vanishing": "grad.vanishing", "exploding": "grad.exploding",
          "not_updated": "grad.not_updated", "not_zeroed": "grad.not_zeroed",
          "update_ratio": "grad.update_ratio", "initial_loss": "loss.initial",
          "divergence": "loss.divergence", "plateau": "loss.plateau",
          "oscillation": "loss.oscillation", "double_softmax": "loss.double_softmax",
          "unnormalized": "data.unnormalized", "leakage": "data.leakage"}
TASK = torch.Generator().manual_seed(1234)  # the tasks are fixed; seeds draw samples and inits
W_REG, W_CLS = torch.randn(8, generator=TASK), torch.randn(8, 10, generator=TASK)
TEMPLATES = F.interpolate(torch.randn(10, 1, 4, 4, generator=TASK), size=16, mode="bilinear")
N_TRAIN, N_VAL = 256, 128

# ----------------------------------------------------------------------------------- data
class Data(NamedTuple):
    x: Tensor
    y: Tensor
    xv: Tensor
    yv: Tensor
    seed: int


def split(x: Tensor, y: Tensor, seed: int, n_train: int = N_TRAIN) -> Data:
    """Disjoint train and validation samples of one task."""
    return Data(x[:n_train], y[:n_train], x[n_train:], y[n_train:], seed)


def rng(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(1000 + seed)


def tabular(seed: int, classes: int = 0, n_train: int = N_TRAIN) -> Data:
    """8 z-scored features; y linear in x plus noise, or the argmax of linear scores."""
    g = rng(seed)
    x = torch.randn(n_train + N_VAL, 8, generator=g)
    y = (x @ W_CLS[:, :classes]).argmax(1) if classes else \
        x @ W_REG + 0.1 * torch.randn(len(x), generator=g)
    return split(x, y, seed, n_train)


def images(seed: int, classes: int = 4) -> Data:
    """1x16x16 images: a smooth class template plus noise."""
    g = rng(seed)
    y = torch.randint(0, classes, (N_TRAIN + N_VAL,), generator=g)
    return split(TEMPLATES[y] + 3.0 * torch.randn(len(y), 1, 16, 16, generator=g), y, seed)


def sequences(seed: int, classify: bool = False) -> Data:
    """[n, 12, 4] sequences whose target depends on the last steps."""
    x = torch.randn(N_TRAIN + N_VAL, 12, 4, generator=rng(seed))
    score = x[:, -3:, 0].sum(1) / 3 ** 0.5 + 0.5 * x[:, -1, 1]
    return split(x, (score > 0).long() if classify else score, seed)


def waves(seed: int, length: int = 64, classes: int = 0) -> Data:
    """[n, 1, length] noisy sines; the class is the frequency, else x is its own target."""
    g, n = rng(seed), N_TRAIN + N_VAL
    k = torch.randint(0, max(classes, 4), (n, 1), generator=g)
    t = torch.linspace(0, 1, length) * (k + 1) + torch.rand(n, 1, generator=g)
    x = torch.sin(2 * math.pi * t).unsqueeze(1) + 0.3 * torch.randn(n, 1, length, generator=g)
    return split(x, k.squeeze(1) if classes else x, seed)


def fields(seed: int, side: int = 16) -> Data:
    """Smooth 1 x side x side fields (upsampled 8x8 noise) for autoencoders (target = x)."""
    x = F.interpolate(torch.randn(N_TRAIN + N_VAL, 1, 8, 8, generator=rng(seed)), size=side,
                      mode="bilinear")
    return split(x, x, seed)


def tokens(seed: int, vocab: int = 32, length: int = 12, classify: bool = True) -> Data:
    """Token sequences: the class is whether token 1 occurs more often than token 2; or, for
    a sequence-to-sequence task, the target is the input reversed."""
    x = torch.randint(0, vocab, (N_TRAIN + N_VAL, length), generator=rng(seed))
    y = ((x == 1).sum(1) > (x == 2).sum(1)).long() if classify else x.flip(1)
    return split(x, y, seed)


def raw(d: Data, top: float) -> Data:
    """The same data as unscaled integer readings in [0, top] (pixels, ADC counts)."""
    return d._replace(x=((d.x.clamp(-3, 3) + 3) / 6 * top).round(),
                      xv=((d.xv.clamp(-3, 3) + 3) / 6 * top).round())


# --------------------------------------------------------------------------------- models
class Fn(nn.Module):
    """A function as a layer, as people write them inline (log, norm, z-score, temperature)."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)


class Recurrent(nn.Module):
    """LSTM, GRU or RNN over [B, T, 4] with a linear head on the last step."""

    def __init__(self, kind: type[nn.RNNBase] = nn.LSTM, out: int = 1, **kw: Any) -> None:
        super().__init__()
        self.rnn, self.head = kind(4, 32, batch_first=True, **kw), nn.Linear(32, out)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.rnn(x)[0][:, -1])


def mlp(d_in: int = 8, out: int = 1, depth: int = 1, act: type[nn.Module] = nn.ReLU,
        hidden: int = 32) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(d_in if i == 0 else hidden, hidden), act()]
    return nn.Sequential(*layers, nn.Linear(hidden, out))


def cnn(classes: int = 4, act: type[nn.Module] = nn.ReLU, bn: bool = False,
        dropout: float = 0.0) -> nn.Sequential:
    """(conv 3x3, [BatchNorm], act, 2x max-pool) twice, then a linear head; 16x16 inputs."""
    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1), *([nn.BatchNorm2d(c_out)] if bn else []),
                act(), nn.MaxPool2d(2)]
    return nn.Sequential(*block(1, 8), *block(8, 16), nn.Flatten(),
                         *([nn.Dropout(dropout)] if dropout else []), nn.Linear(256, classes))


def conv1d(classes: int = 4) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
                         nn.Conv1d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
                         nn.Flatten(), nn.Linear(256, classes))


def dense_ae(down: nn.Module, shape: tuple[int, ...], kept: int, code: int = 64) -> nn.Sequential:
    """Downsample, conv, a dense code and a dense decoder back to ``shape``."""
    conv = nn.Conv2d if len(shape) == 3 else nn.Conv1d
    return nn.Sequential(down, conv(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * kept, code), nn.ReLU(), nn.Linear(code, math.prod(shape)),
                         nn.Unflatten(1, shape))


def conv_ae() -> nn.Sequential:
    """The textbook convolutional autoencoder: conv + 2x max-pool twice, transposed convs."""
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.ConvTranspose2d(4, 16, 2, stride=2), nn.ReLU(),
                         nn.ConvTranspose2d(16, 1, 2, stride=2))


def init(net: nn.Sequential, layers: Sequence[int], fn: Callable[[Tensor], Any],
         bias: float | None = None) -> nn.Sequential:
    """Apply ``fn`` to the weights of ``layers`` (and fill their biases): a bad init."""
    with torch.no_grad():
        for i in layers:
            fn(net[i].weight)
            if bias is not None:
                net[i].bias.fill_(bias)
    return net



class Run(NamedTuple):
    """What a case builds: the module, its loaders, and trainer settings that differ."""

    module: LightningModule
    train: DataLoader
    val: DataLoader | None
    trainer: dict[str, Any] = {}


class DictData(Dataset):
    """Samples as dicts, the way many datasets return them."""

    def __init__(self, x: Tensor, y: Tensor, keys: tuple[str, str] = ("features", "label")) -> None:
        self.x, self.y, self.keys = x, y, keys

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {self.keys[0]: self.x[i], self.keys[1]: self.y[i]}


def loaders(d: Data, batch_size: int = 32, dicts: bool = False,
            inputs_only: bool = False) -> tuple[DataLoader, DataLoader]:
    """Shuffled training and ordered validation loaders of ``d`` (tuples, dicts, or x alone)."""
    def dataset(x: Tensor, y: Tensor) -> Dataset:
        if dicts:
            return DictData(x, y)
        return TensorDataset(x) if inputs_only else TensorDataset(x, y)
    g = torch.Generator().manual_seed(d.seed)
    return (DataLoader(dataset(d.x, d.y), batch_size, shuffle=True, generator=g),
            DataLoader(dataset(d.xv, d.yv), 64))


def sgd(lr: float, momentum: float = 0.0) -> Callable[[Any], torch.optim.Optimizer]:
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum)


@dataclasses.dataclass(frozen=True)
class Case:
    """One model: a fault (``family`` names the check that should fire) or a healthy one."""

    name: str
    arch: str
    build: Callable[[int], Run]
    family: str | None = None  # None: a healthy model
    where: str | None = None  # the expected place, for faults that have one
    plain: bool = False  # a plain LightningModule: loss in training_step, nothing declared

    @property
    def check(self) -> str | None:
        return CHECKS.get(self.family or "")
