import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from conftest import quiet_trainer
from guardrail import ConfigError, GuardrailModule


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 1), nn.Embedding(5, 1)

    def forward(self, x, tokens):
        return self.a(x) + self.b(tokens).sum(1)


def test_tuple_batches_with_several_inputs_and_integer_tokens():
    module = GuardrailModule(TwoInputs(), lr=0.05)
    data = [(torch.randn(3), torch.randint(0, 5, (2,)), torch.randn(())) for _ in range(32)]
    trainer = quiet_trainer(max_epochs=2)
    trainer.fit(module, DataLoader(data, batch_size=8), DataLoader(data, batch_size=8))
    assert {"val/rmse", "val/mae", "val/loss", "train/loss_epoch"} <= set(trainer.callback_metrics)


def test_dict_batches_use_every_key_but_target_as_inputs():
    module = GuardrailModule(nn.Linear(3, 1))
    inputs, target = module.split_batch({"x": torch.ones(2, 3), "target": torch.zeros(2)})
    assert len(inputs) == 1 and target.shape == (2,)


@pytest.mark.parametrize("task,target", [("binary", torch.tensor([0.0, 1.0, 1.0, 0.0])),
                                         ("multiclass", torch.tensor([0, 2, 1, 2]))])
def test_classification_tasks_pick_their_loss_and_metrics(task, target):
    out = 1 if task == "binary" else 3
    module = GuardrailModule(nn.Linear(2, out), task=task, num_classes=3)
    loss = module.shared_step((torch.randn(4, 2), target), "val")
    assert loss.ndim == 0 and torch.isfinite(loss)
    expected = {"binary": ["val/auroc", "val/average_precision"], "multiclass": ["val/accuracy"]}
    assert sorted(module.metrics["val_metrics"].keys()) == expected[task]


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"Unknown task 'clustering'.*regression, binary"):
        GuardrailModule(nn.Linear(2, 1), task="clustering")


def test_multiclass_without_num_classes_says_how_to_fix():
    with pytest.raises(ConfigError, match=r"module\.num_classes=C"):
        GuardrailModule(nn.Linear(2, 3), task="multiclass")


def test_configured_optimizer_and_scheduler_are_used():
    import functools

    module = GuardrailModule(nn.Linear(2, 1), optimizer=functools.partial(torch.optim.SGD, lr=0.3),
                             scheduler=functools.partial(torch.optim.lr_scheduler.StepLR,
                                                         step_size=1))
    config = module.configure_optimizers()
    assert isinstance(config["optimizer"], torch.optim.SGD)
    assert config["optimizer"].param_groups[0]["lr"] == 0.3


def test_hyperparameters_are_saved_without_the_network():
    module = GuardrailModule(nn.Linear(2, 1), lr=0.01, feature_names=["a", "b"])
    assert module.hparams.lr == 0.01 and "net" not in module.hparams
    assert module.feature_names == ["a", "b"]
