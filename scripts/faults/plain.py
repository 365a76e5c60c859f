"""Fault cases written the way users write LightningModules: nothing declared for guardrail.

No ``GuardrailModule``, no ``example_input_array``, no task: ``forward`` runs the network,
``training_step`` unpacks the batch (tuples, dicts, or the inputs alone) and computes the
loss, and the validation loss is logged under whatever key the author liked. Some steer
the optimiser by hand; some come from ``lightning.pytorch.demos``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.demos import BoringModel, LightningTransformer
from lightning.pytorch.demos.lstm import LightningLSTM
from torch import Tensor, nn
from torch.nn import functional as F
from torch.optim.lr_scheduler import ExponentialLR
from torch.utils.data import DataLoader, TensorDataset

from faults.common import (
    N_TRAIN,
    N_VAL,
    Case,
    Data,
    Run,
    fields,
    images,
    loaders,
    raw,
    rng,
    sequences,
    tabular,
    tokens,
    waves,
)

Loss = Callable[[Tensor, Tensor], Tensor]


def classify(out: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(out, y)


def regress(out: Tensor, y: Tensor) -> Tensor:
    return F.mse_loss(out.squeeze(-1), y)


class LitModel(LightningModule):
    """The module of most tutorials: ``(x, y)`` batches, the loss in ``training_step``."""

    def __init__(self, net: nn.Module, loss: Loss = classify, lr: float = 1e-3,
                 optimizer: str = "adam", val_key: str = "val_loss", momentum: float = 0.0,
                 gamma: float | None = None) -> None:
        super().__init__()
        self.net, self.loss_fn, self.lr, self.val_key = net, loss, lr, val_key
        self.optimizer_name, self.momentum, self.gamma = optimizer, momentum, gamma

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def unpack(self, batch: Any) -> tuple[Tensor, Tensor]:
        x, y = batch
        return x, y

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = self.unpack(batch)
        loss = self.loss_fn(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = self.unpack(batch)
        self.log(self.val_key, self.loss_fn(self(x), y))

    def configure_optimizers(self) -> Any:
        if self.optimizer_name == "sgd":
            opt = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=self.momentum)
        else:
            opt = torch.optim.Adam(self.parameters(), lr=self.lr)
        if self.gamma is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": ExponentialLR(opt, self.gamma)}


class DictModel(LitModel):
    """Dict batches: ``{"features": x, "label": y}``."""

    def unpack(self, batch: Any) -> tuple[Tensor, Tensor]:
        return batch["features"], batch["label"]


class AutoEncoder(LightningModule):
    """Batches of inputs alone; the target is the input."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, lr: float = 1e-3) -> None:
        super().__init__()
        self.encoder, self.decoder, self.lr = encoder, decoder, lr

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        (x,) = batch
        loss = F.mse_loss(self(x), x)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        (x,) = batch
        self.log("val_loss", F.mse_loss(self(x), x))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class TwoLayer(nn.Module):
    """fc1 -> act1 -> fc2, the layers named the way people name them."""

    def __init__(self, d_in: int = 8, hidden: int = 32, out: int = 1,
                 act: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.fc1, self.act1, self.fc2 = nn.Linear(d_in, hidden), act(), nn.Linear(hidden, out)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act1(self.fc1(x)))


class ManualModel(LightningModule):
    """Manual optimisation, one optimiser; ``zero`` decides whether gradients are reset."""

    def __init__(self, net: nn.Module, zero: bool = True, lr: float = 1e-2,
                 optimizer: str = "sgd") -> None:
        super().__init__()
        self.automatic_optimization = False
        self.net, self.zero, self.lr, self.optimizer_name = net, zero, lr, optimizer

    def training_step(self, batch: Any, batch_idx: int) -> None:
        opt = self.optimizers()
        x, y = batch
        if self.zero:
            opt.zero_grad()
        loss = F.mse_loss(self.net(x).squeeze(-1), y)
        self.manual_backward(loss)
        opt.step()
        self.log("train_loss", loss)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", F.mse_loss(self.net(x).squeeze(-1), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        cls = torch.optim.SGD if self.optimizer_name == "sgd" else torch.optim.Adam
        return cls(self.parameters(), lr=self.lr)


class NoZeroGrad(LitModel):
    """Overrides ``optimizer_zero_grad`` (to save time, say) and never resets gradients."""

    def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: Any) -> None:
        pass


