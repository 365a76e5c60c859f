"""``PrivacyGuard``: personal data and re-identification risk before training, leaks after."""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from torch.utils.data import ConcatDataset

from guardrail.callbacks.base import GuardrailCallback, Policy
from guardrail.datamodule import raw_records
from guardrail.distributed import on_rank_zero, world_size
from guardrail.errors import ConfigError
from guardrail.findings import Finding, Severity
from guardrail.io import write_json
from guardrail.privacy import PRIVACY_FILE

ROLES = ("direct_identifiers", "quasi_identifiers", "sensitive")
STAGES = ("test", "fit")
# Field names that usually hold personal data (Sweeney 2002's zip, birth date and sex first).
_PERSONAL_NAME = re.compile(
    # not "street" alone: Ames' Street is the kind of road, not an address
    r"(^|_)(e?mail|phone|mobile|name|surname|ssn|personnummer|address|birth|dob|zip|"
    r"postcode|postal|gender|sex|age|city|ip|ip_address|iban|card)(_|$)", re.IGNORECASE)


class PrivacyGuard(GuardrailCallback):
    """Scan training records for personal data, judge re-identification risk, audit memorisation.

    When fit starts, on global rank zero (the others receive the findings), over the training
    split's raw records (the datamodule's ``records("train")``):

    - ``privacy.pii`` (error): a field holds e-mail addresses, phone numbers, payment-card
      numbers, IBANs, personal identity numbers or IP addresses
      (:mod:`guardrail.privacy.pii`) and is not declared a direct identifier;
    - ``privacy.k_anonymity`` (warning): records sit in equivalence classes over the
      quasi-identifiers smaller than ``k``, with the generalisations that would reach it;
      ``privacy.l_diversity`` (warning): a class holds one value of a sensitive field
      (:mod:`guardrail.privacy.anonymity`);
    - ``privacy.undeclared`` (info): fields whose names suggest personal data that no role
      names.

    Roles are the arguments merged with what the datamodule declares in
    ``privacy_roles()`` (a dict with the keys of :data:`ROLES` and ``hierarchies``); every
    named field must be a field of the records (a :class:`~guardrail.errors.ConfigError` at
    setup names the unknown ones). With ``audit=True``, once the tested weights are loaded
    (``stage="test"``) or when fit ends (``stage="fit"``), a membership-inference audit
    (:mod:`guardrail.privacy.membership`) of training records against records the model never
    trained on (the test and validation splits): the loss attack and a LiRA-style attack with
    ``references`` re-initialised copies trained on random halves of both (with the same
    noise and clipping where :class:`DifferentialPrivacy` trained the model);
    ``privacy.membership_risk`` (warning) when the stronger one finds members well above its
    false-positive rate. Everything, with the DP budget spent, is written to ``privacy.json``
    in the run directory.

    Args:
        direct_identifiers: Fields that identify a person on their own (ids, e-mail).
        quasi_identifiers: Fields that identify in combination (gender, age band, city).
        sensitive: Fields whose disclosure harms (health, income).
        k: The k of k-anonymity the quasi-identifiers must reach.
        hierarchies: Per quasi-identifier, values mapped to coarser ones (``{city: {Malmo:
            Gotaland}}``), tried as generalisations.
        scan: Scan string fields for personal data.
        scan_records: Records scanned at most (a seeded sample beyond).
        audit: Run the membership-inference audit.
        references: Reference models of the calibrated attack (0: the loss attack alone).
        audit_records: Members and non-members audited at most, each.
        audit_epochs: Epochs each reference model trains; None: the trainer's ``max_epochs``.
        stage: ``test`` (audit the weights the test split is scored with) or ``fit``.
        dirpath: Folder of ``privacy.json``; default: the trainer's ``default_root_dir``.
        thresholds: :class:`~guardrail.privacy.audit.MembershipThresholds` or a mapping.
        seed: Seed of every sample and reference model.
        policy: ``record`` or ``strict`` (a ``privacy.pii`` error stops the run before the
            first step).

    Example:
        >>> import lightning.pytorch as pl, tempfile
        >>> from lightning.pytorch.demos.boring_classes import BoringModel
        >>> guard = PrivacyGuard(dirpath=tempfile.mkdtemp())
        >>> pl.Trainer(callbacks=[guard], max_steps=1, logger=False, enable_progress_bar=False,
        ...            enable_checkpointing=False, enable_model_summary=False).fit(BoringModel())
        >>> [f.check for f in guard.findings]
        ['privacy.skipped']

    """

    family = "privacy"
    state_fields = ("summary",)

    def __init__(self, direct_identifiers: Sequence[str] = (),
                 quasi_identifiers: Sequence[str] = (), sensitive: Sequence[str] = (),
                 k: int = 5, hierarchies: Mapping[str, Mapping[str, Any]] | None = None,
                 scan: bool = True, scan_records: int = 20_000, audit: bool = False,
                 references: int = 8, audit_records: int = 5000, audit_epochs: int | None = None,
                 stage: str = "test", dirpath: str | Path | None = None, thresholds: Any = None,
                 seed: int = 0, policy: Policy = "record") -> None:
        super().__init__(policy)
        from guardrail.privacy.audit import MembershipThresholds

        self.require(("k", k, isinstance(k, int) and k >= 2, "a whole number >= 2"),
                     ("scan_records", scan_records, scan_records >= 1, ">= 1"),
                     ("references", references, references >= 0, ">= 0"),
                     ("audit_records", audit_records, audit_records >= 50, ">= 50"),
                     ("audit_epochs", audit_epochs, audit_epochs is None or audit_epochs >= 1,
                      ">= 1 or null"),
                     ("stage", stage, stage in STAGES, f"one of {', '.join(STAGES)}"))
        self.roles = {"direct_identifiers": list(direct_identifiers),
                      "quasi_identifiers": list(quasi_identifiers), "sensitive": list(sensitive)}
        self.hierarchies = {f: dict(m) for f, m in (hierarchies or {}).items()}
        self.k, self.scan, self.scan_records, self.seed = k, scan, scan_records, seed
        self.audit, self.references, self.audit_records = audit, references, audit_records
        self.audit_epochs, self.stage = audit_epochs, stage
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self.thresholds = MembershipThresholds.coerce(thresholds)
        self.summary: dict[str, Any] = {}

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Merge the datamodule's roles with the arguments; refuse fields the records lack."""
        if stage != "fit" or self.summary:
            return
        datamodule = getattr(trainer, "datamodule", None)
        declared = getattr(datamodule, "privacy_roles", None)
        extra = declared() if callable(declared) else {}
        for role in ROLES:
            self.roles[role] = list(dict.fromkeys([*extra.get(role, ()), *self.roles[role]]))
        self.hierarchies = {**extra.get("hierarchies", {}), **self.hierarchies}
        records = raw_records(datamodule, "train")
        if records:
            _check_roles(self.roles, self.hierarchies, _field_names(records))

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Scan and judge the training records (rank zero); every rank gets the findings."""
        if self.summary:  # resumed: the data was judged when the run started
            return
        summary, findings = on_rank_zero(lambda: self._judge(trainer))
        self.summary = summary
        if trainer.is_global_zero:
            for finding in findings:
                self.emit(trainer, finding)
            self._write(trainer)
        self.enforce(trainer)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Record the DP budget spent; with ``stage="fit"``, audit the weights training left."""
        private = _private(trainer)
        if private is not None:
            self.summary["dp"] = private.summary()
            self._write(trainer)
        if self.audit and self.stage == "fit":
            self._audit(trainer, pl_module)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """With ``stage="test"``: audit the weights the test split is scored with."""
        if self.audit and self.stage == "test" and "audit" not in self.summary:
            self._audit(trainer, pl_module)

    def private_fields(self) -> list[str]:
        """Fields whose values no run file may show: direct identifiers and where PII was found.

        :class:`~guardrail.callbacks.DataContract` keeps no values of these.
        """
        found = [m["field"] for m in self.summary.get("scan", {}).get("matches", [])]
        return sorted({*self.roles["direct_identifiers"], *found})

    # ------------------------------------------------------------------------------ helpers
    def _judge(self, trainer: Trainer) -> tuple[dict[str, Any], list[Finding]]:
        from guardrail.privacy.anonymity import anonymity_findings, risk_summary
        from guardrail.privacy.pii import pii_findings, scan_records

        records = raw_records(getattr(trainer, "datamodule", None), "train")
        summary: dict[str, Any] = {"roles": self.roles, "k": self.k}
        if not records:
            return summary, [Finding(
                "privacy.skipped", Severity.INFO,
                "No personal-data scan or re-identification check: the datamodule has no raw "
                "records.", hint="Give the datamodule records(split) (guardrail."
                "RecipeDataModule) so that the training data can be scanned before it is used.")]
        findings: list[Finding] = []
        if self.scan:
            scan = scan_records(records, self.scan_records, self.seed)
            summary["scan"] = scan.to_dict()
            findings += pii_findings(scan, self.roles["direct_identifiers"])
        quasi = self.roles["quasi_identifiers"]
        if quasi:
            rows = [r for r in records if isinstance(r, Mapping)]
            summary["anonymity"] = risk_summary(rows, quasi, self.roles["sensitive"], self.k,
                                                self.hierarchies)
            findings += anonymity_findings(summary["anonymity"])
        named = {f for fields in self.roles.values() for f in fields}
        guessed = [key for key in _field_names(records)
                   if key not in named and _PERSONAL_NAME.search(key)]
        if guessed:
            findings.append(Finding(
                "privacy.undeclared", Severity.INFO,
                f"Field(s) {', '.join(guessed)} may hold personal data by their names, but no "
                "privacy role names them.", where=", ".join(guessed),
                evidence={"fields": guessed},
                hint=f"Declare them (e.g. `privacy.quasi_identifiers=[{','.join(guessed)}]`) "
                     "so that re-identification risk is measured, or drop them."))
        return summary, findings

    def _audit(self, trainer: Trainer, pl_module: LightningModule) -> None:
        from guardrail.privacy.audit import membership_findings
        from guardrail.privacy.membership import AuditSkipped, audit

        datamodule = getattr(trainer, "datamodule", None)
        datasets = getattr(datamodule, "datasets", None) or {}
        loader = trainer.train_dataloader
        members = datasets.get("train", getattr(loader, "dataset", None))
        unseen = [datasets[s] for s in ("test", "val") if datasets.get(s) is not None]
        if members is None or not unseen:
            self._skip(trainer, "the audit needs the training split and records the model never "
                       "trained on (the datamodule's datasets['train'] and ['test'] or ['val'])")
            return
        nonmembers = unseen[0] if len(unseen) == 1 else ConcatDataset(unseen)
        if not trainer.is_global_zero:
            return  # rank zero audits; the others go on to the test loop and wait there
        private = _private(trainer)
        start = time.perf_counter()
        try:
            result = audit(pl_module, members, nonmembers,
                           batch_size=getattr(loader, "batch_size", None) or 256,
                           collate_fn=getattr(loader, "collate_fn", None),
                           max_epochs=self.audit_epochs or max(trainer.max_epochs or 1, 1),
                           # a second Trainer inside a DDP process would join its group
                           references=self.references if world_size() == 1 else 0,
                           max_records=self.audit_records,
                           # references train as the target did: with its noise and clipping
                           callback=private.twin if private is not None else None,
                           seed=self.seed)
        except AuditSkipped as why:
            self._skip(trainer, str(why))
            return
        result["seconds"] = round(time.perf_counter() - start, 2)
        self.summary["audit"] = result
        for finding in membership_findings(result["attacks"], self.thresholds):
            self.emit(trainer, finding)
        loss, lira = result["attacks"]["loss"], result["attacks"].get("lira")
        figures = f"loss attack AUC {loss['auc']:.3f}, TPR at 1% FPR {loss['tpr']['0.01']:.1%}"
        if lira:
            figures += f"; LiRA AUC {lira['auc']:.3f}, TPR at 1% FPR {lira['tpr']['0.01']:.1%}"
        cost = result.get("utility")
        if cost:
            figures += (f"; unseen records' mean loss {cost['private_loss']:.4f} with DP, "
                        f"{cost['nonprivate_loss']:.4f} trained without it")
        self.emit(trainer, Finding(
            "privacy.audit", Severity.INFO,
            f"Membership audit on {result['records']:,} training and {result['records']:,} "
            f"test records: {figures}.", evidence={
                "loss_auc": loss["auc"], "loss_tpr_1pct": loss["tpr"]["0.01"],
                **({"lira_auc": lira["auc"], "lira_tpr_1pct": lira["tpr"]["0.01"]} if lira
                   else {}), "seconds": result["seconds"]}))
        self._write(trainer)

    def _skip(self, trainer: Trainer, why: str) -> None:
        self.emit(trainer, Finding("privacy.skipped", Severity.INFO,
                                   f"No membership audit: {why}.", where="audit",
                                   hint="Set `privacy.audit=false`, or see why above."))

    def _write(self, trainer: Trainer) -> None:
        if trainer.is_global_zero:
            folder = self.dirpath or Path(trainer.default_root_dir)
            write_json(folder / PRIVACY_FILE, self.summary)


