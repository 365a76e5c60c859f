"""Config values checked against what their targets declare, before anything is built.

Every key of a ``_target_`` node (the trainer, the recipe's data, model and module, callbacks,
logger) is checked against the type its target declares in its signature (``int``,
``float``, ``bool``, ``str``, ``Optional``, ``Literal``, lists and tuples of those), and the
trainer's counts against their ranges. An annotation the check does not understand is never
a refusal. :mod:`guardrail.preflight` runs it on the composed command line.
"""

from __future__ import annotations

import collections.abc
import difflib
import inspect
import os
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

import hydra
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


def check_values(cfg: DictConfig, given: Mapping[str, str] | None = None,
                 defaults: Mapping[str, Any] | None = None) -> list[str]:
    """One paragraph per value of ``cfg`` that its ``_target_`` would refuse, nothing built.

    Each key of a node with a ``_target_`` is checked against the annotation of that
    argument in the target's signature, and the trainer's counts against their ranges. A key
    the target does not take (and no ``**kwargs``) is named too. Missing values (``???``),
    nested ``_target_`` nodes, targets that do not import and annotations the check does not
    understand are skipped: a refusal here is always a real error.

    Args:
        cfg: A composed config.
        given: Dotted key -> the command-line override that set it (named in the message).
        defaults: The config without value overrides: the examples in the fixes come from it.

    Example:
        >>> cfg = OmegaConf.create({"trainer": {"_target_": "lightning.pytorch.Trainer",
        ...                                     "max_epochs": -5, "max_steps": 10}})
        >>> print(check_values(cfg)[0])  # doctest: +ELLIPSIS
        `trainer.max_epochs` is -5 (from the config files), out of range: ...Trainer takes \
max_epochs -1 (no limit) or more. Fix it in the YAML, or override it, e.g. `trainer.max_epochs=10`.

    """
    checker = _ValueCheck(cfg, dict(given or {}), defaults or {})
    checker.walk(cfg, "")
    return checker.problems


TRAINER_MINIMUM = {
    "max_epochs": (-1, "-1 (no limit)"),
    "min_epochs": (0, "0"),
    "max_steps": (-1, "-1 (no limit)"),
    "min_steps": (0, "0"),
    "num_nodes": (1, "1"),
    "check_val_every_n_epoch": (1, "1"),
    "num_sanity_val_steps": (-1, "-1 (all batches)"),
    "log_every_n_steps": (0, "0"),
    "accumulate_grad_batches": (1, "1"),
    "reload_dataloaders_every_n_epochs": (0, "0"),
    "gradient_clip_val": (0, "0"),
}
# Batch limits: a count (int >= 0) or a fraction of the batches (float in [0, 1]).
TRAINER_FRACTIONS = ("limit_train_batches", "limit_val_batches", "limit_test_batches",
                     "limit_predict_batches", "overfit_batches")
# DataLoader arguments a datamodule passes on, whatever the target.
LOADER_MINIMUM = {"batch_size": (1, "1"), "num_workers": (0, "0")}
_NOUNS = {bool: ("true or false", "bools"), int: ("an int", "ints"),
          float: ("a float", "floats"), str: ("a string", "strings")}
_EXAMPLES: dict[type, Any] = {bool: True, int: 10, float: 0.1, str: "name"}
_SEQUENCES = (list, tuple, set, frozenset, collections.abc.Sequence,
              collections.abc.MutableSequence, collections.abc.Iterable,
              collections.abc.Collection)
_MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


def conforms(value: Any, annotation: Any) -> bool | None:
    """Whether a YAML value (None, bool, int, float, str, list, dict) fits ``annotation``.

    None when the check cannot tell (a class it does not know, a callable): the caller
    accepts those. An int is a valid float; None fits ``Optional``.

    Example:
        >>> from pathlib import Path
        >>> from typing import Literal, Optional
        >>> conforms("abc", Optional[int]), conforms(None, Optional[int]), conforms(3, float)
        (False, True, True)
        >>> conforms("16-mixed", Literal["32-true", "16-mixed"]), conforms([1, "a"], list[int])
        (True, False)
        >>> conforms("x", Path), conforms(3, torch_like := type("Tensor", (), {})) is None
        (True, True)

    """
    if annotation in (Any, object, inspect.Parameter.empty):
        return True
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        verdicts = [conforms(value, arm) for arm in args]
        return True if True in verdicts else None if None in verdicts else False
    if annotation is type(None) or annotation is None:
        return value is None
    if origin is typing.Literal:
        return any(value == option and type(value) is type(option) for option in args)
    if isinstance(value, dict) and "_target_" in value:
        return None  # an object is built from it: its own node is checked
    if annotation in _NOUNS:
        if value is None or isinstance(value, bool):
            return annotation is bool and isinstance(value, bool)
        return isinstance(value, str if annotation is str else int if annotation is int
                          else (int, float) if annotation is float else ())
    kind = origin or annotation
    if not isinstance(kind, type):
        return None  # a TypeVar, a NewType, Callable[...]: not ours to judge
    if issubclass(kind, os.PathLike):
        return isinstance(value, str) or None
    if kind in _MAPPINGS:
        if not isinstance(value, dict):
            return None if value is None else False
        verdicts = [conforms(v, args[1]) for v in value.values()] if len(args) == 2 else []
        return False not in verdicts
    if kind in _SEQUENCES:
        if isinstance(value, str):
            return kind not in (list, tuple, set, frozenset, collections.abc.MutableSequence)
        if not isinstance(value, list):
            return None if value is None or isinstance(value, dict) else False
        if kind is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                return False
            verdicts = [conforms(v, a) for v, a in zip(value, args, strict=True)]
        else:
            verdicts = [conforms(v, args[0]) for v in value] if args else []
        return False not in verdicts
    return None