class GAN(LightningModule):
    """A small GAN on 8-d data: two optimisers stepped by hand (the textbook loop)."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.generator = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 8))
        self.discriminator = nn.Sequential(nn.Linear(8, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real, _ = batch
        opt_g, opt_d = self.optimizers()
        fake = self.generator(torch.randn(len(real), 4, device=real.device))
        d_loss = F.softplus(-self.discriminator(real)).mean() + \
            F.softplus(self.discriminator(fake.detach())).mean()
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        g_loss = F.softplus(-self.discriminator(fake)).mean()
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        self.log_dict({"d_loss": d_loss, "g_loss": g_loss})

    def configure_optimizers(self) -> Any:
        return (torch.optim.Adam(self.generator.parameters(), 2e-4, betas=(0.5, 0.999)),
                torch.optim.Adam(self.discriminator.parameters(), 2e-4, betas=(0.5, 0.999)))


class Detached(nn.Module):
    """A ``.detach()`` left in ``forward`` (from debugging): the body never learns."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU())
        self.head = nn.Linear(32, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x).detach())


class FrozenByNoGrad(nn.Module):
    """An encoder run under ``torch.no_grad()`` but left in the optimiser."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                     nn.Flatten())
        self.classifier = nn.Linear(8 * 64, 4)

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            features = self.encoder(x)
        return self.classifier(features)


class HeadOnlyOptimizer(LitModel):
    """Builds the optimiser from the body only: the head never changes."""

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.net.body.parameters(), lr=1e-3)


class Body(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 32), nn.ReLU())
        self.head = nn.Linear(32, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


class LogInForward(nn.Module):
    """``torch.log`` of a ReLU output, written inline in ``forward``."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 32), nn.Linear(32, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(torch.log(F.relu(self.fc1(x))))


class FunctionalMLP(nn.Module):
    """Layers in a ModuleList, activations called functionally."""

    def __init__(self, depth: int, act: Callable[[Tensor], Tensor] = F.relu, d_in: int = 8,
                 hidden: int = 32, out: int = 1) -> None:
        super().__init__()
        self.act = act
        self.layers = nn.ModuleList(nn.Linear(d_in if i == 0 else hidden, hidden)
                                    for i in range(depth))
        self.out = nn.Linear(hidden, out)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = self.act(layer(x))
        return self.out(x)


class SmallCNN(nn.Module):
    """Two conv blocks with functional ReLU and pooling, then a linear head (16x16 inputs)."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 16, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock: two 3x3 convs with BatchNorm and a shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        self.layer1, self.layer2 = BasicBlock(16, 16), BasicBlock(16, 32, stride=2)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(32, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.layer2(self.layer1(self.stem(x)))).flatten(1))


class TokenTransformer(nn.Module):
    """A Transformer encoder over token ids, mean-pooled into a classifier."""

    def __init__(self, vocab: int = 32, d: int = 32, classes: int = 2) -> None:
        super().__init__()
        self.embed, self.pos = nn.Embedding(vocab, d), nn.Parameter(torch.zeros(1, 12, d))
        layer = nn.TransformerEncoderLayer(d, 4, 64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(d, classes)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.head(self.encoder(self.embed(tokens) + self.pos).mean(1))


class Seq2Seq(LightningModule):
    """A GRU encoder-decoder with teacher forcing: reverse a token sequence."""

    def __init__(self, vocab: int = 32, hidden: int = 64, softmax: bool = False) -> None:
        super().__init__()
        self.vocab, self.softmax = vocab, softmax
        self.embed = nn.Embedding(vocab + 1, 32)  # + a start token
        self.encoder = nn.GRU(32, hidden, batch_first=True)
        self.decoder = nn.GRU(32, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        _, h = self.encoder(self.embed(src))
        out, _ = self.decoder(self.embed(tgt_in), h)
        logits = self.out(out)  # [B, T, vocab]
        return logits.softmax(-1) if self.softmax else logits

    def _loss(self, batch: Any) -> Tensor:
        src, tgt = batch
        start = torch.full_like(tgt[:, :1], self.vocab)
        logits = self(src, torch.cat([start, tgt[:, :-1]], 1))
        return F.cross_entropy(logits.reshape(-1, self.vocab), tgt.reshape(-1))

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", self._loss(batch))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=3e-3)


def _language(seed: int, vocab: int = 32, length: int = 16, n: int = 256) -> tuple[Tensor, ...]:
    """(inputs, next tokens) of a repeating-pattern language: predictable, not trivial."""
    g = rng(seed)
    period = torch.randint(2, 5, (n, 1), generator=g)
    start = torch.randint(0, vocab, (n, 1), generator=g)
    pos = torch.arange(length + 1)
    seq = (start + (pos % period) * 7) % vocab
    return seq[:, :-1], seq[:, 1:]


class OfflineTransformer(LightningTransformer):
    """Lightning's demo Transformer; its ``prepare_data`` would download WikiText-2."""

    def prepare_data(self) -> None:
        pass