def _private(trainer: Trainer) -> Any:
    """The trainer's enabled ``DifferentialPrivacy`` callback that trained, or None."""
    from guardrail.callbacks.differential_privacy import DifferentialPrivacy

    return next((c for c in trainer.callbacks if isinstance(c, DifferentialPrivacy)  # type: ignore[attr-defined]
                 and c.enabled and c.noise is not None), None)


def _field_names(records: Sequence[Any], first: int = 1000) -> list[str]:
    """The top-level field names of the first records, sorted."""
    return sorted({str(key) for r in records[:first] if isinstance(r, Mapping) for key in r})


def _check_roles(roles: Mapping[str, Sequence[str]], hierarchies: Mapping[str, Any],
                 fields: Sequence[str]) -> None:
    """One :class:`ConfigError` naming every role or hierarchy field the records lack."""
    problems = []
    named = [(f"privacy.{role}", f) for role, names in roles.items() for f in names]
    named += [("privacy.hierarchies", f) for f in hierarchies]
    for key, field in named:
        if field not in fields:
            close = difflib.get_close_matches(field, fields, n=1)
            problems.append(f"{key} names '{field}'"
                            + (f" (did you mean '{close[0]}'?)" if close else ""))
    if problems:
        raise ConfigError(
            f"{'; '.join(problems)}, but the training records have no such field; their "
            f"fields are {', '.join(fields) or 'none'}. Fix the name where the role is set "
            "(e.g. `privacy.quasi_identifiers=[gender,age_band,city]`).")
