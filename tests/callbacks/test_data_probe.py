"""DataProbe's leakage check on data too large to hash whole, and its thresholds."""

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from conftest import quiet_trainer
from guardrail import GuardrailModule
from guardrail.callbacks import DataProbe


class Rows(Dataset):
    """A map-style dataset of float rows and a target, as a user's own dataset is."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def probe_on(train_x, val_x, **kwargs):
    probe = DataProbe(**kwargs)
    loader = lambda x: DataLoader(Rows(x, torch.randn(len(x))), batch_size=50)  # noqa: E731
    quiet_trainer(callbacks=[probe], max_steps=1).fit(
        GuardrailModule(nn.Linear(6, 1)), loader(train_x), loader(val_x))
    return [(f.check, f.severity.value) for f in probe.findings]


def test_a_sampled_training_split_still_finds_copied_validation_rows_and_says_it_sampled():
    g = torch.Generator().manual_seed(0)
    train = torch.randn(2000, 6, generator=g)
    copied = torch.cat([train[:60], torch.randn(140, 6, generator=g)])  # 30% of val copied
    found = probe_on(train, copied, max_samples=500)
    assert ("data.leakage", "error") in found and ("data.skipped", "info") in found


def test_a_sampled_training_split_is_silent_on_disjoint_data():
    g = torch.Generator().manual_seed(1)
    found = probe_on(torch.randn(2000, 6, generator=g), torch.randn(200, 6, generator=g),
                     max_samples=500)
    assert found == [("data.skipped", "info")]  # only: it was a sample
    assert probe_on(torch.randn(300, 6, generator=g), torch.randn(100, 6, generator=g)) == []


def test_thresholds_reach_the_scale_rule_from_a_mapping():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(300, 6, generator=g).clamp(-3, 3) * 30  # |x| < 100
    assert probe_on(x, torch.randn(50, 6, generator=g)) == []
    assert probe_on(x, torch.randn(50, 6, generator=g), thresholds={"max_abs": 50.0}) == [
        ("data.unnormalized", "error")]
