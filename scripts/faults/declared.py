"""Fault cases on ``GuardrailModule`` models: the task, example input and loss declared."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import ExponentialLR
from torch.utils.data import DataLoader, TensorDataset

from faults.common import (
    N_TRAIN,
    N_VAL,
    Case,
    Data,
    Fn,
    Recurrent,
    Run,
    cnn,
    conv1d,
    conv_ae,
    dense_ae,
    fields,
    images,
    init,
    mlp,
    raw,
    sequences,
    sgd,
    tabular,
    waves,
)
from guardrail import GuardrailModule


class ForgetsHead(GuardrailModule):
    """Builds its optimiser from the body only: the head is left out."""

    def configure_optimizers(self) -> torch.optim.Optimizer:
        head = self.net.head if hasattr(self.net, "head") else self.net[-1]
        ids = {id(p) for p in head.parameters()}
        return torch.optim.Adam([p for p in self.parameters() if id(p) not in ids], lr=1e-3)


def make(net: nn.Module, d: Data, task: str = "regression",
         module: type[GuardrailModule] = GuardrailModule, **kw: Any) -> Run:
    classes = int(d.y.max()) + 1 if task == "multiclass" else None
    m = module(net, task=task, num_classes=classes, **kw)
    m.example_input_array = d.x[:2]
    g = torch.Generator().manual_seed(d.seed)
    return Run(m, DataLoader(TensorDataset(d.x, d.y), 32, shuffle=True, generator=g),
               DataLoader(TensorDataset(d.xv, d.yv), 64))


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
        mlp(), tabular(s), optimizer=sgd(0.2, 0.9)), "oscillation", "loss"),
    C("sgd_lr_0.5_momentum_swings_10class", "MLP", lambda s: make(
        mlp(depth=2, out=10), tabular(s, 10), "multiclass", optimizer=sgd(0.5, 0.9)),
      "oscillation", "loss"),
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


