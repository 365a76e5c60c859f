"""Raw records to model inputs: one object with fitted state, called by training and serving.

A *record* is a JSON object of the fields a client has (an Ames sale's columns, a loan
application). A :class:`Preprocessor` turns a list of records into the model's input tensors
with state fitted on the training split only (scalers, vocabularies); the recipe's datamodule
builds its training tensors through it, and ``guardrail export`` and ``guardrail serve`` load
the same object from the run directory, so training-serving skew can only come from outside
it. Its state is JSON (``preprocessor.json``): loading it never unpickles anything; the class
is imported by name and must subclass :class:`Preprocessor`.

:class:`TabularPreprocessor` serves tables of numeric and categorical columns (EST, CCF):
``log1p`` where asked, standardisation by training mean and deviation, and category codes
(0 for a level training never saw).

Example:
    >>> pre = TabularPreprocessor.fit([{"area": 1.0, "kind": "a"}, {"area": 3.0, "kind": "b"}],
    ...                               numeric=["area"], categorical=["kind"])
    >>> x_num, x_cat = pre.transform([{"area": 2.0, "kind": "z"}])
    >>> x_num.tolist(), x_cat.tolist(), pre.fields()
    ([[0.0]], [[0]], {'area': 'numeric', 'kind': 'categorical'})
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "preprocessor.json"
    >>> save_preprocessor(pre, path)
    >>> load_preprocessor(path).transform([{"area": 3.0, "kind": "b"}])[1].tolist()
    [[2]]

"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from guardrail.errors import DataError
from guardrail.io import write_json

Record = Mapping[str, Any]
FORMAT = 1
FILE = "preprocessor.json"
UNKNOWN = 0  # category code of a level never seen in training rows
MISSING = "<missing>"  # a missing category (e.g. no masonry veneer) is a level of its own

__all__ = ["FILE", "Encoding", "Preprocessor", "Record", "TabularPreprocessor",
           "TensorPreprocessor", "load_preprocessor", "preprocessor_state", "records_of",
           "restore_preprocessor", "save_preprocessor"]


class Preprocessor:
    """Base class: raw records in, the model's input tensors out, fitted state as JSON.

    Subclasses implement :meth:`transform`, :meth:`state_dict` and :meth:`from_state_dict`;
    :meth:`fields` names the fields a record must carry and their kinds (``numeric``,
    ``categorical``, ``id``, ``sequence``, ``grid``), which the data contract starts from;
    :meth:`predictions` turns the model's output into what a client is answered (default: one
    list or number per record).
    """

    #: Kind of every field, when it is the same for every instance (else override fields()).
    kinds: ClassVar[dict[str, str]] = {}

    def fields(self) -> dict[str, str]:
        """``{field: kind}`` of the fields a record carries."""
        return dict(self.kinds)

    def transform(self, records: Sequence[Record]) -> tuple[torch.Tensor, ...]:
        """The model's input tensors for ``records`` (batch dimension first)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The fitted state, JSON-serialisable."""
        raise NotImplementedError

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> Preprocessor:
        """The preprocessor :meth:`state_dict` describes."""
        raise NotImplementedError

    def predictions(self, output: torch.Tensor) -> list[Any]:
        """What a client is answered for each record, from the model's output."""
        return output.detach().cpu().tolist()

    def vocabularies(self) -> dict[str, list[Any]]:
        """Values of categorical or id fields the model knows beyond the training records.

        A recommender's catalogue holds movies nobody rated in training, which it scores from
        their content: the data contract counts them as known (default: none).
        """
        return {}


def preprocessor_state(pre: Preprocessor) -> dict[str, Any]:
    """``pre`` as JSON-ready data: its class by import path and its fitted state."""
    cls = type(pre)
    return {"format": FORMAT, "class": f"{cls.__module__}:{cls.__qualname__}",
            "state": pre.state_dict()}