def describe(annotation: Any) -> str:
    """``annotation`` in words: ``Optional[int]`` -> ``'an int or null'``.

    Example:
        >>> from typing import Literal, Optional
        >>> describe(Optional[int]), describe(list[float]), describe(Literal[16, "32-true"])
        ('an int or null', 'a list of floats', "one of 16, '32-true'")

    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        words = [describe(arm) for arm in args if arm is not type(None)]
        options = [w.removeprefix("one of ") for w in words if w.startswith("one of ")]
        words = [w for w in words if not w.startswith("one of ")]
        if options:
            words.append("one of " + ", ".join(options))
        if type(None) in args:
            words.append("null")
        return " or ".join(dict.fromkeys(words))
    if annotation is type(None):
        return "null"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if annotation in _NOUNS:
        return _NOUNS[annotation][0]
    kind = origin or annotation
    if isinstance(kind, type) and kind in _SEQUENCES and args and args[0] in _NOUNS:
        return f"a {'tuple' if kind is tuple else 'list'} of {_NOUNS[args[0]][1]}"
    if isinstance(kind, type) and kind in _SEQUENCES:
        return "a list"
    if isinstance(kind, type) and kind in _MAPPINGS:
        return "a mapping"
    return f"a {getattr(kind, '__name__', str(kind))}"


def _example(annotation: Any, candidates: list[Any]) -> Any:
    """A value for the fix: the first candidate that fits, else one made from the type."""
    for value in candidates:
        if value is not None and conforms(value, annotation):
            return value
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return args[0]
    for arm in args if origin in (typing.Union, types.UnionType) else (annotation,):
        if typing.get_origin(arm) is typing.Literal:
            return typing.get_args(arm)[0]
        if arm in _EXAMPLES:
            return _EXAMPLES[arm]
        if typing.get_origin(arm) in (list, tuple) and typing.get_args(arm)[:1] \
                and typing.get_args(arm)[0] in _EXAMPLES:
            return [_EXAMPLES[typing.get_args(arm)[0]]]
    return None


def _show(value: Any) -> str:
    """A value as a command line writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ",".join(_show(v) for v in value) + "]"
    return str(value)


