"""Each probe on a pair: a faulty model where it fires (at the right place), a healthy one
where it stays silent."""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from conftest import quiet_trainer
from guardrail import GuardrailModule
from guardrail.callbacks import (
    ActivationProbe,
    ArchitectureCheck,
    DataProbe,
    GradientProbe,
    LossProbe,
)


def loader(x, y, batch_size=32, shuffle=False):
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle)


def regression(n=512, d=8, scale=1.0, seed=0):
    """y = x @ w + noise; the seed draws new samples of the same task (w is fixed)."""
    w = torch.randn(d, generator=torch.Generator().manual_seed(1234))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) * scale
    return x, (x / scale) @ w + 0.05 * torch.randn(n, generator=g)


def fit(module, probe, train, val=None, **kw):
    trainer = quiet_trainer(callbacks=[probe], **{"max_epochs": 3, **kw})
    trainer.fit(module, train, val)
    return [(f.check, f.where) for f in probe.findings]


def mlp(d=8, hidden=32, act=nn.ReLU):
    return nn.Sequential(nn.Linear(d, hidden), act(), nn.Linear(hidden, 1))


# ------------------------------------------------------------------------ ActivationProbe
class Log(nn.Module):
    def forward(self, x):
        return torch.log(x)


def test_nonfinite_names_the_module_that_made_it():
    x, y = regression()
    net = nn.Sequential(nn.Linear(8, 16), Log(), nn.Linear(16, 1))
    assert fit(GuardrailModule(net), ActivationProbe(), loader(x, y), max_steps=2) == [
        ("probe.nonfinite", "net.1")]


def test_nonfinite_in_the_data_is_blamed_on_the_input():
    x, y = regression()
    x[5, 3] = float("nan")
    assert fit(GuardrailModule(mlp()), ActivationProbe(), loader(x, y), max_steps=2) == [
        ("probe.nonfinite", "input")]


def test_dead_units_fire_on_a_killed_layer():
    x, y = regression()
    net = mlp()
    with torch.no_grad():
        net[0].bias.fill_(-20.0)  # every unit negative on every sample
    found = fit(GuardrailModule(net), ActivationProbe(every_n_steps=2), loader(x, y))
    assert ("probe.dead_units", "net.1") in found


def test_saturation_fires_on_a_sigmoid_fed_huge_values():
    x, y = regression()
    net = mlp(act=nn.Sigmoid)
    with torch.no_grad():
        net[0].weight.mul_(40.0)
    found = fit(GuardrailModule(net, lr=1e-5), ActivationProbe(every_n_steps=2), loader(x, y))
    assert ("probe.saturation", "net.1") in found


def test_activation_probe_is_silent_on_healthy_relu_and_tanh_nets():
    x, y = regression()
    for act in (nn.ReLU, nn.Tanh, nn.Sigmoid):
        assert fit(GuardrailModule(mlp(act=act)), ActivationProbe(every_n_steps=2),
                   loader(x, y)) == []


# -------------------------------------------------------------------------- GradientProbe
class Orphan(GuardrailModule):
    def configure_optimizers(self):
        return torch.optim.Adam(self.net[0].parameters(), lr=1e-2)


def test_not_updated_names_the_parameter_outside_the_optimiser():
    x, y = regression()
    found = fit(Orphan(mlp()), GradientProbe(every_n_steps=4), loader(x, y))
    assert ("grad.not_updated", "net.2.weight") in found


def test_frozen_backbone_is_not_an_error():
    x, y = regression()
    net = mlp()
    net[0].requires_grad_(False)
    assert fit(GuardrailModule(net, lr=1e-2), GradientProbe(every_n_steps=4), loader(x, y)) == []


def test_update_ratio_fires_on_a_learning_rate_far_too_small():
    x, y = regression()
    found = fit(GuardrailModule(mlp(), lr=1e-8), GradientProbe(every_n_steps=2), loader(x, y))
    assert [c for c, _ in found] == ["grad.update_ratio"]


def test_vanishing_gradients_fire_on_a_deep_sigmoid_stack():
    x, y = regression()
    layers = [nn.Linear(8, 32), nn.Sigmoid()]
    for _ in range(12):
        layers += [nn.Linear(32, 32), nn.Sigmoid()]
    net = nn.Sequential(*layers, nn.Linear(32, 1))
    found = fit(GuardrailModule(net, lr=1e-3), GradientProbe(every_n_steps=2), loader(x, y))
    assert ("grad.vanishing", "net.0") in found


class Norm(nn.Module):
    def forward(self, x):
        return x.pow(2).sum(1, keepdim=True).sqrt()  # at 0: inf * 0 = NaN in backward


def test_exploding_fires_on_a_non_finite_gradient():
    x, y = regression()
    net = nn.Sequential(nn.Linear(8, 16), Norm(), nn.Linear(1, 1))
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.zero_()
    found = fit(GuardrailModule(net), GradientProbe(every_n_steps=1), loader(x, y), max_steps=3)
    assert found and found[0][0] == "grad.exploding"


def test_gradient_probe_is_silent_on_healthy_nets():
    x, y = regression()
    for act, lr in ((nn.ReLU, 1e-2), (nn.Tanh, 3e-3), (nn.GELU, 1e-3)):
        assert fit(GuardrailModule(mlp(act=act), lr=lr), GradientProbe(every_n_steps=2),
                   loader(x, y)) == []