class OfflineLSTM(LightningLSTM):
    """Lightning's demo LSTM language model, without the WikiText-2 download."""

    def prepare_data(self) -> None:
        pass


def demo_transformer(seed: int) -> Run:
    x, y = _language(seed)
    module = OfflineTransformer(vocab_size=32)
    return Run(module, DataLoader(TensorDataset(x, y), 16, shuffle=True,
                                  generator=torch.Generator().manual_seed(seed)),
               None, {"max_epochs": 3})


def demo_lstm(seed: int) -> Run:
    x, y = _language(seed, n=320)
    module = OfflineLSTM(vocab_size=32)
    module.model = type(module.model)(vocab_size=32, ninp=64, nhid=64, nlayers=2)
    return Run(module, DataLoader(TensorDataset(x, y), 20, shuffle=False, drop_last=True), None,
               {"max_epochs": 4, "gradient_clip_val": 0.25})


def demo_boring(seed: int) -> Run:
    """Lightning's BoringModel, a test fixture, as it ships: SGD at lr 0.1 on batches of one
    32-d Gaussian sample steps each weight by about lr * |x|^2 = 3.2 times the error, past
    the stability limit of 2, and the loss climbs to 1e3-1e4 in two epochs (first filed as a
    healthy model; the guardrails' loss.divergence was right)."""
    module = BoringModel()
    return Run(module, module.train_dataloader(), module.val_dataloader(), {"max_epochs": 2})


def _ae(encoder: nn.Module, decoder: nn.Module, d: Data, lr: float = 1e-3) -> Run:
    return Run(AutoEncoder(encoder, decoder, lr), *loaders(d, inputs_only=True))


def _pool_before_encoder(seed: int) -> Run:
    """The WEA incident as people write it: a 2-D average pool in front of the encoder."""
    encoder = nn.Sequential(nn.AvgPool2d(8), nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                            nn.Flatten(), nn.Linear(8 * 16, 64), nn.ReLU())
    decoder = nn.Sequential(nn.Linear(64, 32 * 32), nn.Unflatten(1, (1, 32, 32)))
    return _ae(encoder, decoder, fields(seed, side=32))


