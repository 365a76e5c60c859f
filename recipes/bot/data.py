"""Per-player poker action sequences for the BOT recipe, split by player, with baselines.

The paper's poker-bot project was cancelled because nobody could say when the detector would
be good enough. ``data.n_players`` (the whole population) and ``data.train_fraction`` (the
share of training players used, with validation and test fixed) let a learning curve over
data size be drawn; validation metrics are logged every epoch for the curve over training.
What a client sends for a player, ``records(split)``, is the session's action list (no label);
the inputs are built from those records by the
:class:`~guardrail.recipes.bot.preprocess.BotPreprocessor` that ``preprocessor()`` returns.

Example:
    >>> dm = BotDataModule(n_players=200, n_actions=16, bot_rate=0.05, batch_size=32)
    >>> x_num, x_cat, y = next(iter(dm.train_dataloader()))
    >>> x_num.shape, x_cat.shape, y.dtype
    (torch.Size([32, 16, 10]), torch.Size([32, 16, 3]), torch.float32)

"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from guardrail.datamodule import SPLITS, RecipeDataModule, check_disjoint, loader_problems
from guardrail.errors import ConfigError, DataError
from guardrail.recipes.scoring import binary_scores, negatives_per_positive

from .generator import ACTIONS, POSITIONS, STREETS, PokerLogs, generate_logs
from .preprocess import CATEGORICAL, NUMERIC, BotPreprocessor, action_features, player_records

__all__ = ["CARDINALITIES", "CATEGORICAL", "NUMERIC", "SPLITS", "BotDataModule",
           "action_features", "split_players", "timing_variance_score"]

CARDINALITIES = (len(STREETS), len(POSITIONS), len(ACTIONS))


def timing_variance_score(time_to_act_ms: np.ndarray) -> np.ndarray:
    """Score each player by ``-variance`` of log time-to-act: the rule baseline (bots are regular).

    Example:
        >>> timing_variance_score(np.array([[1000.0, 1000.0], [1000.0, np.e * 1000.0]]))
        array([-0.  , -0.25])

    """
    return -np.log(time_to_act_ms).var(axis=1)


def split_players(
    labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int,
) -> np.ndarray:
    """Split code per player (0 train, 1 val, 2 test), stratified by label, seeded.

    Stratifying keeps the rare bots in every split in proportion (a test split without bots
    would make average precision undefined).

    Example:
        >>> codes = split_players(np.array([0] * 8 + [1] * 4), 0.25, 0.25, seed=0)
        >>> [int(((codes == s) & (np.arange(12) >= 8)).sum()) for s in range(3)]
        [2, 1, 1]

    """
    rng = np.random.default_rng(seed)
    codes = np.zeros(len(labels), dtype=np.int64)
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        n_val, n_test = round(val_fraction * len(members)), round(test_fraction * len(members))
        codes[members[:n_test]] = 2
        codes[members[n_test:n_test + n_val]] = 1
    return codes


class BotDataModule(RecipeDataModule):
    """Synthetic per-player action sequences as ``(x_num, x_cat, label)``, split by player.

    Numeric inputs are standardised with the mean and std of the *training* players' actions
    only; the categorical vocabularies (street, position, action) are fixed by the game.

    Args:
        n_players: Players simulated (all splits together).
        n_actions: Actions per player (the sequence length).
        bot_rate: Share of players that are bots (the paper's setting: 1-5 %).
        humanised_share: Share of the bots whose timing and clicks imitate humans.
        seed: Seed of the generator and of the split.
        val_fraction: Share of players (of each label) held out for validation.
        test_fraction: Share of players (of each label) held out for test.
        train_fraction: Share of the training players actually used (stratified, seeded):
            the learning-curve knob; validation and test stay the same.
        batch_size: Players per batch.
        num_workers: DataLoader workers (the tensors are in memory; 0 is fastest).

    Batches are ``(x_num [B, T, 10] float32, x_cat [B, T, 3] int64, label [B] float32)``.

    Example:
        >>> dm = BotDataModule(n_players=200, n_actions=16, bot_rate=0.05)
        >>> sorted(dm.baselines()), round(dm.module_kwargs()["class_ratio"], 1)  # 104 / 6
        (['prevalence', 'timing_variance'], 17.3)

    """

    def __init__(
        self, n_players: int = 4000, n_actions: int = 64, bot_rate: float = 0.03,
        humanised_share: float = 0.5, seed: int = 42, val_fraction: float = 0.2,
        test_fraction: float = 0.25, train_fraction: float = 1.0, batch_size: int = 128,
        num_workers: int = 0,
    ) -> None:
        problems = loader_problems(batch_size, num_workers)
        if not 0.0 < bot_rate <= 0.5:
            problems.append(f"`data.bot_rate={bot_rate}` must be in (0, 0.5]; the paper's "
                            "setting is 0.01-0.05, e.g. `data.bot_rate=0.03`")
        if not 0.0 <= humanised_share <= 1.0:
            problems.append(f"`data.humanised_share={humanised_share}` must be in [0, 1], "
                            "e.g. `data.humanised_share=0.5`")
        if not 0.0 < train_fraction <= 1.0:
            problems.append(f"`data.train_fraction={train_fraction}` must be in (0, 1], "
                            "e.g. `data.train_fraction=0.25`")
        if min(val_fraction, test_fraction) <= 0 or val_fraction + test_fraction >= 1:
            problems.append(f"`data.val_fraction={val_fraction}` and `data.test_fraction="
                            f"{test_fraction}` must be > 0 and sum to < 1, e.g. "
                            "`data.val_fraction=0.2 data.test_fraction=0.25`")
        if n_actions < 2:
            problems.append(f"`data.n_actions={n_actions}` must be >= 2 (a variance needs two "
                            "actions), e.g. `data.n_actions=64`")
        n_bots = max(1, round(bot_rate * n_players))
        n_test_bots = round(test_fraction * n_bots)
        if min(n_test_bots, round(val_fraction * n_bots)) < 1:
            problems.append(f"`data.n_players={n_players}` with `data.bot_rate={bot_rate}` "
                            f"gives {n_bots} bots, too few to put one in validation and test; "
                            "raise it, e.g. `data.n_players=4000`")
        if problems:
            raise ConfigError("BOT recipe config: " + "; ".join(problems) + ".")
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.save_hyperparameters(logger=False)
        self.logs: PokerLogs | None = None
        self.split: dict[str, np.ndarray] = {}  # split name -> player row indices
        self.mean = self.std = None

    def build_splits(self) -> dict[str, TensorDataset]:
        """Generate, split by player, check and standardise."""
        hp = self.hparams
        logs = generate_logs(hp.n_players, hp.n_actions, hp.bot_rate, hp.humanised_share, hp.seed)
        codes = split_players(logs.label, hp.val_fraction, hp.test_fraction, hp.seed)
        rows = {name: np.flatnonzero(codes == i) for i, name in enumerate(SPLITS)}
        if hp.train_fraction < 1.0:  # subsample training players, stratified like the split
            keep = split_players(logs.label[rows["train"]], hp.train_fraction, 0.0, hp.seed + 1)
            rows["train"] = rows["train"][keep == 1]
        self.split = rows
        check_disjoint({name: logs.player_id[idx] for name, idx in rows.items()}, "players", "BOT")
        for name, idx in rows.items():
            if logs.label[idx].sum() == 0 or len(idx) == 0:
                raise DataError(f"BOT synthetic data: the {name} split has {len(idx)} players "
                                f"and no bot; raise `data.n_players` or `data.bot_rate`.")
        numeric, _ = action_features(logs)
        bad = int((~np.isfinite(numeric)).sum())
        if bad:
            raise DataError(f"BOT synthetic data: {bad} non-finite numeric inputs; the "
                            "generator is broken for this config.")
        # what a client sends: a player's session as the action list the poker client logs
        records = player_records(logs)
        self._preprocessor = BotPreprocessor.fit([records[i] for i in rows["train"]])
        self.mean, self.std = self._preprocessor.mean, self._preprocessor.std
        x_num, x_cat = self._preprocessor.transform(records)
        y = torch.from_numpy(logs.label.astype(np.float32))
        self.logs = logs
        return {name: TensorDataset(x_num[idx], x_cat[idx], y[idx]) for name, idx in rows.items()}

    def records(self, split: str) -> list[dict[str, Any]]:
        """The players of ``split`` as a client sends them: their action lists, no label."""
        self.setup()
        return player_records(self.logs.subset(self.split[split]))

    def preprocessor(self) -> BotPreprocessor:
        """Standardisation of the action features, fitted on the training players."""
        self.setup()
        return self._preprocessor

    # ------------------------------------------------------------------------ the contract
    def net_kwargs(self) -> dict[str, Any]:
        """Return the network arguments: ``n_num`` and the categorical ``cardinalities``."""
        return {"n_num": len(NUMERIC), "cardinalities": list(CARDINALITIES)}

    def module_kwargs(self) -> dict[str, Any]:
        """Return the module arguments: ``feature_names``, ``class_ratio``, ``n_actions``."""
        self.setup()
        labels = self.logs.label[self.split["train"]]
        return {"feature_names": [*NUMERIC, *CATEGORICAL],
                "class_ratio": negatives_per_positive(labels), "n_actions": self.hparams.n_actions}

    def compute_baselines(self) -> dict[str, dict[str, float]]:
        """Score the timing-variance rule and a constant (training) rate on the test split."""
        test = self.logs.subset(self.split["test"])
        train_rate = float(self.logs.label[self.split["train"]].mean())
        return {
            "timing_variance": binary_scores(timing_variance_score(test.time_to_act_ms),
                                             test.label),
            "prevalence": binary_scores(np.full(len(test.label), train_rate), test.label),
        }