def _what(value: Any) -> str:
    kinds = {bool: "a bool", int: "an int", float: "a float", str: "a string", list: "a list",
             dict: "a mapping"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _annotations(target: Any) -> tuple[dict[str, inspect.Parameter], dict[str, Any]]:
    """The parameters of a class or function, and the annotations that evaluate."""
    params = dict(inspect.signature(target).parameters)
    function = target.__init__ if isinstance(target, type) else target
    try:
        return params, typing.get_type_hints(function)
    except Exception:
        namespace = getattr(function, "__globals__", {})
        hints = {}
        for name, param in params.items():
            annotation = param.annotation
            if isinstance(annotation, str):
                try:
                    annotation = eval(annotation, namespace)
                except Exception:
                    continue
            hints[name] = annotation
        return params, hints


def _is_trainer(target: Any) -> bool:
    return any(c.__name__ == "Trainer" and c.__module__.startswith(("lightning", "pytorch_"))
               for c in getattr(target, "__mro__", ()))


class _ValueCheck:
    """Walks a composed config and collects one paragraph per bad value."""

    def __init__(self, cfg: DictConfig, given: dict[str, str], defaults: Mapping[str, Any]) -> None:
        self.cfg, self.given, self.defaults = cfg, given, defaults
        self.problems: list[str] = []
        self.reported: set[str] = set()

    def walk(self, node: Any, path: str) -> None:
        """Check every ``_target_`` node under ``node`` (at dotted ``path``)."""
        if isinstance(node, DictConfig):
            if "_target_" in node and not OmegaConf.is_missing(node, "_target_"):
                self.node(node, path)
            keys = list(node.keys())
        elif isinstance(node, ListConfig):
            keys = list(range(len(node)))
        else:
            return
        for key in keys:
            try:
                child = node._get_node(key)
            except OmegaConfBaseException:
                continue
            if isinstance(child, DictConfig | ListConfig):
                self.walk(child, f"{path}{key}.")

    def node(self, node: DictConfig, path: str) -> None:
        """Check the keys of one ``_target_`` node against its target's signature."""
        try:
            name = str(node._target_)
            target = hydra.utils.get_object(name)
            params, hints = _annotations(target)
        except Exception:
            return
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        for key in node:
            key = str(key)
            if key.startswith("_") or OmegaConf.is_missing(node, key):
                continue
            if key not in params or params[key].kind in (params[key].VAR_POSITIONAL,
                                                          params[key].VAR_KEYWORD):
                if not takes_any:
                    self.not_an_argument(f"{path}{key}", name, params)
                continue
            if key not in hints:
                continue
            try:
                value = node[key]
                if isinstance(value, DictConfig | ListConfig):
                    value = OmegaConf.to_container(value, resolve=True)
            except OmegaConfBaseException:
                continue  # an interpolation that only resolves inside the app
            self.value(f"{path}{key}", node, key, value, hints[key], params[key], target, name)

    def value(self, dotted: str, node: DictConfig, key: str, value: Any, annotation: Any,
              param: inspect.Parameter, target: Any, name: str) -> None:
        """Check one value: its type, then its range."""
        source = self._source(node, key)
        if dotted in self.reported or (source and source in self.reported):
            return  # named already, by itself or by a key interpolating it
        if value is None and param.default is None:
            return  # `x: int = None`: the target takes None whatever its annotation says
        if conforms(value, annotation) is False:
            wanted = describe(annotation)
            self._report(dotted, source, value, f"but {name} takes {key} as {wanted}",
                         "Give one" if wanted.startswith("one of") else f"Give {wanted}",
                         annotation, param)
            return
        low = None
        if _is_trainer(target):
            low = TRAINER_MINIMUM.get(key)
            if key in TRAINER_FRACTIONS and isinstance(value, float) and not 0 <= value <= 1:
                self._report(dotted, source, value, f"out of range: {name} takes {key} as a "
                             "count (int, 0 or more) or a fraction of the batches (float from "
                             "0 to 1)", "Fix it", annotation, param)
                return
            if key in TRAINER_FRACTIONS:
                low = (0, "0")
        low = low or LOADER_MINIMUM.get(key)
        if low and isinstance(value, int | float) and not isinstance(value, bool) \
                and value < low[0]:
            self._report(dotted, source, value, f"out of range: {name} takes {key} {low[1]} "
                         "or more", "Fix it", annotation, param, minimum=low[0])

    def not_an_argument(self, dotted: str, name: str, params: dict[str, inspect.Parameter]) -> None:
        """A key the target does not take: instantiating would raise a TypeError."""
        key = dotted.rpartition(".")[2]
        names = [p for p, v in params.items() if v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)
                 and p != "self"]
        close = difflib.get_close_matches(key, names, n=2, cutoff=0.75)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        where = (f"added on the command line by `{self.given[dotted]}`" if dotted in self.given
                 else "set in the config files")
        self.problems.append(
            f"`{dotted}` ({where}) is not an argument of {name}, which takes: "
            f"{', '.join(names)}.{hint} Remove the key or fix its name.")

    def _source(self, node: DictConfig, key: str) -> str:
        """The dotted key a ``${a.b}`` value comes from, or ''."""
        if not OmegaConf.is_interpolation(node, key):
            return ""
        text = str(node._get_node(key)._value())
        inner = text[2:-1] if text.startswith("${") and text.endswith("}") else ""
        return inner if re.fullmatch(r"[\w.]+", inner) else ""

    def _report(self, dotted: str, source: str, value: Any, why: str, fix: str,
                annotation: Any, param: inspect.Parameter, minimum: float | None = None) -> None:
        key = source or dotted
        default: Any = self.defaults
        for part in key.split("."):
            default = default.get(part) if isinstance(default, Mapping) else None
        candidates = [default, param.default]
        if minimum is not None:
            candidates = [c for c in candidates if isinstance(c, int | float) and c >= minimum] \
                or [max(10, minimum)]
        example = _example(annotation, candidates)
        if key in self.given:
            origin = "from the command line"
            fix = f"{fix}, e.g. `{key}={_show(example)}`." if example is not None else f"{fix}."
        else:
            origin = "from the config files"
            fix = (f"{fix} in the YAML, or override it, e.g. `{key}={_show(example)}`."
                   if example is not None else f"{fix} in the YAML, or override it.")
        via = f" (`{dotted}` is `${{{source}}}`)" if source else ""
        shown = repr(value) if isinstance(value, str) else _show(value)
        kind = f"{_what(value)}, " if "range" not in why and value is not None else ""
        self.problems.append(f"`{key}` is {shown} ({kind}{origin}), {why}{via}. {fix}")
        self.reported.update({dotted, source} - {""})