class StridedStem(nn.Module):
    """An 8x8 stride-8 convolutional stem, then a dense code and decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 8, stride=8)
        self.code = nn.Sequential(nn.Flatten(), nn.Linear(2 * 16, 64), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.code(F.relu(self.stem(x)))


def _strided_stem(seed: int) -> Run:
    decoder = nn.Sequential(nn.Linear(64, 32 * 32), nn.Unflatten(1, (1, 32, 32)))
    return _ae(StridedStem(), decoder, fields(seed, side=32))


def _sequence_ae_maxpool(seed: int) -> Run:
    encoder = nn.Sequential(nn.MaxPool1d(16), nn.Conv1d(1, 4, 3, padding=1), nn.ReLU(),
                            nn.Flatten(), nn.Linear(4 * 16, 32), nn.ReLU())
    decoder = nn.Sequential(nn.Linear(32, 256), nn.Unflatten(1, (1, 256)))
    return _ae(encoder, decoder, waves(seed, length=256))


def _textbook_conv_ae(seed: int) -> Run:
    encoder = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    decoder = nn.Sequential(nn.ConvTranspose2d(8, 16, 2, stride=2), nn.ReLU(),
                            nn.ConvTranspose2d(16, 1, 2, stride=2))
    return _ae(encoder, decoder, fields(seed), lr=3e-3)


def _lit(net: nn.Module, d: Data, loss: Loss = classify, cls: type[LitModel] = LitModel,
         batch_size: int = 32, trainer: dict[str, Any] | None = None, **kw: Any) -> Run:
    return Run(cls(net, loss, **kw), *loaders(d, batch_size, dicts=cls is DictModel),
               trainer or {})


def _scaled_head(net: nn.Module, factor: float) -> nn.Module:
    with torch.no_grad():
        last = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
        last.weight.mul_(factor)
    return net


def _biased(net: TwoLayer, bias: float) -> TwoLayer:
    with torch.no_grad():
        net.fc1.bias.fill_(bias)
    return net


def _nan_in_dict(seed: int) -> Run:
    d = tabular(seed, 4)
    d.x[int(torch.randint(0, N_TRAIN, (1,), generator=rng(seed))), 2] = float("nan")
    return _lit(TwoLayer(out=4), d, cls=DictModel)


def _shuffled_300_steps(seed: int) -> Run:
    """Labels shuffled apart from their inputs; 300 steps in 2 epochs."""
    d, g = tabular(seed, 4, n_train=1200), torch.Generator().manual_seed(seed)
    d = d._replace(y=d.y[torch.randperm(len(d.y), generator=g)],
                   yv=d.yv[torch.randperm(len(d.yv), generator=g)])
    return _lit(TwoLayer(out=4, hidden=64), d, batch_size=8, trainer={"max_epochs": 2}, lr=3e-3)


def _off_by_one_dict(seed: int) -> Run:
    d = tabular(seed, 4)
    d = d._replace(y=d.y.roll(1), yv=d.yv.roll(1))
    return _lit(TwoLayer(out=4), d, cls=DictModel, val_key="valid_loss", lr=1e-2)


def _duplicated_then_split(seed: int) -> Run:
    """Every record twice in the table (a join that duplicated rows), then a random split."""
    x, y, *_ = tabular(seed)
    x, y = torch.cat([x, x]), torch.cat([y, y])
    p = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    d = Data(x[p[N_VAL:]], y[p[N_VAL:]], x[p[:N_VAL]], y[p[:N_VAL]], seed)
    return _lit(TwoLayer(), d, regress)


def _dollars(seed: int) -> Run:
    d = tabular(seed)
    d.x[:, 5], d.xv[:, 5] = 52_000 + 15_000 * d.x[:, 5], 52_000 + 15_000 * d.xv[:, 5]
    return _lit(TwoLayer(), d, regress)


def _softmax_in_step(seed: int) -> Run:
    class SoftmaxThenCE(LitModel):
        def training_step(self, batch: Any, batch_idx: int) -> Tensor:
            x, y = batch
            probs = self(x).softmax(dim=1)
            return F.cross_entropy(probs, y)
    return _lit(TwoLayer(out=10), tabular(seed, 10), cls=SoftmaxThenCE)


def _manual_sgd_huge(seed: int) -> Run:
    return Run(ManualModel(FunctionalMLP(3), lr=50.0), *loaders(tabular(seed)))


def _label_smoothing(out: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(out, y, label_smoothing=0.1)


def _binary(seed: int) -> Data:
    d = tabular(seed, 2)
    return d._replace(y=d.y.float(), yv=d.yv.float())


def _bce_logits(out: Tensor, y: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(out.squeeze(-1), y)


def _bce(out: Tensor, y: Tensor) -> Tensor:
    return F.binary_cross_entropy(out.squeeze(-1), y)


def _nll_of_log(out: Tensor, y: Tensor) -> Tensor:
    return F.nll_loss(torch.log(out), y)


def _with_softmax(net: nn.Module) -> nn.Module:
    return nn.Sequential(net, nn.Softmax(dim=1))


def _with_sigmoid(net: nn.Module) -> nn.Module:
    return nn.Sequential(net, nn.Sigmoid())


def _biased_functional(net: FunctionalMLP) -> FunctionalMLP:
    """The second hidden layer's units start far below zero, before an F.relu."""
    with torch.no_grad():
        net.layers[1].bias.fill_(-20.0)
    return net


def _scaled_first(net: TwoLayer, factor: float) -> TwoLayer:
    with torch.no_grad():
        net.fc1.weight.mul_(factor)
    return net


class _Recurrent(nn.Module):
    def __init__(self, kind: type[nn.RNNBase] = nn.GRU) -> None:
        super().__init__()
        self.rnn, self.head = kind(4, 32, batch_first=True), nn.Linear(32, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.rnn(x)[0][:, -1])


def _binary_images(seed: int) -> Data:
    d = images(seed, classes=2)
    return d._replace(y=d.y.float(), yv=d.yv.float())