# ------------------------------------------------------------------------------ LossProbe
def classification(n=512, classes=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    return x, (x[:, :classes]).argmax(1)


def test_initial_loss_fires_on_logits_scaled_far_up():
    x, y = classification()
    net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 5))
    with torch.no_grad():
        net[2].weight.mul_(100.0)
    module = GuardrailModule(net, task="multiclass", num_classes=5)
    assert ("loss.initial", "loss") in fit(module, LossProbe(), loader(x, y), max_epochs=1)


def test_plateau_fires_when_labels_are_misaligned_with_inputs():
    x, y = regression()
    y_shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(1))]
    xv, yv = regression(seed=2)
    found = fit(GuardrailModule(mlp(), lr=1e-2), LossProbe(), loader(x, y_shuffled),
                loader(xv, yv[torch.randperm(len(yv))]), max_epochs=6)
    assert ("loss.plateau", "val/loss") in found


def test_loss_probe_is_silent_on_healthy_regression_and_classification():
    x, y = regression()
    xv, yv = regression(seed=2)
    assert fit(GuardrailModule(mlp(), lr=1e-2), LossProbe(), loader(x, y), loader(xv, yv),
               max_epochs=8) == []
    x, y = classification()
    xv, yv = classification(seed=3)
    module = GuardrailModule(nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 5)),
                             task="multiclass", num_classes=5, lr=1e-2)
    assert fit(module, LossProbe(), loader(x, y), loader(xv, yv), max_epochs=8) == []


# ------------------------------------------------------------------------------ DataProbe
def test_raw_pixels_and_leakage_fire():
    x = torch.randint(0, 256, (256, 8)).float()
    y = torch.randn(256)
    found = fit(GuardrailModule(mlp()), DataProbe(), loader(x, y), loader(x[:64], y[:64]),
                max_steps=1)
    assert sorted(found) == [("data.leakage", "val"), ("data.unnormalized", "input 0")]


def test_one_feature_on_another_scale_is_named():
    x, y = regression()
    x[:, 5] *= 1e5
    module = GuardrailModule(mlp(), feature_names=[f"f{i}" for i in range(8)])
    found = fit(module, DataProbe(thresholds={"max_abs": 1e9}), loader(x, y), max_steps=1)
    assert found == [("data.unnormalized", "f5")]


def test_data_probe_is_silent_on_standardised_disjoint_splits_and_token_ids():
    x, y = regression()
    xv, yv = regression(seed=5)
    assert fit(GuardrailModule(mlp()), DataProbe(), loader(x, y), loader(xv, yv),
               max_steps=1) == []
    probe = DataProbe()
    tokens = torch.randint(0, 50, (128, 6))
    net = nn.Sequential(nn.Embedding(50, 4), nn.Flatten(), nn.Linear(24, 1))
    fit(GuardrailModule(net), probe, loader(tokens, torch.randn(128)), max_steps=1)
    assert [(f.check, f.severity.value) for f in probe.findings] == [("data.skipped", "info")]


# ---------------------------------------------------------------------- ArchitectureCheck
def autoencoder(pool_kind, factor, dims=2, code=64, stride_conv=False):
    conv, pool = (nn.Conv2d, {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}) if dims == 2 else \
        (nn.Conv1d, {"max": nn.MaxPool1d, "avg": nn.AvgPool1d})
    side = 32
    shape = (1, side, side) if dims == 2 else (1, side * side)
    n_in = side * side
    down = conv(1, 1, factor, stride=factor) if stride_conv else pool[pool_kind](factor)
    kept = n_in // factor ** dims if dims == 2 else n_in // factor
    net = nn.Sequential(down, conv(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * kept, code), nn.ReLU(), nn.Linear(code, n_in),
                        nn.Unflatten(1, shape))
    module = GuardrailModule(net, task="reconstruction")
    module.example_input_array = torch.zeros(2, *shape)
    return module, torch.randn(64, *shape)


def fit_arch(module, data):
    probe = ArchitectureCheck()
    quiet_trainer(callbacks=[probe], max_steps=1).fit(module, DataLoader(data, batch_size=16))
    return [(f.check, f.where) for f in probe.findings]


def test_resolution_loss_fires_at_the_aggressive_layer_in_every_form():
    for kind, factor, dims, strided in (("avg", 8, 2, False), ("max", 8, 2, False),
                                        ("avg", 32, 1, False), ("avg", 8, 2, True)):
        module, data = autoencoder(kind, factor, dims, stride_conv=strided)
        assert fit_arch(module, data) == [("probe.resolution_loss", "net.0")], (kind, dims)


def test_resolution_rule_is_silent_on_healthy_pooling_and_classifiers():
    module, data = autoencoder("avg", 2, 2)  # keeps 256 numbers, more than the 64 code
    assert fit_arch(module, data) == []
    classifier = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                               nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4),
                               nn.Flatten(), nn.Linear(8 * 16, 10))
    clf = GuardrailModule(classifier, task="multiclass", num_classes=10)
    clf.example_input_array = torch.zeros(2, 1, 32, 32)
    data = [(torch.randn(1, 32, 32), i % 10) for i in range(32)]
    probe = ArchitectureCheck()
    quiet_trainer(callbacks=[probe], max_steps=1).fit(clf, DataLoader(data, batch_size=16))
    assert probe.findings == []