def restore_preprocessor(saved: Mapping[str, Any], source: str) -> Preprocessor:
    """The preprocessor :func:`preprocessor_state` described; its class is imported by name.

    Args:
        saved: ``{"class": "module:Name", "state": {...}}``.
        source: Where ``saved`` came from (a file, a checkpoint), for the error message.

    Raises:
        DataError: ``saved`` is malformed, or names a class that cannot be imported or is not
            a :class:`Preprocessor`.
    """
    try:
        module, _, name = saved["class"].partition(":")
        state = saved["state"]
    except (KeyError, TypeError, AttributeError) as err:
        raise DataError(f"The preprocessor in {source} cannot be read ({type(err).__name__}: "
                        f"{err}); re-run training, or export from a run directory that has "
                        f"one.") from None
    try:
        cls: Any = importlib.import_module(module)
        for part in name.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError, ValueError) as err:
        raise DataError(f"{source} names the preprocessor class {saved['class']!r}, which "
                        f"cannot be imported here ({err}); install the package that defines it "
                        "(for a recipe of your own: put its folder on PYTHONPATH).") from None
    if not (isinstance(cls, type) and issubclass(cls, Preprocessor)):
        raise DataError(f"{source} names {saved['class']!r}, which is not a "
                        "guardrail.preprocess.Preprocessor; refusing to load it.")
    return cls.from_state_dict(state)


def save_preprocessor(pre: Preprocessor, path: str | Path) -> None:
    """Write ``pre`` as JSON (its class by import path, and its state), atomically."""
    write_json(Path(path), preprocessor_state(pre))


def load_preprocessor(path: str | Path) -> Preprocessor:
    """The preprocessor saved at ``path``; its class is imported by name, nothing unpickled.

    Raises:
        DataError: The file is missing or unreadable, or names a class that cannot be
            imported or is not a :class:`Preprocessor`.
    """
    import json

    path = Path(path)
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"The preprocessor file {path} cannot be read ({type(err).__name__}: "
                        f"{err}); re-run training, or export from a run directory that has "
                        f"one.") from None
    return restore_preprocessor(saved, str(path))


