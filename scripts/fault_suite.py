"""Fault-injection benchmark of guardrail's training-bug detectors.

Usage:
    OMP_NUM_THREADS=1 python scripts/fault_suite.py                # 3 seeds
    OMP_NUM_THREADS=1 python scripts/fault_suite.py --quick        # 1 seed
    OMP_NUM_THREADS=1 python scripts/fault_suite.py --seeds 5 --json suite.json
    OMP_NUM_THREADS=1 python scripts/fault_suite.py --quick --cases log_of_relu healthy_gru

Every case is a small model trained on CPU for a few epochs on learnable synthetic data with
all five detectors attached at their default thresholds (ArchitectureCheck, DataProbe,
ActivationProbe and GradientProbe sampling every 5 steps, LossProbe). A *fault* case injects
one realistic bug and names the check that should report it and, where the bug has a place,
the expected ``where``; a *healthy* case is an ordinary model that should stay quiet.

Measured, per family: recall (share of fault runs, case x seed, with a finding of the
expected check id); localisation (among detected runs of faults with a place, the share
where such a finding has the expected ``where``); and false alarms (error- and warning-level
findings on healthy runs; info does not count). The issue's targets are printed with whether
each is met. ``--json`` also keeps every run's alarms and loss curves. Exit status 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import lightning.pytorch as pl
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.optim.lr_scheduler import ExponentialLR
from torch.utils.data import DataLoader, TensorDataset

from guardrail import Finding, GuardrailModule, collect_findings
from guardrail import callbacks as cb

EPOCHS, EVERY = 8, 5  # 8 steps per epoch; activation and gradient probes sample every 5th
CHECKS = {"nonfinite": "probe.nonfinite", "dead_units": "probe.dead_units",
          "saturation": "probe.saturation", "resolution_loss": "probe.resolution_loss",
          "vanishing": "grad.vanishing", "exploding": "grad.exploding",
          "not_updated": "grad.not_updated", "update_ratio": "grad.update_ratio",
          "initial_loss": "loss.initial", "divergence": "loss.divergence",
          "plateau": "loss.plateau", "oscillation": "loss.oscillation",
          "unnormalized": "data.unnormalized", "leakage": "data.leakage"}
DETERMINISTIC = ("nonfinite", "not_updated", "unnormalized", "leakage", "initial_loss",
                 "resolution_loss")
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


def split(x: Tensor, y: Tensor, seed: int) -> Data:
    """Disjoint train and validation samples of one task."""
    return Data(x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:], seed)


def rng(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(1000 + seed)


def tabular(seed: int, classes: int = 0) -> Data:
    """8 z-scored features; y linear in x plus noise, or the argmax of linear scores."""
    g = rng(seed)
    x = torch.randn(N_TRAIN + N_VAL, 8, generator=g)
    y = (x @ W_CLS[:, :classes]).argmax(1) if classes else \
        x @ W_REG + 0.1 * torch.randn(len(x), generator=g)
    return split(x, y, seed)


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


class ForgetsHead(GuardrailModule):
    """Builds its optimiser from the body only: the head is left out."""

    def configure_optimizers(self) -> torch.optim.Optimizer:
        head = self.net.head if hasattr(self.net, "head") else self.net[-1]
        ids = {id(p) for p in head.parameters()}
        return torch.optim.Adam([p for p in self.parameters() if id(p) not in ids], lr=1e-3)


Run = tuple[GuardrailModule, DataLoader, DataLoader]  # module, train, val


def make(net: nn.Module, d: Data, task: str = "regression",
         module: type[GuardrailModule] = GuardrailModule, **kw: Any) -> Run:
    classes = int(d.y.max()) + 1 if task == "multiclass" else None
    m = module(net, task=task, num_classes=classes, **kw)
    m.example_input_array = d.x[:2]
    g = torch.Generator().manual_seed(d.seed)
    return (m, DataLoader(TensorDataset(d.x, d.y), 32, shuffle=True, generator=g),
            DataLoader(TensorDataset(d.xv, d.yv), 64))


def sgd(lr: float, momentum: float = 0.0) -> Callable[[Any], torch.optim.Optimizer]:
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum)


# ---------------------------------------------------------------------------------- cases
def _nan_pixel(s: int) -> Run:
    d = images(s)
    d.x[int(torch.randint(0, N_TRAIN, (1,))), 0, 3, 7] = float("nan")
    return make(cnn(), d, "multiclass")


def _constant_column(s: int) -> Run:
    d = tabular(s)
    d.x[:, 7], d.xv[:, 7] = 1.0, 1.0  # a flag that happens to be set in every row
    return make(nn.Sequential(Fn(lambda x: (x - x.mean(0)) / x.std(0)), *mlp()), d)


def _norm_at_zero(s: int) -> Run:
    branch = nn.Linear(8, 16)
    nn.init.zeros_(branch.weight)  # a zero-initialised branch, then the norm of its output
    nn.init.zeros_(branch.bias)
    norm = Fn(lambda h: h.pow(2).sum(1, keepdim=True).sqrt())  # hand-written Euclidean norm
    return make(nn.Sequential(branch, norm, nn.Linear(1, 1)), tabular(s))


def _irnn(s: int) -> Run:
    """A ReLU RNN with identity recurrence (IRNN), plain SGD, no gradient clipping."""
    net = Recurrent(nn.RNN, nonlinearity="relu")
    nn.init.eye_(net.rnn.weight_hh_l0.data)
    return make(net, sequences(s), optimizer=sgd(0.2))


def _misaligned(s: int, shift: bool) -> Run:
    if shift:  # labels off by one row relative to their inputs, in both splits
        d = sequences(s, classify=True)
        return make(Recurrent(out=2), d._replace(y=d.y.roll(1), yv=d.yv.roll(1)), "multiclass")
    d, g = tabular(s), torch.Generator().manual_seed(s)  # labels shuffled apart from inputs
    return make(mlp(), d._replace(y=d.y[torch.randperm(N_TRAIN, generator=g)],
                                  yv=d.yv[torch.randperm(N_VAL, generator=g)]), lr=1e-2)


def _dollars(s: int) -> Run:
    d = tabular(s)
    d.x[:, 5], d.xv[:, 5] = 52_000 + 15_000 * d.x[:, 5], 52_000 + 15_000 * d.xv[:, 5]
    names = ["age", "tenure", "visits", "score", "region", "income_usd", "clicks", "days"]
    return make(mlp(), d, feature_names=names)


def _oversampled(s: int) -> Run:
    """The minority class duplicated 3x to balance it, *then* a random split."""
    x, y, *_ = tabular(s, classes=2)
    x, y = torch.cat([x] + [x[y == 1]] * 3), torch.cat([y] + [y[y == 1]] * 3)
    p = torch.randperm(len(x), generator=torch.Generator().manual_seed(s))
    return make(mlp(out=2), Data(x[p[96:]], y[p[96:]], x[p[:96]], y[p[:96]], s), "multiclass")


def _pool_first(s: int, kind: str) -> Run:
    if kind == "1d":
        d = waves(s, length=256)
        return make(dense_ae(nn.AvgPool1d(16), (1, 256), 16, code=32), d, "reconstruction")
    down = {"avg": nn.AvgPool2d(8), "max": nn.MaxPool2d(8), "conv": nn.Conv2d(1, 1, 8, 8)}[kind]
    return make(dense_ae(down, (1, 32, 32), 16), fields(s, side=32), "reconstruction")


def _frozen_backbone(s: int) -> Run:
    net = cnn()
    net[:6].requires_grad_(False)  # the "pretrained" convolutions, frozen on purpose
    return make(net, images(s), "multiclass", lr=3e-3)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    arch: str
    build: Callable[[int], Run]
    family: str | None = None  # None: a healthy model
    where: str | None = None  # the expected place, for faults that have one

    @property
    def check(self) -> str | None:
        return CHECKS.get(self.family or "")


C = Case
CASES: list[Case] = [
    C("log_of_relu", "MLP", lambda s: make(nn.Sequential(
        nn.Linear(8, 32), nn.ReLU(), Fn(torch.log), nn.Linear(32, 1)), tabular(s)),
      "nonfinite", "net.2"),
    C("nan_pixel_in_data", "CNN", _nan_pixel, "nonfinite", "input"),
    C("zscore_of_constant_column", "MLP", _constant_column, "nonfinite", "net.0"),
    C("sgd_lr_1_nan_loss", "1-D conv", lambda s: make(nn.Sequential(
        nn.Conv1d(1, 16, 5, padding=2), nn.ReLU(), nn.Conv1d(16, 1, 5, padding=2)),
        waves(s), "reconstruction", optimizer=sgd(1.0)), "nonfinite"),
    C("bias_minus_20_before_relu", "MLP", lambda s: make(
        init(mlp(), [0], lambda w: w, bias=-20.0), tabular(s)), "dead_units", "net.1"),
    C("conv_bias_minus_20_before_relu", "CNN", lambda s: make(
        init(cnn(), [0], lambda w: w, bias=-20.0), images(s), "multiclass"), "dead_units", "net.1"),
    C("sgd_lr_10_dying_relu", "1-D conv", lambda s: make(
        conv1d(), waves(s, classes=4), "multiclass", optimizer=sgd(10.0)), "dead_units"),
    C("weights_x50_into_sigmoid", "MLP", lambda s: make(
        init(mlp(act=nn.Sigmoid), [0], lambda w: w.mul_(50)), tabular(s)), "saturation", "net.1"),
    C("conv_weights_x50_into_tanh", "CNN", lambda s: make(
        init(cnn(act=nn.Tanh), [0], lambda w: w.mul_(50)), images(s), "multiclass"),
      "saturation", "net.1"),
    C("sigmoid_stack_12", "MLP", lambda s: make(mlp(depth=13, act=nn.Sigmoid), tabular(s)),
      "vanishing", "net.0"),
    C("tanh_stack_init_std_0.01", "MLP", lambda s: make(init(
        mlp(depth=10, act=nn.Tanh), range(0, 21, 2), lambda w: nn.init.normal_(w, std=0.01)),
        tabular(s)), "vanishing", "net.0"),
    C("sqrt_norm_at_zero", "MLP", _norm_at_zero, "exploding", "net.0"),
    C("deep_mlp_sgd_lr_too_high", "MLP", lambda s: make(init(
        mlp(depth=4), range(0, 9, 2), nn.init.kaiming_normal_), tabular(s), optimizer=sgd(0.2)),
      "exploding"),
    C("irnn_without_clipping", "RNN", _irnn, "exploding"),
    C("head_not_in_optimizer", "CNN", lambda s: make(
        cnn(), images(s), "multiclass", ForgetsHead), "not_updated", "net.7.weight"),
    C("gru_head_not_in_optimizer", "GRU", lambda s: make(
        Recurrent(nn.GRU), sequences(s), module=ForgetsHead), "not_updated", "net.head.weight"),
    C("lr_1e-8", "LSTM", lambda s: make(Recurrent(), sequences(s), lr=1e-8), "update_ratio"),
    C("adam_lr_10", "MLP", lambda s: make(mlp(), tabular(s), lr=10.0), "update_ratio"),
    C("logits_x100", "MLP", lambda s: make(nn.Sequential(*mlp(out=10), Fn(lambda z: z / 0.01)),
                                           tabular(s, 10), "multiclass"), "initial_loss", "loss"),
    C("head_init_std_1", "CNN", lambda s: make(
        init(cnn(10), [-1], nn.init.normal_), images(s, 10), "multiclass"), "initial_loss", "loss"),
    C("exponential_lr_gamma_3", "MLP", lambda s: make(  # gamma=3 where 1/3 was meant
        mlp(), tabular(s), optimizer=sgd(0.01), scheduler=lambda o: ExponentialLR(o, 3.0)),
      "divergence", "loss"),
    C("lr_range_test_left_on", "GRU", lambda s: make(  # the LR finder's 10x/epoch schedule
        Recurrent(nn.GRU), sequences(s), lr=1e-4, scheduler=lambda o: ExponentialLR(o, 10.0)),
      "divergence", "loss"),
    C("shuffled_labels", "MLP", lambda s: _misaligned(s, shift=False), "plateau", "val/loss"),
    C("labels_off_by_one", "LSTM", lambda s: _misaligned(s, shift=True), "plateau", "val/loss"),
    C("sgd_lr_0.2_momentum_swings", "MLP", lambda s: make(
        mlp(), tabular(s), optimizer=sgd(0.2, 0.9)), "oscillation", "val/loss"),
    C("sgd_lr_0.5_momentum_swings_10class", "MLP", lambda s: make(
        mlp(depth=2, out=10), tabular(s, 10), "multiclass", optimizer=sgd(0.5, 0.9)),
      "oscillation", "val/loss"),
    C("raw_0_255_pixels", "CNN", lambda s: make(cnn(), raw(images(s), 255), "multiclass"),
      "unnormalized", "input 0"),
    C("feature_in_dollars", "MLP", _dollars, "unnormalized", "income_usd"),
    C("raw_adc_counts", "1-D conv", lambda s: make(
        conv1d(), raw(waves(s, classes=4), 4095), "multiclass"), "unnormalized", "input 0"),
    C("val_is_train_copy", "MLP", lambda s: make(
        mlp(), (d := tabular(s))._replace(xv=d.x, yv=d.y)), "leakage", "val"),
    C("val_carved_from_train", "CNN", lambda s: make(
        cnn(), (d := images(s))._replace(xv=d.x[:64], yv=d.y[:64]), "multiclass"),
      "leakage", "val"),
    C("oversampled_then_split", "MLP", _oversampled, "leakage", "val"),
    C("avgpool8_before_encoder", "conv AE", lambda s: _pool_first(s, "avg"),
      "resolution_loss", "net.0"),
    C("maxpool8_before_encoder", "conv AE", lambda s: _pool_first(s, "max"),
      "resolution_loss", "net.0"),
    C("stride8_conv_at_input", "conv AE", lambda s: _pool_first(s, "conv"),
      "resolution_loss", "net.0"),
    C("avgpool16_sequence_ae", "1-D conv AE", lambda s: _pool_first(s, "1d"),
      "resolution_loss", "net.0"),
    # healthy models
    C("healthy_cnn_4class", "CNN", lambda s: make(cnn(), images(s), "multiclass")),
    C("healthy_cnn_batchnorm", "CNN", lambda s: make(cnn(bn=True), images(s), "multiclass")),
    C("healthy_cnn_dropout_10class", "CNN", lambda s: make(
        cnn(10, dropout=0.3), images(s, 10), "multiclass")),
    C("healthy_frozen_backbone", "CNN", _frozen_backbone),
    C("healthy_conv_ae_textbook", "conv AE", lambda s: make(
        conv_ae(), fields(s), "reconstruction", lr=3e-3)),
    C("healthy_conv_ae_pool2_dense_code", "conv AE", lambda s: make(
        dense_ae(nn.MaxPool2d(2), (1, 16, 16), 64), fields(s), "reconstruction")),
    C("healthy_mlp_regressor", "MLP", lambda s: make(mlp(), tabular(s), lr=1e-2)),
    C("healthy_mlp_tanh", "MLP", lambda s: make(mlp(depth=2, act=nn.Tanh), tabular(s), lr=3e-3)),
    C("healthy_mlp_sigmoid_10class", "MLP", lambda s: make(
        mlp(depth=2, out=10, act=nn.Sigmoid), tabular(s, 10), "multiclass", lr=1e-2)),
    C("healthy_lstm_regressor", "LSTM", lambda s: make(Recurrent(), sequences(s), lr=1e-2)),
    C("healthy_lstm2_classifier", "LSTM", lambda s: make(
        Recurrent(out=2, num_layers=2), sequences(s, True), "multiclass", lr=1e-2)),
    C("healthy_gru", "GRU", lambda s: make(Recurrent(nn.GRU), sequences(s), lr=1e-2)),
    C("healthy_conv1d_classifier", "1-D conv", lambda s: make(
        conv1d(), waves(s, classes=4), "multiclass", lr=3e-3)),
]


# ------------------------------------------------------------------------- runs and table
@dataclasses.dataclass
class Result:
    case: Case
    seed: int
    findings: list[Finding]
    curves: dict[str, list[float]]  # epoch losses: train, val
    crash: str | None = None

    @property
    def detected(self) -> bool:
        return any(f.check == self.case.check for f in self.findings)

    @property
    def localised(self) -> bool:
        return any(f.check == self.case.check and f.where == self.case.where
                   for f in self.findings)

    @property
    def alarms(self) -> list[Finding]:
        return [f for f in self.findings if f.severity.value != "info"]


def run_case(case: Case, seed: int) -> Result:
    """Train ``case`` with every probe attached; a probe that crashes training is recorded."""
    pl.seed_everything(seed, verbose=False)
    (module, train, val), loss = case.build(seed), cb.LossProbe(min_epochs=4)
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=EPOCHS, logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
        callbacks=[cb.ArchitectureCheck(), cb.DataProbe(), loss,
                   cb.ActivationProbe(every_n_steps=EVERY), cb.GradientProbe(every_n_steps=EVERY)])
    crash = None
    try:
        trainer.fit(module, train, val)
    except Exception as err:
        crash = f"{type(err).__name__}: {err}"
    return Result(case, seed, collect_findings(trainer, gather=False),
                  {"train": loss.train_epochs, "val": loss.val_epochs}, crash)


def _family(rs: list[Result]) -> dict[str, Any]:
    found = [r for r in rs if r.detected]
    placed = [r for r in found if r.case.where is not None]
    hits = sum(r.localised for r in placed)
    return {"check": rs[0].case.check, "faults": len({r.case.name for r in rs}),
            "runs": len(rs), "detected": len(found), "recall": len(found) / len(rs),
            "located_runs": len(placed), "localised": hits,
            "localisation": hits / len(placed) if placed else None}


def summarise(results: Sequence[Result], seeds: Sequence[int], wall_s: float) -> dict[str, Any]:
    """The numbers of the table, and every run's alarms and curves (the ``--json`` document)."""
    by_family: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        if r.case.family:
            by_family[r.case.family].append(r)
    families = {fam: _family(rs) for fam, rs in sorted(by_family.items())}
    faults = [r for r in results if r.case.family]
    healthy = [r for r in results if not r.case.family]
    alarms = [(r, f) for r in healthy for f in r.alarms]
    severity = Counter(f.severity.value for _, f in alarms)
    recall = sum(r.detected for r in faults) / len(faults) if faults else None
    targets = {f"recall >= 95% on {fam}": families[fam]["recall"] >= 0.95
               for fam in DETERMINISTIC if fam in families}
    targets["recall >= 85% overall"] = recall is not None and recall >= 0.85
    targets["no error on healthy models"] = severity["error"] == 0
    targets["at most 1 warning on healthy models"] = severity["warning"] <= 1
    targets["no run crashed"] = not any(r.crash for r in results)
    return {
        "seeds": list(seeds), "epochs": EPOCHS, "wall_s": round(wall_s, 1), "families": families,
        "overall": {"faults": len({r.case.name for r in faults}), "runs": len(faults),
                    "detected": sum(r.detected for r in faults), "recall": recall},
        "healthy": {"models": len({r.case.name for r in healthy}), "runs": len(healthy),
                    "errors": severity["error"], "warnings": severity["warning"],
                    "checks": dict(Counter(f.check for _, f in alarms)),
                    "alarms": [{"case": r.case.name, "seed": r.seed, "check": f.check,
                                "severity": f.severity.value, "where": f.where, "step": f.step,
                                "message": f.message} for r, f in alarms],
                    "crashes": sum(r.crash is not None for r in healthy),
                    "not_learning": [f"{r.case.name}/{r.seed}" for r in healthy if not r.crash
                                     and not r.curves["train"][-1] < r.curves["train"][0]]},
        "misses": [{"case": r.case.name, "arch": r.case.arch, "seed": r.seed,
                    "expected": r.case.check,
                    "found": sorted({f"{f.check}@{f.where}" for f in r.alarms})}
                   for r in faults if not r.detected],
        "wrong_place": [{"case": r.case.name, "seed": r.seed, "expected": r.case.where,
                         "found": sorted({str(f.where) for f in r.findings
                                          if f.check == r.case.check})}
                        for r in faults if r.detected and r.case.where and not r.localised],
        "crashes": [{"case": r.case.name, "seed": r.seed, "error": r.crash}
                    for r in results if r.crash],
        "targets": targets,
        "runs": [{"case": r.case.name, "seed": r.seed, "family": r.case.family,
                  "alarms": [[f.check, f.severity.value, f.where] for f in r.alarms],
                  **{k: [round(x, 5) for x in v] for k, v in r.curves.items()}}
                 for r in results],
    }


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def render(s: dict[str, Any]) -> str:
    """The summary as markdown."""
    lines = [f"Seeds {s['seeds']}, {s['epochs']} epochs per run, wall time {s['wall_s']} s.", "",
             "| family | check | faults | runs | recall | localisation |",
             "|---|---|---|---|---|---|"]
    for fam, v in s["families"].items():
        loc = (f"{_pct(v['localisation'])} ({v['localised']}/{v['located_runs']})"
               if v["located_runs"] else "n/a (no place)")
        lines.append(f"| {fam} | `{v['check']}` | {v['faults']} | {v['runs']} | "
                     f"{_pct(v['recall'])} ({v['detected']}/{v['runs']}) | {loc} |")
    o, h = s["overall"], s["healthy"]
    lines += [f"| **overall** | | {o['faults']} | {o['runs']} | **{_pct(o['recall'])}** "
              f"({o['detected']}/{o['runs']}) | |", "",
              f"Healthy models: {h['models']} models, {h['runs']} runs: **{h['errors']} errors, "
              f"{h['warnings']} warnings, {h['crashes']} crashes**; checks that fired: "
              f"{h['checks'] or 'none'}."]
    lines += [f"- {a['case']} seed {a['seed']}: {a['severity']} `{a['check']}` at {a['where']} "
              f"(step {a['step']}): {a['message']}" for a in h["alarms"]]
    lines += [f"Healthy runs whose training loss did not go down: {h['not_learning'] or 'none'}.",
              "", "Misses:" if s["misses"] or s["wrong_place"] else "Misses: none."]
    lines += [f"- {m['case']} ({m['arch']}) seed {m['seed']}: no `{m['expected']}`; found "
              f"{m['found'] or 'nothing'}" for m in s["misses"]]
    lines += [f"- wrong place: {m['case']} seed {m['seed']}: expected {m['expected']}, found "
              f"{m['found']}" for m in s["wrong_place"]]
    lines += [f"- CRASH: {c['case']} seed {c['seed']}: {c['error']}" for c in s["crashes"]]
    lines += ["", "| target | met |", "|---|---|"]
    lines += [f"| {k} | {'yes' if v else '**no**'} |" for k, v in s["targets"].items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    intro, usage = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(description=intro, epilog=usage,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="seeds per case (default 3)")
    parser.add_argument("--quick", action="store_true", help="one seed")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    parser.add_argument("--cases", nargs="+", metavar="NAME", help="run only these cases")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds {args.seeds}: give at least 1")
    unknown = sorted(set(args.cases or ()) - {c.name for c in CASES})
    if unknown:
        parser.error(f"unknown case(s) {unknown}; known: {', '.join(c.name for c in CASES)}")
    cases = [c for c in CASES if not args.cases or c.name in args.cases]
    seeds = list(range(1 if args.quick else args.seeds))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = [run_case(case, seed) for case in cases for seed in seeds]
    summary = summarise(results, seeds, time.perf_counter() - start)
    print(render(summary))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(summary, fh, indent=1)
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)  # tiny models: more threads only contend on a shared machine
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    sys.exit(main())
