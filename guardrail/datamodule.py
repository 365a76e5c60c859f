"""``RecipeDataModule``: the scaffolding every recipe's datamodule shares, in one base class.

A recipe's datamodule says what is specific to its data: how to build the ``train``, ``val``
and ``test`` datasets (:meth:`RecipeDataModule.build_splits`), optionally how to fetch them
once (:meth:`~RecipeDataModule.prepare_data`), and the recipe contract that
``python -m guardrail.train`` reads (:class:`guardrail.recipe.RecipeDataModule`):
``net_kwargs()``, ``module_kwargs()``, ``feature_names`` and the baselines the model must beat
(:meth:`~RecipeDataModule.compute_baselines`). The base supplies the rest:

- the loaders: ``train/val/test_dataloader`` over the built splits, ``batch_size`` (and
  ``eval_batch_size`` for validation and test), ``num_workers``; only training batches are
  shuffled;
- the seed convention: one ``seed`` argument seeds the split (the subclass uses it) and the
  training shuffle (a ``torch.Generator`` of its own, so the batch order does not depend on
  what else drew from the global RNG);
- the ``prepare_data`` / ``setup`` split: ``prepare_data`` downloads or caches (Lightning runs
  it on local rank zero only); ``setup`` builds the splits once on every rank, later calls
  return at once, and a contract hook called before the Trainer exists sets up on demand;
- cached baselines: ``baselines()`` computes them once;
- :class:`BatchedTensors` and :func:`collate`, for in-memory tensors read a batch at a time.

Example:
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> class Squares(RecipeDataModule):
    ...     feature_names = ["x"]
    ...     def build_splits(self):
    ...         x = torch.arange(10.0)[:, None]
    ...         y = x[:, 0] ** 2
    ...         return {"train": TensorDataset(x[:6], y[:6]), "val": TensorDataset(x[6:8], y[6:8]),
    ...                 "test": TensorDataset(x[8:], y[8:])}
    ...     def net_kwargs(self):
    ...         return {"in_features": 1}
    ...     def compute_baselines(self):
    ...         train_mean = float(self.datasets["train"].tensors[1].mean())
    ...         test = self.datasets["test"].tensors[1]
    ...         return {"train_mean": {"rmse": float((test - train_mean).pow(2).mean().sqrt())}}
    >>> dm = Squares(batch_size=4, seed=0)
    >>> x, y = next(iter(dm.train_dataloader()))
    >>> x.shape, dm.module_kwargs(), round(dm.baselines()["train_mean"]["rmse"], 1)
    (torch.Size([4, 1]), {'feature_names': ['x']}, 63.9)

"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset, default_collate

from guardrail.errors import ConfigError, DataError

if TYPE_CHECKING:
    from guardrail.preprocess import Preprocessor

SPLITS = ("train", "val", "test")

__all__ = [
    "SPLITS", "BatchedTensors", "RecipeDataModule", "TensorRows", "check_disjoint", "collate",
    "loader_problems",
]


class RecipeDataModule(pl.LightningDataModule):
    """Base datamodule of a recipe: loaders, seeding, ``prepare_data``/``setup``, baselines.

    Subclass it, call ``super().__init__(batch_size=..., num_workers=..., seed=...)`` and
    ``self.save_hyperparameters(logger=False)`` (so checkpoints record the data config), and
    implement :meth:`build_splits`. Everything else has a default:

    ============================  ===============================================================
    hook                          default
    ============================  ===============================================================
    ``prepare_data()``            nothing (override to download; keep it idempotent)
    ``build_splits()``            required: ``{"train": ds, "val": ds, "test": ds}``
    ``net_kwargs()``              ``{}``: nothing added to the ``model:`` config
    ``module_kwargs()``           ``{"feature_names": [...]}`` when ``feature_names`` is set,
                                  else ``{}``
    ``feature_names``             not set (optional): one name per input column
    ``compute_baselines()``       ``{}`` (the run then records ``baseline.missing``)
    ``baseline_roles()``          ``{}``: every baseline is a trivial rule the model must beat
    ``shuffle_generator()``       ``torch.Generator`` seeded with ``seed``
    ``records(split)``            ``None``: no raw records (the model serves tensors)
    ``preprocessor()``            ``None``: no raw-record preprocessing
    ``record_inputs(split)``      ``None``: ``datasets[split]`` holds the records' inputs
    ``privacy_roles()``           ``{}``: no field of the records is declared personal
    ============================  ===============================================================

    A datamodule whose inputs come from raw records (what a client will send: a JSON object
    per sample) returns them from ``records(split)``, aligned with ``datasets[split]`` row for
    row, and the :class:`~guardrail.preprocess.Preprocessor` fitted on the training records
    from ``preprocessor()``; its tensors should come from ``preprocessor().transform(records)``,
    so that training and serving run the same code. The preprocessor's state is saved in
    checkpoints (:meth:`state_dict`) and, by the ``DataContract`` callback, in the run
    directory.

    Args:
        batch_size: Samples per training batch.
        num_workers: DataLoader worker processes (in-memory tensors: 0 is fastest).
        seed: Seed of the training shuffle; subclasses use it for their split too.
        eval_batch_size: Samples per validation/test batch; ``None``: ``batch_size``.

    Raises:
        ConfigError: ``batch_size``, ``eval_batch_size`` or ``num_workers`` out of range.

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> class Ones(RecipeDataModule):
        ...     def build_splits(self):
        ...         return {s: TensorDataset(torch.ones(5, 2)) for s in SPLITS}
        >>> dm = Ones(batch_size=2)
        >>> [len(dm.train_dataloader()), len(dm.val_dataloader())], dm.baselines()
        ([3, 3], {})
        >>> Ones(batch_size=0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        guardrail.errors.ConfigError: Ones: `data.batch_size=0` must be >= 1 ...

    """

    def __init__(self, batch_size: int = 32, num_workers: int = 0, seed: int = 0,
                 eval_batch_size: int | None = None) -> None:
        super().__init__()
        problems = loader_problems(batch_size, num_workers, eval_batch_size)
        if problems:
            raise ConfigError(f"{type(self).__name__}: " + "; ".join(problems) + ".")
        self.batch_size, self.num_workers, self.seed = int(batch_size), int(num_workers), int(seed)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.datasets: dict[str, Dataset] = {}
        self._baselines: dict[str, dict[str, float]] | None = None

    # ----------------------------------------------------------------- what subclasses give
    def build_splits(self) -> Mapping[str, Dataset]:
        """The ``train``, ``val`` and ``test`` datasets; runs once, on every rank.

        Read what :meth:`prepare_data` stored; fit every statistic (scaling, vocabularies) on
        the training split only. Attributes set here (an encoding, the split's row indices)
        are there for the contract hooks.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement build_splits() returning "
            "{'train': Dataset, 'val': Dataset, 'test': Dataset}.")

    def compute_baselines(self) -> Mapping[str, Mapping[str, float]]:
        """Baseline name -> test metric short name (``rmse``, not ``test/rmse``) -> value.

        Called once, after :meth:`setup`; :meth:`baselines` caches the result.
        """
        return {}

    def net_kwargs(self) -> dict[str, Any]:
        """Keyword arguments added to the ``model:`` config (input widths, vocabularies)."""
        return {}

    def module_kwargs(self) -> dict[str, Any]:
        """Keyword arguments added to the ``module:`` config: ``feature_names`` when set."""
        names = getattr(self, "feature_names", None)
        return {} if names is None else {"feature_names": [str(n) for n in names]}

    def baseline_roles(self) -> dict[str, str]:
        """Baseline name -> ``trivial`` or ``reference``; one not named is ``trivial``."""
        return {}

    def shuffle_generator(self) -> torch.Generator | None:
        """The generator of the training shuffle: seeded with ``seed``, new per loader.

        Each ``train_dataloader()`` starts the same sequence of epoch orders, so two runs with
        one ``seed`` see the same batches. ``None`` draws from torch's global RNG instead.
        """
        return torch.Generator().manual_seed(self.seed)

    def records(self, split: str) -> list[dict[str, Any]] | None:
        """Raw records of ``split`` (JSON objects), row for row with ``datasets[split]``.

        ``None`` (the default): this data has no raw-record form; the model serves tensors.
        """
        return None

    def preprocessor(self) -> Preprocessor | None:
        """The preprocessor fitted on the training records (``None``: none)."""
        return None

    def record_inputs(self, split: str) -> tuple[torch.Tensor, ...] | None:
        """The model inputs of ``records(split)``, row for row, built the training way.

        ``None`` (the default): ``datasets[split]`` holds them, in the records' order. A
        datamodule whose split holds other rows (REC's per-user ranking rows) gives them
        here, so that the export's parity test compares like with like.
        """
        return None

    def privacy_roles(self) -> dict[str, Any]:
        """What the records' fields are to privacy, for :class:`~guardrail.callbacks.PrivacyGuard`.

        Keys (each optional): ``direct_identifiers``, ``quasi_identifiers``, ``sensitive``
        (lists of record fields) and ``hierarchies`` (per quasi-identifier, values mapped to
        coarser ones). The ``privacy.*`` config adds to them.
        """
        return {}

    # -------------------------------------------------------------------- what the base does
    def state_dict(self) -> dict[str, Any]:
        """What checkpoints keep of the data: the fitted preprocessor's class and state."""
        pre = self.preprocessor() if self.datasets else None
        if pre is None:
            return {}
        from guardrail.preprocess import preprocessor_state

        return {"preprocessor": preprocessor_state(pre)}

    def setup(self, stage: str | None = None) -> None:
        """Build the splits once (:meth:`build_splits`); later calls return at once.

        Outside a Trainer (a contract hook asked for data-derived arguments first),
        :meth:`prepare_data` runs here before, on local rank zero only.
        """
        if self.datasets:
            return
        if self.trainer is None and _local_rank() == 0:
            self.prepare_data()
        datasets = dict(self.build_splits())
        missing = [s for s in SPLITS if s not in datasets]
        if missing:
            raise ConfigError(
                f"{type(self).__name__}.build_splits() returned no {', '.join(missing)} split "
                f"(it gave {', '.join(datasets) or 'none'}); return a dataset for each of "
                f"{', '.join(SPLITS)}.")
        self.datasets = datasets

    def baselines(self) -> dict[str, dict[str, float]]:
        """The baselines of :meth:`compute_baselines`, computed once and cached."""
        if self._baselines is None:
            self.setup()
            self._baselines = {str(name): {str(k): float(v) for k, v in scores.items()}
                               for name, scores in self.compute_baselines().items()}
        return {name: dict(scores) for name, scores in self._baselines.items()}

    def dataloader(self, split: str, shuffle: bool = False) -> DataLoader:
        """A loader over ``self.datasets[split]``: the one place batches are made.

        Training uses ``batch_size``, validation and test ``eval_batch_size``;
        :func:`collate` passes :class:`BatchedTensors` batches through and default-collates
        anything else.
        """
        self.setup()
        return DataLoader(
            self.datasets[split], batch_size=self.batch_size if split == "train"
            else self.eval_batch_size, shuffle=shuffle,
            generator=self.shuffle_generator() if shuffle else None, collate_fn=collate,
            num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        """Training batches, reshuffled every epoch."""
        return self.dataloader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches, in the split's order."""
        return self.dataloader("val")

    def test_dataloader(self) -> DataLoader:
        """Test batches, in the split's order."""
        return self.dataloader("test")


def raw_records(datamodule: Any, split: str) -> list[Any] | None:
    """A datamodule's raw records of ``split`` (its ``records(split)``), or None without them.

    Example:
        >>> raw_records(object(), "train") is None
        True

    """
    method = getattr(datamodule, "records", None)
    records = method(split) if callable(method) else None
    return None if records is None else list(records)


def loader_problems(batch_size: int, num_workers: int = 0,
                    eval_batch_size: int | None = None) -> list[str]:
    """What is wrong with the loader arguments, one phrase each (``[]``: nothing).

    A subclass that collects its own config problems adds these, so one error lists them all.

    Example:
        >>> loader_problems(0, num_workers=0)
        ['`data.batch_size=0` must be >= 1 (e.g. `data.batch_size=64`)']

    """
    checks = (("batch_size", batch_size, 1, 64), ("eval_batch_size", eval_batch_size, 1, 256),
              ("num_workers", num_workers, 0, 0))
    return [f"`data.{key}={value}` must be >= {low} (e.g. `data.{key}={example}`)"
            for key, value, low, example in checks if value is not None and value < low]


def check_disjoint(ids: Mapping[str, Any], unit: str, source: str) -> None:
    """Raise :class:`DataError` if one id (a player, a field, a user) is in two splits.

    Args:
        ids: Split name -> the ids of its rows (repeats allowed).
        unit: What an id names, plural, for the message (``"players"``).
        source: The data, for the message (``"BOT"``).

    Example:
        >>> check_disjoint({"train": [7, 8], "test": [9]}, "players", "BOT")
        >>> check_disjoint({"train": [7, 8], "val": [9], "test": [7]}, "players", "BOT")
        Traceback (most recent call last):
        ...
        guardrail.errors.DataError: BOT split leaks: 1 players in both train and test (e.g. 7); \
assign each of the players to one split only.

    """
    names = list(ids)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = np.intersect1d(np.asarray(ids[a]), np.asarray(ids[b]))
            if len(shared):
                raise DataError(
                    f"{source} split leaks: {len(shared)} {unit} in both {a} and {b} (e.g. "
                    f"{shared[0]}); assign each of the {unit} to one split only.")


def _local_rank() -> int:
    """The process's rank on its node, from the launcher's environment (0 without one)."""
    for key in ("LOCAL_RANK", "SLURM_LOCALID", "JSM_NAMESPACE_LOCAL_RANK"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 0


class _Batch(list):
    """Tensors already batched by :class:`BatchedTensors`: collation passes them through."""


class BatchedTensors(TensorDataset):
    """A ``TensorDataset`` that a DataLoader reads a batch at a time.

    The loader's fetcher calls ``__getitems__`` with a batch's indices; one indexing per
    tensor replaces a ``__getitem__`` per sample and the stacking after it. At RET's 1024
    users per batch the per-sample path took half of every training step
    (``resources.input_bound``). Samples, order and sampler are those of a
    ``TensorDataset``; pass :func:`collate` as the loader's ``collate_fn`` (the base's loaders
    do).

    Example:
        >>> data = BatchedTensors(torch.arange(10.0), torch.arange(10))
        >>> [x.tolist() for x in next(iter(DataLoader(data, 4, collate_fn=collate)))]
        [[0.0, 1.0, 2.0, 3.0], [0, 1, 2, 3]]
    """

    def __getitems__(self, indices: list[int]) -> _Batch:
        index = torch.as_tensor(indices, dtype=torch.long)
        return _Batch(t[index] for t in self.tensors)


def collate(data: Any) -> Any:
    """A batch from :class:`BatchedTensors` as it is; anything else by ``default_collate``."""
    return list(data) if isinstance(data, _Batch) else default_collate(data)


class TensorRows(Dataset):
    """Named tensors sharing their first dimension; a sample is a dict of their rows.

    Example:
        >>> rows = TensorRows(field=torch.zeros(3, 2), mask=torch.ones(3, 2).bool())
        >>> len(rows), sorted(rows[0]), rows.tensors["field"].shape
        (3, ['field', 'mask'], torch.Size([3, 2]))
    """

    def __init__(self, **tensors: torch.Tensor) -> None:
        sizes = {len(t) for t in tensors.values()}
        if len(sizes) > 1:
            raise ValueError(f"TensorRows needs tensors of one length, got "
                             f"{ {k: len(t) for k, t in tensors.items()} }.")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values()))) if self.tensors else 0

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.tensors.items()}