def records_of(frame: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    """``frame``'s rows as JSON records of ``columns``: Python scalars, missing as None.

    Example:
        >>> records_of(pd.DataFrame({"a": [1, 2], "b": ["x", None], "c": [0.5, float("nan")]}),
        ...            ["a", "b", "c"])
        [{'a': 1, 'b': 'x', 'c': 0.5}, {'a': 2, 'b': None, 'c': None}]

    """
    part = frame[list(columns)].astype(object)
    part = part.where(pd.notna(part), None)
    return part.to_dict("records")


@dataclasses.dataclass
class Encoding:
    """Feature encoding fitted on training rows only (no statistic sees validation or test).

    Numeric columns: ``log1p`` for ``log_features``, then standardised by training mean/std.
    Categorical columns: code ``UNKNOWN`` (0) for levels unseen in training, 1.. otherwise.

    Example:
        >>> train = pd.DataFrame({"area": [1.0, 3.0], "kind": ["a", "b"]})
        >>> enc = Encoding.fit(train, ["area"], ["kind"])
        >>> x_num, x_cat = enc.transform(pd.DataFrame({"area": [2.0], "kind": ["z"]}))
        >>> x_num.tolist(), x_cat.tolist(), enc.cardinalities
        ([[0.0]], [[0]], [3])

    """

    numeric: list[str]
    categorical: list[str]
    log_features: list[str]
    mean: np.ndarray  # [n_num], after log1p
    std: np.ndarray  # [n_num]
    vocab: dict[str, dict[str, int]]  # column -> level -> code (1..)

    @classmethod
    def fit(cls, train: pd.DataFrame, numeric: list[str], categorical: list[str],
            log_features: Sequence[str] = ()) -> Encoding:
        """Fit means, standard deviations and vocabularies on ``train``."""
        enc = cls(list(numeric), list(categorical), [c for c in log_features if c in numeric],
                  np.zeros(len(numeric)), np.ones(len(numeric)), {})
        raw = enc._numeric(train)  # [N_train, n_num]
        enc.mean, std = raw.mean(0), raw.std(0)
        enc.std = np.where(std > 0, std, 1.0)  # a column constant in training stays finite
        for col in categorical:
            levels = sorted(set(_levels(train[col])))
            enc.vocab[col] = {level: i + 1 for i, level in enumerate(levels)}
        return enc

    @property
    def cardinalities(self) -> list[int]:
        """Embedding rows per categorical column, the unknown index included."""
        return [len(self.vocab[c]) + 1 for c in self.categorical]

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(x_num float32 [N, n_num], x_cat int64 [N, n_cat])`` of ``frame``."""
        x_num = ((self._numeric(frame) - self.mean) / self.std).astype(np.float32)
        codes = [[self.vocab[c].get(v, UNKNOWN) for v in _levels(frame[c])]
                 for c in self.categorical]
        x_cat = np.array(codes, dtype=np.int64).T.reshape(len(frame), len(self.categorical))
        return x_num, x_cat

    def transform_records(self, records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`transform` of records without a frame: the same numbers, 10x faster on one.

        A served request of one record spends its time here; pandas would take most of it.
        """
        n = len(records)
        try:
            raw = np.array([[np.nan if r.get(c) is None else float(r[c]) for c in self.numeric]
                            for r in records], dtype=float).reshape(n, len(self.numeric))
        except (TypeError, ValueError) as err:
            raise DataError(f"A numeric feature holds a value that is not a number ({err}); "
                            "check records against the data contract first.") from None
        missing = np.isnan(raw)
        if missing.any():
            bad = {c: int(k) for c, k in zip(self.numeric, missing.sum(0), strict=True) if k}
            raise DataError(
                f"Numeric feature columns contain NaN (column: count {bad}); the recipe does "
                f"not impute. Leave {next(iter(bad))!r} out of the features (`data.exclude` or "
                "`data.features`), or clean the data.")
        for j, col in enumerate(self.numeric):
            if col in self.log_features:
                if (raw[:, j] < 0).any():
                    raise DataError(f"Column {col!r} has negative values, so log1p is "
                                    f"undefined; remove it from `data.log_features`.")
                raw[:, j] = np.log1p(raw[:, j])
        x_num = ((raw - self.mean) / self.std).astype(np.float32)
        x_cat = np.array([[self.vocab[c].get(_level(r.get(c)), UNKNOWN) for c in self.categorical]
                          for r in records], dtype=np.int64).reshape(n, len(self.categorical))
        return x_num, x_cat

    def state_dict(self) -> dict[str, Any]:
        """JSON state: columns, means and deviations as lists, vocabularies."""
        return {"numeric": self.numeric, "categorical": self.categorical,
                "log_features": self.log_features, "mean": self.mean.tolist(),
                "std": self.std.tolist(), "vocab": self.vocab}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> Encoding:
        """The encoding :meth:`state_dict` describes."""
        return cls(list(state["numeric"]), list(state["categorical"]),
                   list(state["log_features"]), np.asarray(state["mean"], dtype=float),
                   np.asarray(state["std"], dtype=float),
                   {c: {str(k): int(v) for k, v in levels.items()}
                    for c, levels in state["vocab"].items()})

    def _numeric(self, frame: pd.DataFrame) -> np.ndarray:
        values = frame[self.numeric].astype(float)
        bad = {c: int(n) for c, n in values.isna().sum().items() if n}
        if bad:
            raise DataError(
                f"Numeric feature columns contain NaN (column: count {bad}); the recipe does "
                f"not impute. Leave {next(iter(bad))!r} out of the features (`data.exclude` or "
                "`data.features`), or clean the data."
            )
        for col in self.log_features:
            if (values[col] < 0).any():
                raise DataError(f"Column {col!r} has negative values, so log1p is undefined; "
                                f"remove it from `data.log_features`.")
            values[col] = np.log1p(values[col])
        return values.to_numpy(float)


class TabularPreprocessor(Preprocessor):
    """Records of numeric and categorical columns to ``(x_num, x_cat)``, by an :class:`Encoding`.

    The encoding is fitted on the training records; without categorical columns the inputs
    are ``(x_num,)``.

    Example:
        >>> pre = TabularPreprocessor.fit([{"x": 1.0}, {"x": 3.0}], ["x"], categorical=[])
        >>> [t.tolist() for t in pre.transform([{"x": 3.0}])]
        [[[1.0]]]

    """

    def __init__(self, encoding: Encoding) -> None:
        self.encoding = encoding

    @classmethod
    def fit(cls, records: Sequence[Record] | pd.DataFrame, numeric: Sequence[str],
            categorical: Sequence[str], log_features: Sequence[str] = ()) -> TabularPreprocessor:
        """Fitted on training ``records`` (or a frame of them)."""
        frame = records if isinstance(records, pd.DataFrame) else _frame(
            records, [*numeric, *categorical])
        return cls(Encoding.fit(frame, list(numeric), list(categorical), log_features))

    def fields(self) -> dict[str, str]:
        """Numeric columns, then categorical ones."""
        return {**{c: "numeric" for c in self.encoding.numeric},
                **{c: "categorical" for c in self.encoding.categorical}}

    def transform(self, records: Sequence[Record]) -> tuple[torch.Tensor, ...]:
        """``(x_num float32 [N, n_num], x_cat int64 [N, n_cat])``, or ``(x_num,)``."""
        enc = self.encoding
        x_num, x_cat = enc.transform_records(records)
        if not enc.categorical:
            return (torch.from_numpy(x_num),)
        return torch.from_numpy(x_num), torch.from_numpy(x_cat)

    def state_dict(self) -> dict[str, Any]:
        """The encoding's state."""
        return self.encoding.state_dict()

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> TabularPreprocessor:
        """The preprocessor :meth:`state_dict` describes."""
        return cls(Encoding.from_state_dict(state))


class TensorPreprocessor(Preprocessor):
    """Records of tensors as nested lists, one field per forward input (``x0``, ``x1``, ...).

    What a plain ``LightningModule`` without raw records serves: the record carries each
    input sample as a (nested) JSON list of the dtype and shape seen in training: a
    ``sequence`` field for a vector per sample, a ``grid`` for a matrix or more.

    Example:
        >>> import torch
        >>> long = torch.zeros(4, 2, dtype=torch.long)
        >>> pre = TensorPreprocessor.fit((torch.zeros(4, 2, 2), long))
        >>> pre.fields(), pre.records((torch.ones(1, 2, 2), torch.ones(1, 2, dtype=torch.long)))
        ({'x0': 'grid', 'x1': 'sequence'}, [{'x0': [[1.0, 1.0], [1.0, 1.0]], 'x1': [1, 1]}])
        >>> [t.dtype for t in pre.transform([{"x0": [[1, 2], [3, 4]], "x1": [0, 1]}])]
        [torch.float32, torch.int64]

    """

    def __init__(self, dtypes: Sequence[str], shapes: Sequence[Sequence[int]]) -> None:
        self.dtypes, self.shapes = [str(d) for d in dtypes], [list(s) for s in shapes]

    @classmethod
    def fit(cls, inputs: Sequence[torch.Tensor]) -> TensorPreprocessor:
        """The dtypes and per-sample shapes of ``inputs`` (batch dimension first)."""
        return cls([str(x.dtype).removeprefix("torch.") for x in inputs],
                   [list(x.shape[1:]) for x in inputs])

    def fields(self) -> dict[str, str]:
        """``x<i>``: by the per-sample shape: a scalar, a ``sequence`` (1-D) or a ``grid``.

        A scalar is ``numeric`` when floating-point, else ``categorical`` (an id or a code).
        """
        kinds = {}
        for i, (d, shape) in enumerate(zip(self.dtypes, self.shapes, strict=True)):
            if len(shape) >= 2:
                kinds[f"x{i}"] = "grid"
            elif len(shape) == 1:
                kinds[f"x{i}"] = "sequence"
            else:
                kinds[f"x{i}"] = "numeric" if getattr(torch, d).is_floating_point \
                    else "categorical"
        return kinds

    def records(self, inputs: Sequence[torch.Tensor]) -> list[dict[str, Any]]:
        """The records of a batch of ``inputs``: what a client sends for them."""
        columns = [x.detach().cpu().tolist() for x in inputs]
        return [{f"x{i}": column[row] for i, column in enumerate(columns)}
                for row in range(len(columns[0]) if columns else 0)]

    def transform(self, records: Sequence[Record]) -> tuple[torch.Tensor, ...]:
        """One tensor per field, of the training dtype, batch dimension first."""
        return tuple(
            torch.tensor([r[f"x{i}"] for r in records], dtype=getattr(torch, d)).reshape(
                len(records), *shape)
            for i, (d, shape) in enumerate(zip(self.dtypes, self.shapes, strict=True)))

    def state_dict(self) -> dict[str, Any]:
        """Dtypes and per-sample shapes."""
        return {"dtypes": self.dtypes, "shapes": self.shapes}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> TensorPreprocessor:
        """The preprocessor :meth:`state_dict` describes."""
        return cls(state["dtypes"], state["shapes"])


def _frame(records: Sequence[Record], columns: list[str]) -> pd.DataFrame:
    """A frame of ``columns`` from records (a missing key reads as a missing value)."""
    return pd.DataFrame.from_records([{c: r.get(c) for c in columns} for r in records],
                                     columns=columns)


def _levels(column: pd.Series) -> list[str]:
    return [MISSING if pd.isna(v) else str(v) for v in column]


def _level(value: Any) -> str:
    """A record's category as the vocabulary holds it (:func:`_levels` of one value)."""
    return MISSING if value is None or (isinstance(value, float) and value != value) \
        else str(value)