P = Case
CASES: list[Case] = [
    P("plain_log_in_forward", "MLP", lambda s: _lit(LogInForward(), tabular(s), regress),
      "nonfinite", "net", plain=True),
    P("plain_nan_in_dict_batch", "MLP", _nan_in_dict, "nonfinite", "input", plain=True),
    P("plain_manual_sgd_lr_50", "MLP", _manual_sgd_huge, "nonfinite", plain=True),
    P("plain_functional_relu_bias_minus_20", "MLP", lambda s: _lit(
        _biased_functional(FunctionalMLP(2, out=4)), tabular(s, 4)), "dead_units",
      "net.layers.1", plain=True),
    P("plain_relu_bias_minus_20", "MLP", lambda s: _lit(
        _biased(TwoLayer(out=4), -20.0), tabular(s, 4)), "dead_units", "net.act1", plain=True),
    P("plain_tanh_weights_x50", "MLP", lambda s: _lit(_scaled_first(TwoLayer(act=nn.Tanh), 50.0),
                                                        tabular(s), regress),
      "saturation", "net.act1", plain=True),
    P("plain_sigmoid_stack_functional", "MLP", lambda s: _lit(
        FunctionalMLP(12, torch.sigmoid), tabular(s), regress), "vanishing", "net.layers.0",
      plain=True),
    P("plain_deep_relu_sgd_lr_0.5", "MLP", lambda s: _lit(
        FunctionalMLP(5), tabular(s), regress, optimizer="sgd", lr=0.5), "exploding",
      plain=True),
    P("plain_detach_in_forward", "MLP", lambda s: _lit(Detached(), tabular(s), regress),
      "not_updated", "net.body.0.weight", plain=True),
    P("plain_encoder_under_no_grad", "CNN", lambda s: _lit(FrozenByNoGrad(), images(s)),
      "not_updated", "net.encoder.0.weight", plain=True),
    P("plain_optimizer_without_head", "MLP", lambda s: _lit(
        Body(), tabular(s), regress, cls=HeadOnlyOptimizer), "not_updated", "net.head.weight",
      plain=True),
    P("plain_manual_without_zero_grad", "MLP", lambda s: Run(
        ManualModel(FunctionalMLP(2), zero=False, lr=1e-3), *loaders(tabular(s))),
      "not_zeroed", "training_step", plain=True),
    P("plain_zero_grad_overridden", "CNN", lambda s: _lit(SmallCNN(), images(s), cls=NoZeroGrad),
      "not_zeroed", "optimizer_zero_grad", plain=True),
    P("plain_adam_lr_1e-8", "GRU", lambda s: _lit(
        _Recurrent(), sequences(s), regress, lr=1e-8), "update_ratio", plain=True),
    P("plain_adam_lr_10", "CNN", lambda s: _lit(SmallCNN(), images(s), lr=10.0),
      "update_ratio", plain=True),
    P("plain_token_transformer_head_x200", "Transformer", lambda s: _lit(
        _scaled_head(TokenTransformer(), 200.0), tokens(s)), "initial_loss", "loss",
      plain=True),
    P("plain_head_weights_x200", "MLP", lambda s: _lit(
        _scaled_head(TwoLayer(out=10), 200.0), tabular(s, 10)), "initial_loss", "loss",
      plain=True),
    P("plain_binary_head_x100", "CNN", lambda s: _lit(
        _scaled_head(SmallCNN(classes=1), 100.0), _binary_images(s), _bce_logits),
      "initial_loss", "loss", plain=True),
    P("plain_exponential_lr_gamma_3", "MLP", lambda s: _lit(
        TwoLayer(), tabular(s), regress, optimizer="sgd", lr=0.01, gamma=3.0), "divergence",
      "loss", plain=True),
    P("demo_boring_model_diverges", "demo", demo_boring, "divergence", "loss", plain=True),
    P("plain_shuffled_labels_300_steps", "MLP", _shuffled_300_steps, "plateau", "val_loss",
      plain=True),
    P("plain_labels_off_by_one_dict", "MLP", _off_by_one_dict, "plateau", "valid_loss",
      plain=True),
    P("plain_sgd_momentum_swings", "MLP", lambda s: _lit(
        TwoLayer(), tabular(s), regress, optimizer="sgd", lr=0.2, momentum=0.9),
      "oscillation", "loss", plain=True),
    P("plain_softmax_module_into_cross_entropy", "MLP", lambda s: _lit(
        _with_softmax(TwoLayer(out=10)), tabular(s, 10)), "double_softmax", "net.1", plain=True),
    P("plain_softmax_in_training_step", "MLP", _softmax_in_step, "double_softmax",
      "training_step", plain=True),
    P("plain_sigmoid_into_bce_with_logits", "CNN", lambda s: _lit(
        _with_sigmoid(SmallCNN(classes=1)), _binary_images(s), _bce_logits),
      "double_softmax", "net.1", plain=True),
    P("plain_seq2seq_softmax_into_cross_entropy", "GRU seq2seq", lambda s: Run(
        Seq2Seq(softmax=True), *loaders(tokens(s, classify=False))), "double_softmax",
      "forward", plain=True),
    P("plain_raw_pixels_dict_batch", "MLP", lambda s: _lit(
        TwoLayer(out=4), raw(tabular(s, 4), 255), cls=DictModel), "unnormalized", "input 0",
      plain=True),
    P("plain_feature_in_dollars", "MLP", _dollars, "unnormalized", "input 0[:, 5]", plain=True),
    P("plain_val_rows_from_train", "CNN", lambda s: _lit(
        SmallCNN(), (d := images(s))._replace(xv=d.x[:96], yv=d.y[:96])), "leakage", "val",
      plain=True),
    P("plain_duplicated_rows_then_split", "MLP", _duplicated_then_split, "leakage", "val",
      plain=True),
    P("plain_avgpool_before_encoder", "conv AE", _pool_before_encoder, "resolution_loss",
      "encoder.0", plain=True),
    P("plain_stride8_stem", "conv AE", _strided_stem, "resolution_loss", "encoder.stem",
      plain=True),
    P("plain_maxpool1d_sequence_ae", "1-D conv AE", _sequence_ae_maxpool, "resolution_loss",
      "encoder.0", plain=True),
    # healthy models
    P("healthy_plain_mlp_classifier", "MLP", lambda s: _lit(TwoLayer(out=10), tabular(s, 10),
                                                              lr=3e-3), plain=True),
    P("healthy_plain_regressor", "MLP", lambda s: _lit(FunctionalMLP(2), tabular(s), regress,
                                                         lr=3e-3), plain=True),
    P("healthy_plain_lstm_regressor", "LSTM", lambda s: _lit(
        _Recurrent(nn.LSTM), sequences(s), regress, lr=1e-2), plain=True),
    P("healthy_plain_cnn_functional", "CNN", lambda s: _lit(SmallCNN(), images(s), lr=3e-3),
      plain=True),
    P("healthy_plain_conv_autoencoder", "conv AE", _textbook_conv_ae, plain=True),
    P("healthy_plain_dict_batches", "MLP", lambda s: _lit(
        TwoLayer(out=4), tabular(s, 4), cls=DictModel, lr=3e-3), plain=True),
    P("healthy_plain_manual_optimisation", "MLP", lambda s: Run(
        ManualModel(FunctionalMLP(2), lr=1e-2), *loaders(tabular(s))), plain=True),
    P("healthy_plain_gan", "GAN", lambda s: Run(GAN(), *loaders(tabular(s))), plain=True),
    P("healthy_plain_softmax_with_nll_of_log", "MLP", lambda s: _lit(
        _with_softmax(TwoLayer(out=10)), tabular(s, 10), _nll_of_log, lr=3e-3), plain=True),
    P("healthy_plain_sigmoid_with_bce", "MLP", lambda s: _lit(
        _with_sigmoid(TwoLayer()), _binary(s), _bce, lr=3e-3), plain=True),
    P("healthy_plain_label_smoothing", "MLP", lambda s: _lit(
        TwoLayer(out=10), tabular(s, 10), _label_smoothing, lr=3e-3), plain=True),
    P("healthy_plain_gradient_accumulation", "CNN", lambda s: _lit(
        SmallCNN(), images(s), lr=3e-3, batch_size=16, trainer={"accumulate_grad_batches": 2}),
      plain=True),
    P("healthy_resnet_basic_blocks", "ResNet", lambda s: _lit(ResNet(), images(s), lr=3e-3),
      plain=True),
    P("healthy_token_transformer_encoder", "Transformer", lambda s: _lit(
        TokenTransformer(), tokens(s), lr=1e-3), plain=True),
    P("healthy_gru_seq2seq", "GRU seq2seq", lambda s: Run(
        Seq2Seq(), *loaders(tokens(s, classify=False))), plain=True),
    P("healthy_demo_transformer", "demo Transformer", demo_transformer, plain=True),
    P("healthy_demo_lstm", "demo LSTM", demo_lstm, plain=True),
]
