"""``DataContract``: what the model expects, inferred from training data and checked on the rest."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer

from guardrail.batches import peek_rows
from guardrail.callbacks.base import GuardrailCallback, Policy
from guardrail.datamodule import raw_records
from guardrail.distributed import on_rank_zero
from guardrail.findings import Finding, Severity
from guardrail.io import write_json
from guardrail.preprocess import FILE as PREPROCESSOR_FILE
from guardrail.preprocess import Preprocessor, TensorPreprocessor, save_preprocessor

CONTRACT_FILE = "contract.json"
TENSOR_SAMPLES = 512  # training samples a contract of input tensors is inferred from


class DataContract(GuardrailCallback):
    """Infer the data contract from the training split; check validation and test against it.

    When training starts, on global rank zero (the others receive its result): the training
    split's raw records (the datamodule's ``records("train")``, see
    :class:`~guardrail.datamodule.RecipeDataModule`) give the contract
    (:func:`guardrail.contract.infer_contract`: per field its kind, dtype and shape, range and
    central quantiles, missing and non-finite shares, vocabularies with counts, sequence
    lengths), starting from the kinds the preprocessor declares (the datamodule's
    ``preprocessor()``, else a :class:`~guardrail.GuardrailModule`'s) and counting the values it
    knows beyond the training records (a catalogue) as seen. Validation and test records
    are checked against it: ``data.contract`` findings name the field, the problem, the share
    of records with it and an example. ``contract.json`` and, where there is one, the fitted
    preprocessor (``preprocessor.json``) are written into the run directory, and the contract
    is kept in checkpoints; ``guardrail export`` and ``guardrail serve`` read them.

    A datamodule without raw records (or a model trained from loaders alone) gets a contract
    of its forward inputs instead: a :class:`~guardrail.preprocess.TensorPreprocessor` whose
    records carry each input as a nested list (``x0``, ``x1``, ...), from the first
    ``TENSOR_SAMPLES`` (512) training samples; an ``info`` finding says so.

    Args:
        dirpath: Run directory; default: the trainer's ``default_root_dir``.
        samples: Records the contract is inferred from and each held-out split is checked on
            at most (a seeded sample beyond; the contract records how many it saw).
        thresholds: :class:`~guardrail.checks.contract.ContractThresholds`, or a mapping of
            the fields to change.
        seed: Seed of the sample taken from a split larger than ``samples``.
        private_fields: Fields whose values the contract must not keep (see
            :func:`~guardrail.contract.infer_contract`); the datamodule's declared direct
            identifiers and the fields :class:`~guardrail.callbacks.PrivacyGuard` found
            personal data in are added.
        policy: ``record`` or ``strict``.

    Example:
        >>> import lightning.pytorch as pl, tempfile
        >>> from lightning.pytorch.demos.boring_classes import BoringModel
        >>> contract = DataContract(dirpath=tempfile.mkdtemp())
        >>> pl.Trainer(callbacks=[contract], max_steps=1, logger=False, enable_progress_bar=False,
        ...            enable_checkpointing=False, enable_model_summary=False).fit(BoringModel())
        >>> contract.contract["fields"]["x0"]["kind"], [f.check for f in contract.findings]
        ('sequence', ['contract.tensors'])

    """

    family = "contract"
    state_fields = ("contract",)

    def __init__(self, dirpath: str | Path | None = None, samples: int = 50_000,
                 thresholds: Any = None, seed: int = 0, private_fields: Sequence[str] = (),
                 policy: Policy = "record") -> None:
        super().__init__(policy)
        from guardrail.checks.contract import ContractThresholds

        self.require(("samples", samples, isinstance(samples, int) and samples >= 2, ">= 2"))
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self.samples, self.seed = samples, seed
        self.private_fields = list(private_fields)
        self.thresholds = ContractThresholds.coerce(thresholds)
        self.contract: dict[str, Any] | None = None
        self.files: dict[str, str] = {}

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Infer, check and write, on rank zero; every rank gets the contract and findings.

        At train start the loaders exist: a model without raw records is read from them.
        """
        if self.contract is not None:  # resumed: the contract of the first fit stands
            return
        contract, findings, pre = on_rank_zero(lambda: self._infer(trainer, pl_module))
        self.contract = contract
        if trainer.is_global_zero:  # findings once; a strict error still stops every rank
            for finding in findings:
                self.emit(trainer, finding)
        if trainer.is_global_zero and contract is not None:
            folder = self.dirpath or Path(trainer.default_root_dir)
            write_json(folder / CONTRACT_FILE, contract)
            self.files = {CONTRACT_FILE: str(folder / CONTRACT_FILE)}
            if pre is not None:
                save_preprocessor(pre, folder / PREPROCESSOR_FILE)
                self.files[PREPROCESSOR_FILE] = str(folder / PREPROCESSOR_FILE)
        self.enforce(trainer)

    def _infer(self, trainer: Trainer, pl_module: LightningModule) -> tuple[
            dict[str, Any] | None, list[Finding], Preprocessor | None]:
        from guardrail.checks.contract import contract_findings
        from guardrail.contract import declare_vocabulary, infer_contract

        datamodule = getattr(trainer, "datamodule", None)
        records = raw_records(datamodule, "train")
        if records is None:
            return self._from_tensors(trainer, pl_module)
        pre = _declared_preprocessor(datamodule) or _declared_preprocessor(pl_module)
        kinds = pre.fields() if pre is not None else None
        contract = infer_contract(self._sample(records), kinds=kinds,
                                  private=self._private(trainer))
        if pre is not None:
            declare_vocabulary(contract, pre.vocabularies())
        contract["sampled"] = {"train": min(len(records), self.samples), "of": len(records),
                               "seed": self.seed}
        findings: list[Finding] = []
        for split in ("val", "test"):
            held_out = raw_records(datamodule, split)
            if held_out:
                findings += contract_findings(contract, self._sample(held_out), split,
                                              self.thresholds)
        return contract, findings, pre

    def _private(self, trainer: Trainer) -> list[str]:
        """Fields holding personal data: these, the declared identifiers, what was found."""
        from guardrail.callbacks.privacy_guard import PrivacyGuard

        declared = getattr(getattr(trainer, "datamodule", None), "privacy_roles", None)
        roles = declared() if callable(declared) else {}
        found = [f for c in trainer.callbacks if isinstance(c, PrivacyGuard)  # type: ignore[attr-defined]
                 for f in c.private_fields()]
        return sorted({*self.private_fields, *roles.get("direct_identifiers", ()), *found})

    def _from_tensors(self, trainer: Trainer, pl_module: LightningModule) -> tuple[
            dict[str, Any] | None, list[Finding], Preprocessor | None]:
        from guardrail.contract import infer_contract

        inputs, _, why = peek_rows(trainer.train_dataloader, pl_module,
                                   min(self.samples, TENSOR_SAMPLES))
        if inputs is None:
            return None, [Finding(
                "contract.skipped", Severity.INFO,
                f"No data contract was inferred: the training data has no raw records and {why}.",
                hint="Give the datamodule records(split) and preprocessor() "
                     "(guardrail.RecipeDataModule) so that the served model checks what "
                     "clients send.")], None
        pre = TensorPreprocessor.fit(inputs)
        try:
            contract = infer_contract(pre.records(inputs), kinds=pre.fields())
        except Exception as err:  # an input the contract cannot describe: say so, go on
            return None, [Finding(
                "contract.skipped", Severity.INFO,
                f"No data contract was inferred from the model's input tensors "
                f"({type(err).__name__}: {err}).",
                hint="Give the datamodule records(split) and preprocessor() "
                     "(guardrail.RecipeDataModule) to serve raw records.")], None
        return contract, [Finding(
            "contract.tensors", Severity.INFO,
            f"The data contract covers the model's {len(inputs)} input tensor(s) "
            f"({', '.join(pre.fields())}), not raw records: the datamodule has none.",
            hint="Serving will take tensors as nested lists; to serve raw records, give the "
                 "datamodule records(split) and preprocessor() (guardrail.RecipeDataModule).")
        ], pre

    def _sample(self, records: Sequence[Any]) -> Sequence[Any]:
        if len(records) <= self.samples:
            return records
        rows = sorted(random.Random(self.seed).sample(range(len(records)), self.samples))
        return [records[i] for i in rows]


def _declared_preprocessor(owner: Any) -> Preprocessor | None:
    """The preprocessor a datamodule or a ``GuardrailModule`` declares (``preprocessor()``)."""
    method = getattr(owner, "preprocessor", None)
    return method() if callable(method) else None
