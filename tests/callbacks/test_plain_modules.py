"""The probes on plain LightningModules written the way users write them: no GuardrailModule,
no example_input_array, no declared task, the loss inside training_step. Each family on a
pair: the fault fires at the right place, the healthy twin stays silent."""

import pytest
import torch
from lightning.pytorch import LightningModule
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

import guardrail
from conftest import quiet_trainer
from guardrail.callbacks import ArchitectureCheck, GradientProbe, LossProbe


def classes(n=512, d=8, c=4, seed=0, shuffled=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x @ torch.randn(d, c, generator=torch.Generator().manual_seed(1))).argmax(1)
    return x, y[torch.randperm(n, generator=g)] if shuffled else y


def loader(*tensors, batch_size=32, shuffle=True):
    return DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=shuffle)


class Lit(LightningModule):
    """The tutorial module: forward runs the net, the loss is computed in training_step."""

    def __init__(self, net, loss=F.cross_entropy, lr=1e-2, val_key="val_loss"):
        super().__init__()
        self.net, self.loss_fn, self.lr, self.val_key = net, loss, lr, val_key

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return self.loss_fn(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log(self.val_key, self.loss_fn(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def mlp(out=4, d=8):
    return nn.Sequential(nn.Linear(d, 32), nn.ReLU(), nn.Linear(32, out))


def mse(out, y):
    return F.mse_loss(out.squeeze(-1), y)


def found(probe, severities=("warning", "error")):
    return [(f.check, f.where) for f in probe.findings if f.severity.value in severities]


# ------------------------------------------------------------------------ resolution loss
class AutoEncoder(LightningModule):
    """Batches of images alone; the encoder and decoder are called from training_step."""

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def training_step(self, batch, batch_idx):
        (x,) = batch
        return F.mse_loss(self.decoder(self.encoder(x)), x)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def dense_decoder(side=32):
    return nn.Sequential(nn.Linear(64, side * side), nn.Unflatten(1, (1, side, side)))


@pytest.mark.parametrize("down", [nn.AvgPool2d(8), nn.Conv2d(1, 1, 8, stride=8)])
def test_resolution_loss_fires_on_a_plain_autoencoder_without_example_input(down):
    encoder = nn.Sequential(down, nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                            nn.Linear(8 * 16, 64))
    probe = ArchitectureCheck()
    quiet_trainer(callbacks=[probe], max_steps=2).fit(
        AutoEncoder(encoder, dense_decoder()), loader(torch.randn(64, 1, 32, 32)))
    assert found(probe) == [("probe.resolution_loss", "encoder.0")]
    assert probe.findings[0].evidence["variance_lost"] > 0


def test_a_textbook_plain_conv_autoencoder_is_silent():
    encoder = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    decoder = nn.Sequential(nn.ConvTranspose2d(8, 16, 2, stride=2), nn.ReLU(),
                            nn.ConvTranspose2d(16, 1, 2, stride=2))
    probe = ArchitectureCheck()
    quiet_trainer(callbacks=[probe], max_steps=2).fit(
        AutoEncoder(encoder, decoder), loader(torch.randn(64, 1, 16, 16)))
    assert probe.findings == [] and probe.layers  # walked, and judged healthy


# -------------------------------------------------------------------- gradients not reset
class Manual(LightningModule):
    def __init__(self, zero):
        super().__init__()
        self.automatic_optimization = False
        self.zero, self.net = zero, mlp(out=1)

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        x, y = batch
        if self.zero:
            opt.zero_grad()
        self.manual_backward(F.mse_loss(self.net(x).squeeze(-1), y.float()))
        opt.step()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-3)


@pytest.mark.parametrize("zero", [False, True])
def test_manual_optimisation_without_zero_grad_is_caught(zero):
    probe = GradientProbe(every_n_steps=4)
    quiet_trainer(callbacks=[probe], max_steps=12).fit(Manual(zero), loader(*classes()))
    assert found(probe) == ([] if zero else [("grad.not_zeroed", "training_step")])


class GAN(LightningModule):
    """Two optimisers stepped by hand: the generator's backward also fills the
    discriminator's gradients, which its own zero_grad clears before its next step."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.g, self.d = mlp(out=8, d=4), mlp(out=1)

    def training_step(self, batch, batch_idx):
        real, _ = batch
        opt_g, opt_d = self.optimizers()
        fake = self.g(torch.randn(len(real), 4))
        d_loss = F.softplus(-self.d(real)).mean() + F.softplus(self.d(fake.detach())).mean()
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        opt_g.zero_grad()
        self.manual_backward(F.softplus(-self.d(fake)).mean())
        opt_g.step()

    def configure_optimizers(self):
        return torch.optim.Adam(self.g.parameters()), torch.optim.Adam(self.d.parameters())


def test_a_gan_with_two_optimisers_is_silent():
    gradients, losses = GradientProbe(every_n_steps=3), LossProbe()
    quiet_trainer(callbacks=[gradients, losses], max_epochs=2).fit(GAN(), loader(*classes()))
    assert found(gradients) == [] and found(losses) == []
    assert ("loss.skipped", "optimizers") in found(losses, ("info",))


# --------------------------------------------------------------------------- initial loss
def test_initial_loss_is_judged_on_a_plain_classifier():
    x, y = classes(c=10)
    hot, healthy = mlp(out=10), mlp(out=10)
    with torch.no_grad():
        hot[2].weight.mul_(200)
    probes = {}
    for name, net in (("hot", hot), ("healthy", healthy)):
        probes[name] = LossProbe()
        quiet_trainer(callbacks=[probes[name]], max_steps=3).fit(Lit(net), loader(x, y))
    assert found(probes["hot"]) == [("loss.initial", "loss")]
    assert found(probes["healthy"]) == []


# ---------------------------------------------------------------------------------- plateau
def test_shuffled_labels_plateau_in_a_short_run_judged_on_steps_and_the_logged_key():
    x, y = classes(n=1200, shuffled=True)
    xv, yv = classes(n=256, seed=1, shuffled=True)
    probe = LossProbe()
    quiet_trainer(callbacks=[probe], max_epochs=2).fit(
        Lit(mlp(), lr=3e-3, val_key="valid_loss"), loader(x, y, batch_size=8),
        loader(xv, yv, shuffle=False))
    assert len(probe.step_losses) == 300 and probe.match.name == "cross_entropy"
    assert found(probe) == [("loss.plateau", "valid_loss")]


def test_learnable_labels_in_the_same_short_run_are_silent():
    probe = LossProbe()
    quiet_trainer(callbacks=[probe], max_epochs=2).fit(
        Lit(mlp(), lr=3e-3), loader(*classes(n=1200), batch_size=8),
        loader(*classes(n=256, seed=1), shuffle=False))
    assert probe.val_key == "val_loss" and found(probe) == []


def test_a_module_that_logs_no_validation_loss_is_told_so():
    probe = LossProbe()
    quiet_trainer(callbacks=[probe], max_epochs=1).fit(
        Lit(mlp(), val_key="val_accuracy"), loader(*classes()), loader(*classes(seed=1)))
    [info] = [f for f in probe.findings if f.check == "loss.skipped"]
    assert info.where == "validation" and "monitor" in info.message


# --------------------------------------------------------------------------- double softmax
class SoftmaxInStep(Lit):
    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x).softmax(1), y)


def nll_of_log(p, y):
    return F.nll_loss(p.log(), y)


def bce_logits(out, y):
    return F.binary_cross_entropy_with_logits(out.squeeze(-1), y.float())


def bce(out, y):
    return F.binary_cross_entropy(out.squeeze(-1), y.float())


def fit_loss_probe(module, binary):
    x, y = classes(c=4)
    probe = LossProbe()
    quiet_trainer(callbacks=[probe], max_steps=3).fit(module, loader(x, (y > 1).long()
                                                                     if binary else y))
    return probe


@pytest.mark.parametrize(("module", "binary", "expected"), [
    (lambda: Lit(nn.Sequential(mlp(), nn.Softmax(dim=1))), False, "net.1"),
    (lambda: SoftmaxInStep(mlp()), False, "training_step"),
    (lambda: Lit(nn.Sequential(mlp(out=1), nn.Sigmoid()), bce_logits), True, "net.1"),
])
def test_double_softmax_is_named(module, binary, expected):
    assert found(fit_loss_probe(module(), binary)) == [("loss.double_softmax", expected)]


@pytest.mark.parametrize(("module", "binary"), [
    (lambda: Lit(nn.Sequential(mlp(), nn.Softmax(dim=1)), nll_of_log), False),
    (lambda: Lit(nn.Sequential(mlp(out=1), nn.Sigmoid()), bce), True),
    (lambda: Lit(mlp(out=1), bce_logits), True),
])
def test_probabilities_with_the_right_loss_are_silent(module, binary):
    probe = fit_loss_probe(module(), binary)
    assert found(probe) == [] and probe.match is not None


# ---------------------------------------------------------- weights that get no gradient
class Detached(nn.Module):
    def __init__(self, detach):
        super().__init__()
        self.detach, self.body, self.head = detach, mlp(out=16), nn.Linear(16, 4)

    def forward(self, x):
        h = self.body(x)
        return self.head(h.detach() if self.detach else h)


@pytest.mark.parametrize("detach", [True, False])
def test_a_detach_in_forward_leaves_the_body_unchanged_and_is_named(detach):
    probe = GradientProbe(every_n_steps=4)
    quiet_trainer(callbacks=[probe], max_steps=8).fit(Lit(Detached(detach)), loader(*classes()))
    assert found(probe) == ([("grad.not_updated", "net.body.0.weight")] if detach else [])


# -------------------------------------------------- batches and models it does not understand
class DictBatches(Dataset):
    def __init__(self, n=64):
        self.x, self.tokens = torch.randn(n, 8), torch.randint(0, 20, (n, 5))
        self.y = torch.randint(0, 3, (n,))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "tokens": self.tokens[i], "label": self.y[i]}


class TwoInputs(LightningModule):
    """Dict batches, a float and a token input, a tuple output, the loss in training_step."""

    def __init__(self):
        super().__init__()
        self.embed, self.fc, self.head = nn.Embedding(20, 4), nn.Linear(8, 16), nn.Linear(36, 3)

    def forward(self, x, tokens):
        h = torch.cat([F.relu(self.fc(x)), self.embed(tokens).flatten(1)], 1)
        return self.head(h), h

    def training_step(self, batch, batch_idx):
        logits, _ = self(batch["x"], batch["tokens"])
        return F.cross_entropy(logits, batch["label"])

    def validation_step(self, batch, batch_idx):
        logits, _ = self(batch["x"], batch["tokens"])
        self.log("val_loss", F.cross_entropy(logits, batch["label"]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


def test_every_guardrail_trains_through_dict_batches_tokens_and_tuple_outputs(tmp_path):
    trainer = quiet_trainer(callbacks=guardrail.default_callbacks(), max_epochs=2,
                            default_root_dir=tmp_path)
    trainer.fit(TwoInputs(), DataLoader(DictBatches(), 16), DataLoader(DictBatches(32), 16))
    assert trainer.state.finished
    errors = [f for f in guardrail.collect_findings(trainer) if f.severity.value == "error"]
    assert errors == []


# ------------------------------------------------------------- dead units behind F.relu
class FunctionalReLU(nn.Module):
    def __init__(self, bias):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(8, 32), nn.Linear(32, 32), nn.Linear(32, 4)
        with torch.no_grad():
            self.fc2.bias.fill_(bias)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


@pytest.mark.parametrize("bias", [-20.0, 0.0])
def test_dead_units_behind_a_functional_relu_are_named_by_their_layer(bias):
    from guardrail.callbacks import ActivationProbe

    probe = ActivationProbe(every_n_steps=2)
    quiet_trainer(callbacks=[probe], max_steps=8).fit(Lit(FunctionalReLU(bias)),
                                                      loader(*classes()))
    assert found(probe) == ([("probe.dead_units", "net.fc2")] if bias else [])


# ------------------------------------------------------------------------------- leakage
def test_inputs_that_repeat_naturally_are_not_leakage_but_copies_are():
    from guardrail.callbacks import DataProbe

    g = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 2, (1200, 6), generator=g).float()  # 64 possible rows
    y = torch.randn(1200, generator=g)
    natural = DataProbe()
    quiet_trainer(callbacks=[natural], max_steps=1).fit(
        Lit(mlp(out=1, d=6), mse), loader(counts[:1000], y[:1000]),
        loader(counts[1000:], y[1000:], shuffle=False))
    [finding] = natural.findings
    assert (finding.check, finding.severity.value) == ("data.leakage", "info")
    assert "repeat naturally" in finding.message

    x = torch.randn(600, 6, generator=g)
    x = torch.cat([x, x[:100]])  # a hundred records twice, continuous measurements
    perm = torch.randperm(len(x), generator=g)
    copied = DataProbe()
    quiet_trainer(callbacks=[copied], max_steps=1).fit(
        Lit(mlp(out=1, d=6), mse), loader(x[perm[100:]], torch.randn(600)),
        loader(x[perm[:100]], torch.randn(100), shuffle=False))
    assert [(f.check, f.severity.value) for f in copied.findings] == [("data.leakage", "error")]
