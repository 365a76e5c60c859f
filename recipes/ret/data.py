"""First-week activity -> active in week 2, for the RET recipe: CDNOW purchases or app events.

Both sources become a cohort: per user a daily sequence over days 0-6 after the first event
(the first feature counts activity), static features, and the label "any activity on days
7-13". The split is by user and checked; scaling and vocabularies come from training users.
What a client sends for a user, ``records(split)``, is the week-1 log (no label); the inputs
are built from those records by the :class:`~guardrail.recipes.ret.preprocess.RetentionPreprocessor`
that ``preprocessor()`` returns, the one ``guardrail export`` and ``guardrail serve`` load.

Example:
    >>> dm = RetentionDataModule(source="synthetic", n_users=400, batch_size=32)
    >>> seq, num, cat, y = next(iter(dm.train_dataloader()))
    >>> seq.shape, num.shape, cat.shape, y.dtype
    (torch.Size([32, 7, 5]), torch.Size([32, 0]), torch.Size([32, 4]), torch.float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from guardrail.datamodule import (
    SPLITS,
    BatchedTensors,
    RecipeDataModule,
    check_disjoint,
    loader_problems,
)
from guardrail.errors import ConfigError, DataError
from guardrail.privacy.pseudonym import pseudonymiser
from guardrail.recipes.ret.cohort import (
    N_OBSERVED,
    Cohort,
    cdnow_cohort,
    load_cdnow,
    synthetic_cohort,
)
from guardrail.recipes.ret.generator import QUASI_IDENTIFIERS, support_notes, synthetic_app_events
from guardrail.recipes.ret.preprocess import (
    RetentionPreprocessor,
    cdnow_records,
    encode,
    encoded,
    synthetic_records,
)
from guardrail.recipes.scoring import binary_scores, negatives_per_positive

__all__ = ["SOURCES", "RetentionDataModule", "encode", "encoded", "repeat_rule", "split_users"]

SOURCES = ("cdnow", "synthetic")
#: The synthetic cities' regions: the generalisation of ``city`` the privacy check tries.
REGIONS = {"Stockholm": "Svealand", "Uppsala": "Svealand", "Vasteras": "Svealand",
           "Orebro": "Svealand", "Gothenburg": "Gotaland", "Malmo": "Gotaland",
           "Linkoping": "Gotaland", "Umea": "Norrland"}


def split_users(user_ids: np.ndarray, seed: int, val_fraction: float,
                test_fraction: float) -> dict[str, np.ndarray]:
    """Seeded random split of rows by user; raises ``DataError`` if a user is on two sides.

    Example:
        >>> parts = split_users(np.array(list("abcdefghij")), 0, 0.2, 0.2)
        >>> [len(parts[s]) for s in SPLITS]
        [6, 2, 2]
    """
    order = np.random.default_rng(seed).permutation(len(user_ids))
    n_val, n_test = round(val_fraction * len(order)), round(test_fraction * len(order))
    parts = dict(zip(SPLITS, np.split(order, [len(order) - n_val - n_test, len(order) - n_test]),
                     strict=True))
    for name, rows in parts.items():
        if not len(rows):
            raise DataError(f"the {name} split is empty ({len(order)} users); use more users "
                            "(`data.n_users=20000`) or other `data.val_fraction`.")
    check_disjoint({name: user_ids[rows] for name, rows in parts.items()}, "users", "RET")
    return parts


def repeat_rule(activity: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """The rule "active again on days 1-6" (score 1 or 0) scored against ``label``.

    Args:
        activity: ``[N, 7]`` events (or sessions) per day 0-6.
        label: ``[N]`` bool, active on days 7-13.

    Example:
        >>> act = np.array([[1, 0, 0, 0, 0, 0, 0], [1, 2, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 1]])
        >>> repeat_rule(act, np.array([False, True, False]))
        {'average_precision': 0.5, 'auroc': 0.75}
    """
    return binary_scores((np.asarray(activity)[:, 1:] > 0).any(1).astype(float), label)


class RetentionDataModule(RecipeDataModule):
    """Users as ``(seq, static_num, static_cat, label)`` batches, split by user.

    ``source="cdnow"`` (default): the real CDNOW purchase log (Fader & Hardie, via
    ``lifetimes``); 23,570 customers, 5.4 % active on days 7-13. ``source="synthetic"``: the
    app-event generator (:func:`synthetic_app_events`), about 30 % active, with the
    quasi-identifiers gender, age band and city as static features.
    ``quasi_identifiers=False`` drops them, as the paper's privacy rules did (CDNOW has none,
    so there it changes nothing).

    Args:
        source: ``cdnow`` or ``synthetic``.
        quasi_identifiers: Synthetic only: keep gender, age band and city as features.
        n_users: Synthetic only: number of users generated.
        batch_size: Users per batch.
        num_workers: DataLoader workers (the tensors are in memory; 0 is fastest here).
        seed: Seed of the user split, the training shuffle and the generator.
        val_fraction: Fraction of users for validation.
        test_fraction: Fraction of users for test.
        logged_days: Days of each user's first week that were logged (1-7; the rest of the
            week is not sent): what one more day of logging buys.
        logged_fraction: Share of the training users whose logs are kept (seeded; validation
            and test unchanged): what share of users must be logged.
        support_notes: Synthetic only: records carry ``note``, the free text each user sent
            to support (:func:`~guardrail.recipes.ret.generator.support_notes`; 5% hold an
            e-mail address or a phone number). The model does not read it.
        pseudonymise: ``off``, ``key`` or ``random``: user ids replaced by keyed pseudonyms
            (:func:`guardrail.privacy.pseudonymiser`) as soon as they are loaded.
        key_file: The pseudonym key's file (``key`` mode; else ``GUARDRAIL_PSEUDONYM_KEY``).

    Example:
        >>> dm = RetentionDataModule(source="synthetic", n_users=300, quasi_identifiers=False)
        >>> dm.module_kwargs()["feature_names"]
        ['open', 'level_start', 'level_complete', 'purchase', 'social', 'install_weekday']
    """

    def __init__(
        self, source: str = "cdnow", quasi_identifiers: bool = True, n_users: int = 20_000,
        batch_size: int = 256, num_workers: int = 0, seed: int = 42,
        val_fraction: float = 0.15, test_fraction: float = 0.15, logged_days: int = N_OBSERVED,
        logged_fraction: float = 1.0, support_notes: bool = False, pseudonymise: str = "off",
        key_file: str | None = None,
    ) -> None:
        problems = []
        if source not in SOURCES:
            problems.append(f"`data.source={source}` is not a RET source; choose one of "
                            f"{', '.join(SOURCES)} (e.g. `data.source=synthetic`)")
        problems += loader_problems(batch_size, num_workers)
        if n_users < 20:
            problems.append(f"`data.n_users` must be >= 20, got {n_users} "
                            "(e.g. `data.n_users=20000`)")
        for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 < value < 0.5:
                problems.append(f"`data.{key}` must be in (0, 0.5), got {value} "
                                f"(e.g. `data.{key}=0.15`)")
        if not (isinstance(logged_days, int) and 1 <= logged_days <= N_OBSERVED):
            problems.append(f"`data.logged_days` must be a whole number of days in 1-{N_OBSERVED}, "
                            f"got {logged_days!r} (e.g. `data.logged_days=3`)")
        if not 0.0 < logged_fraction <= 1.0:
            problems.append(f"`data.logged_fraction` must be in (0, 1], got {logged_fraction} "
                            "(e.g. `data.logged_fraction=0.5`)")
        if support_notes and source != "synthetic":
            problems.append("`data.support_notes=true` needs `data.source=synthetic` (CDNOW "
                            "has no free text)")
        if problems:
            raise ConfigError("; ".join(problems) + ".")
        pseudonymiser(pseudonymise, key_file)  # refuse a missing key before anything loads
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.save_hyperparameters(logger=False)
        self.cohort: Cohort | None = None
        self.split: dict[str, np.ndarray] = {}

    def build_splits(self) -> dict[str, BatchedTensors]:
        """Load, derive, split by user and encode with training users' statistics."""
        hp = self.hparams
        if hp.source == "cdnow":
            frame = load_cdnow()
            cohort, records = cdnow_cohort(frame), cdnow_records(frame, hp.logged_days)
        else:
            users, events = synthetic_app_events(hp.n_users, hp.seed)
            cohort = synthetic_cohort(users, events, hp.quasi_identifiers)
            records = synthetic_records(users, events, hp.quasi_identifiers, hp.logged_days)
            if hp.support_notes:
                records = [{**r, "note": n}
                           for r, n in zip(records, support_notes(len(users), hp.seed),
                                           strict=True)]
        keyed = pseudonymiser(hp.pseudonymise, hp.key_file)
        if keyed is not None:  # the ids go no further than the split: in cohort order still
            cohort.user_ids = np.array(keyed.many(cohort.user_ids))
        self.split = split_users(cohort.user_ids, hp.seed, hp.val_fraction, hp.test_fraction)
        if hp.logged_fraction < 1.0:  # the users whose logs were kept, seeded like the split
            train = self.split["train"]
            keep = np.random.default_rng(hp.seed + 1).permutation(len(train))
            self.split["train"] = np.sort(train[keep[:max(1, round(hp.logged_fraction
                                                                    * len(train)))]])
        for name, idx in self.split.items():
            if not cohort.label[idx].any():
                raise DataError(f"data.source={hp.source}: the {name} split has no positive "
                                "users (active on days 7-13); use more users.")
        # what a client sends: a user's week-1 log (and static fields), fitted on training users
        self._records = records
        self._preprocessor = RetentionPreprocessor.fit(
            [records[i] for i in self.split["train"]], hp.source, hp.quasi_identifiers)
        self.day_encoding = self._preprocessor.days
        self.static_encoding = self._preprocessor.static_encoding
        seq, num, cat = self._preprocessor.transform(records)
        y = torch.from_numpy(cohort.label.astype(np.float32))
        self.cohort = cohort
        return {n: BatchedTensors(seq[i], num[i], cat[i], y[i]) for n, i in self.split.items()}

    def records(self, split: str) -> list[dict[str, Any]]:
        """The users of ``split`` as a client sends them: the week-1 log, no label."""
        self.setup()
        return [self._records[i] for i in self.split[split]]

    def privacy_roles(self) -> dict[str, Any]:
        """Synthetic records with them: gender, age band and city are quasi-identifiers."""
        if self.hparams.source != "synthetic" or not self.hparams.quasi_identifiers:
            return {}
        return {"quasi_identifiers": list(QUASI_IDENTIFIERS), "hierarchies": {"city": REGIONS}}

    def preprocessor(self) -> RetentionPreprocessor:
        """The records' encoding, fitted on the training users."""
        self.setup()
        return self._preprocessor

    # ------------------------------------------------------------------------ the contract
    def net_kwargs(self) -> dict[str, Any]:
        """Data-derived network arguments: sequence shape, static widths, cardinalities."""
        self.setup()
        return {"n_seq_features": len(self.cohort.seq_features), "n_days": N_OBSERVED,
                "n_static_num": self.cohort.static_num.shape[1],
                "cardinalities": self.static_encoding.cardinalities}

    def module_kwargs(self) -> dict[str, Any]:
        """``feature_names`` (per-day, numeric static, categorical) and ``pos_weight``.

        ``pos_weight`` is the number of training negatives per training positive.
        """
        self.setup()
        c, y = self.cohort, self.cohort.label[self.split["train"]]
        return {"feature_names": [*c.seq_features, *c.static_num.columns, *c.static_cat.columns],
                "pos_weight": negatives_per_positive(y)}

    def compute_baselines(self) -> dict[str, dict[str, float]]:
        """Test-split ``auroc`` and ``average_precision`` of the repeat rule and the base rate.

        The base rate scores every user with the training positive rate (a constant).
        """
        test = self.split["test"]
        label = self.cohort.label[test]
        base_rate = float(self.cohort.label[self.split["train"]].mean())
        logged = self.cohort.counts[test, :self.hparams.logged_days, 0]  # what the rule may see
        return {"repeat_rule": repeat_rule(logged, label),
                "base_rate": binary_scores(np.full(len(test), base_rate), label)}
