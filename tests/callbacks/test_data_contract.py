"""DataContract: the contract inferred from training records, held-out splits checked against it."""

import json

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from conftest import quiet_trainer
from guardrail import GuardrailModule
from guardrail.callbacks import DataContract
from guardrail.datamodule import RecipeDataModule
from guardrail.preprocess import TabularPreprocessor, load_preprocessor


class Loans(RecipeDataModule):
    """Loan records; ``test_in_cents`` replays the hand-over mistake on the test split."""

    def __init__(self, test_in_cents: bool = False) -> None:
        super().__init__(batch_size=32)
        self.test_in_cents = test_in_cents

    def build_splits(self):
        g = torch.Generator().manual_seed(0)
        amounts = (1000 + 39000 * torch.rand(600, generator=g)).round().tolist()
        states = ["CA", "NY", "TX"]
        rows = [{"amount": a, "state": states[i % 3]} for i, a in enumerate(amounts)]
        self._records = {"train": rows[:400], "val": rows[400:500], "test": rows[500:]}
        if self.test_in_cents:
            self._records["test"] = [{**r, "amount": r["amount"] * 100}
                                     for r in self._records["test"]]
        self._pre = TabularPreprocessor.fit(self._records["train"], ["amount"], ["state"])
        y = torch.tensor(amounts) / 40000
        cut = {"train": slice(0, 400), "val": slice(400, 500), "test": slice(500, 600)}
        return {s: TensorDataset(*self._pre.transform(r), y[cut[s]])
                for s, r in self._records.items()}

    def records(self, split):
        self.setup()
        return self._records[split]

    def preprocessor(self):
        self.setup()
        return self._pre


class LoanModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed, self.head = nn.Embedding(4, 2), nn.Linear(3, 1)

    def forward(self, x_num, x_cat):
        return self.head(torch.cat([x_num, self.embed(x_cat[:, 0])], 1)).squeeze(1)


def fit(tmp_path, datamodule):
    contract = DataContract(dirpath=tmp_path)
    quiet_trainer(callbacks=[contract], max_steps=2).fit(
        GuardrailModule(LoanModel(), task="regression"), datamodule=datamodule)
    return contract


def test_amounts_in_cents_on_the_test_split_are_named(tmp_path):
    contract = fit(tmp_path, Loans(test_in_cents=True))
    found = [f for f in contract.findings if f.check == "data.contract"]
    assert [f.where for f in found] == ["amount"]
    assert "test" in found[0].message


def test_healthy_splits_stay_silent_and_the_contract_is_written(tmp_path):
    contract = fit(tmp_path, Loans())
    assert [f for f in contract.findings if f.severity.value != "info"] == []
    saved = json.loads((tmp_path / "contract.json").read_text())
    assert saved["fields"]["amount"]["kind"] == "numeric"
    assert saved["fields"]["state"]["kind"] == "categorical"
    assert isinstance(load_preprocessor(tmp_path / "preprocessor.json"), TabularPreprocessor)


def test_a_plain_module_without_records_gets_a_contract_of_its_tensors(tmp_path):
    x, y = torch.randn(64, 3), torch.randn(64)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    contract = DataContract(dirpath=tmp_path)
    quiet_trainer(callbacks=[contract], max_steps=1).fit(
        GuardrailModule(nn.Linear(3, 1)), loader)
    assert [f.check for f in contract.findings] == ["contract.tensors"]
    fields = json.loads((tmp_path / "contract.json").read_text())["fields"]
    assert fields["x0"]["kind"] == "sequence"


def test_a_loader_it_cannot_peek_at_is_skipped_with_an_info(tmp_path):
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter([(torch.randn(3), torch.randn(())) for _ in range(8)])

    contract = DataContract(dirpath=tmp_path)
    quiet_trainer(callbacks=[contract], max_steps=1).fit(
        GuardrailModule(nn.Linear(3, 1)), DataLoader(Stream(), batch_size=4))
    assert [f.check for f in contract.findings] == ["contract.skipped"]
    assert not (tmp_path / "contract.json").exists()


class PlainLoans(pl.LightningDataModule):
    """A user's own datamodule: raw records and tensors, but no preprocessor of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.loans = Loans()

    def records(self, split):
        return self.loans.records(split)

    def train_dataloader(self):
        self.loans.setup()
        return DataLoader(self.loans.datasets["train"], batch_size=32)


def fit_declared(tmp_path, preprocessor):
    contract = DataContract(dirpath=tmp_path)
    module = GuardrailModule(LoanModel(), task="regression", preprocessor=preprocessor)
    trainer = quiet_trainer(callbacks=[contract], max_steps=2)
    trainer.fit(module, datamodule=PlainLoans())
    return contract, trainer


def test_a_guardrail_module_declares_the_preprocessor_its_datamodule_lacks(tmp_path):
    pre = Loans().preprocessor()
    contract, trainer = fit_declared(tmp_path, pre)
    assert contract.contract["fields"]["state"]["kind"] == "categorical"
    saved = load_preprocessor(tmp_path / "preprocessor.json")
    assert saved.state_dict() == pre.state_dict()
    # the checkpoint keeps it too, and a module built without one gets it back
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    restored = GuardrailModule.load_from_checkpoint(tmp_path / "model.ckpt", net=LoanModel(),
                                                    weights_only=True)
    assert restored.preprocessor().state_dict() == pre.state_dict()


def test_without_a_declared_preprocessor_none_is_written(tmp_path):
    contract, _ = fit_declared(tmp_path, None)
    assert contract.contract is not None  # inferred from the records alone
    assert not (tmp_path / "preprocessor.json").exists()
