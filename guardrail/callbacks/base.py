"""``GuardrailCallback``: what every guardrail callback shares.

It stamps findings with step, epoch and rank, keeps them in ``.findings`` (resumable through
``state_dict``), and applies the policy: under ``strict`` an ``error`` finding stops training
on every rank at once (the decision is agreed with ``reduce_boolean_decision``, so no rank
raises alone and leaves the others hanging), and every rank raises for the same finding.

Every Lightning hook a subclass defines is guarded: an internal error of the guardrail (not a
:class:`~guardrail.errors.GuardrailError`, which is deliberate) becomes a
``<family>.skipped`` info naming the hook and the error, the guardrail stops checking, and
training goes on. Under DDP a rank cannot stop on its own without leaving the others waiting
in its next collective, so there the error is raised as a ``GuardrailError`` on that rank,
which ends the run on every rank instead of hanging it.

Example:
    >>> from guardrail.findings import Finding
    >>> cb = GuardrailCallback(policy="record")
    >>> cb.emit(None, Finding("demo.check", "warning", "Something odd."))
    >>> [f.check for f in cb.findings]
    ['demo.check']

"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import traceback
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Literal

from lightning.pytorch import Callback, Trainer
from lightning.pytorch.utilities import rank_zero_warn

from guardrail.distributed import gather_objects, world_size
from guardrail.errors import ConfigError, GuardrailError
from guardrail.findings import Finding, Severity

Policy = Literal["record", "strict"]
POLICIES: tuple[str, ...] = ("record", "strict")
#: Lightning's callback hooks, guarded in every subclass (``on_exception`` is a failure path
#: already, and the checkpoint state methods must fail loudly).
HOOKS = frozenset(name for name in dir(Callback) if name.startswith("on_") or name in (
    "setup", "teardown")) - {"on_exception"}


class GuardrailCallback(Callback):
    """Base class of guardrail callbacks.

    Args:
        policy: ``record`` keeps every finding and lets training go on; ``strict`` stops
            training with a :class:`~guardrail.GuardrailError` on the first ``error`` finding.

    """

    #: Constructor arguments that tell two instances of one guardrail apart in a checkpoint
    #: (``BaselineCheck(stage="val")`` and ``BaselineCheck(stage="test")`` in one Trainer).
    state_key_fields: ClassVar[tuple[str, ...]] = ()
    #: The check-id family of ``<family>.skipped`` when the guardrail itself fails.
    family: ClassVar[str] = "guardrail"
    #: Attributes holding what the guardrail has seen so far (windows, histories, counters),
    #: saved in checkpoints so that a resumed run judges as an uninterrupted one would. Their
    #: values must be plain data (numbers, strings, lists, dicts, None): checkpoints are
    #: loaded with ``weights_only``.
    state_fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in HOOKS & set(vars(cls)):
            setattr(cls, name, _guarded(name, vars(cls)[name]))

    def __init__(self, policy: Policy = "record") -> None:
        if policy not in POLICIES:
            raise ConfigError(
                f"{type(self).__name__}: policy={policy!r} is not one of {', '.join(POLICIES)}; "
                "set it with e.g. `guardrails.policy=strict`."
            )
        self.policy = policy
        self.findings: list[Finding] = []
        self._pending: Finding | None = None
        self._emitted: set[tuple[str, str | None]] = set()
        self.broken = False

    def require(self, *rules: tuple[str, Any, bool, str]) -> None:
        """Validate constructor arguments: one :class:`ConfigError` naming every bad one.

        Args:
            rules: ``(name, value, ok, rule)`` per argument, e.g.
                ``("every_n_steps", n, n >= 1, ">= 1")``.

        Example:
            >>> GuardrailCallback().require(("every_n_steps", 0, False, ">= 1"))
            ... # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            guardrail.errors.ConfigError: GuardrailCallback: every_n_steps=0 must be >= 1. ...

        """
        problems = [f"{name}={value!r} must be {rule}" for name, value, ok, rule in rules
                    if not ok]
        if problems:
            raise ConfigError(
                f"{type(self).__name__}: {'; '.join(problems)}. Fix "
                f"{'it' if len(problems) == 1 else 'them'} where the callback is built (in the "
                "app: `guardrails.callbacks.<name>.<argument>=...`).")

    @property
    def state_key(self) -> str:
        """Where Lightning keeps this callback's state: the class and its ``state_key_fields``.

        Example:
            >>> from guardrail.callbacks import BaselineCheck
            >>> BaselineCheck(stage="val").state_key
            "BaselineCheck{'stage': 'val'}"

        """
        # Lightning reads it around every hook of every callback (its profiler's action name):
        # made once, from constructor arguments that do not change after.
        key = self.__dict__.get("_state_key")
        if key is None:
            key = self._generate_state_key(**{k: getattr(self, k) for k in self.state_key_fields})
            self.__dict__["_state_key"] = key
        return key

    def emit(self, trainer: Trainer | None, finding: Finding) -> None:
        """Record ``finding``, stamped with the trainer's step, epoch and rank.

        Under ``strict`` an ``error`` finding is held until :meth:`enforce` stops training.
        """
        if trainer is not None:
            finding = dataclasses.replace(
                finding,
                step=finding.step if finding.step is not None else trainer.global_step,
                epoch=finding.epoch if finding.epoch is not None else trainer.current_epoch,
                rank=trainer.global_rank,
            )
        self.findings.append(finding)
        if self.policy == "strict" and finding.severity is Severity.ERROR and self._pending is None:
            self._pending = finding

    def emit_once(self, trainer: Trainer | None, findings: list[Finding]) -> None:
        """:meth:`emit` each finding whose (check, where) this callback has not emitted yet."""
        for finding in findings:
            key = (finding.check, finding.where)
            if key not in self._emitted:
                self._emitted.add(key)
                self.emit(trainer, finding)

    @staticmethod
    def log_metrics(trainer: Trainer, metrics: dict[str, float]) -> None:
        """Write ``metrics`` straight to the trainer's loggers, on rank zero.

        For values computed once, outside the training loop: ``LightningModule.log`` builds a
        metric object per key there, which cost WEA's replay 0.4 of a training step.
        """
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)

    def enforce(self, trainer: Trainer) -> None:
        """Stop training on every rank if any rank holds a strict ``error`` finding.

        A collective under DDP: call it from a hook that every rank runs. The pending findings
        of all ranks are gathered, so every rank raises the same error for the lowest rank's
        finding, and rank zero (which writes the report) records a finding that only another
        rank made, attributed to that rank.
        """
        if not trainer.strategy.reduce_boolean_decision(self._pending is not None, all=False):
            return  # the healthy path: one boolean collective, no pickling
        pending = [f for f in gather_objects(self._pending) if f is not None]
        finding = min(pending, key=lambda f: f.rank)
        self._pending = None
        if finding not in self.findings:
            self.findings.append(finding)
        if world_size() > 1:
            raise GuardrailError(f"guardrail stopped training on every rank; rank {finding.rank} "
                                 f"found: {finding.describe()}", finding)
        raise GuardrailError.from_finding(finding)

    def _fail(self, trainer: Trainer, hook: str, err: Exception) -> None:
        """The guardrail itself failed in ``hook``: say so, stop checking, let training go on."""
        what = f"{type(self).__name__} failed in {hook}: {type(err).__name__}: {err}"
        if world_size() > 1:
            raise GuardrailError(
                f"{what}. Under DDP a guardrail cannot stop on one rank alone without leaving "
                "the others waiting, so the run stops; turn this guardrail off (in the app: "
                "`guardrails.callbacks.<name>=null`) and report the error with its "
                "traceback.") from err
        self.broken = True
        rank_zero_warn(f"guardrail: {what}; its checks are off for the rest of this run.\n"
                       + "".join(traceback.format_exception(err)))
        self.emit(trainer, Finding(
            f"{self.family}.skipped", Severity.INFO,
            f"{what}. Its checks are off for the rest of this run; training went on.",
            where=hook, evidence={"error": f"{type(err).__name__}: {err}"},
            hint="A model or batch this guardrail does not understand, or a bug in it: report "
                 "it with the traceback printed in the run's log."))

    def state_dict(self) -> dict[str, Any]:
        """Findings so far, which once-only findings were made, and the ``state_fields``."""
        return {"findings": [f.to_dict() for f in self.findings],
                "emitted": sorted([list(key) for key in self._emitted], key=str),
                "history": {name: getattr(self, name) for name in self.state_fields}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore findings, keeping those made since the checkpoint was written.

        Resuming a run (a fresh callback) also restores the ``state_fields``, so windows go
        on where they stopped and a once-only finding is not made again. Testing the best
        checkpoint after fit restores its (earlier) state into callbacks that saw the whole
        run: there findings made after it, or after fit, survive and the histories are kept.
        Tolerant of checkpoints written before a field existed.
        """
        restored = [Finding.from_dict(d) for d in state_dict.get("findings", [])]
        known = {_identity(f) for f in restored}
        self.findings = restored + [f for f in self.findings if _identity(f) not in known]
        self._emitted |= {(check, where) for check, where in state_dict.get("emitted", [])}
        history = state_dict.get("history", {})
        if not any(getattr(self, name, None) for name in self.state_fields):  # a fresh one
            for name, value in history.items():
                if name in self.state_fields:
                    setattr(self, name, value)


def _guarded(name: str, hook: Callable[..., Any]) -> Callable[..., Any]:
    """``hook`` that turns an internal error into a ``<family>.skipped`` info (see the module)."""
    if getattr(hook, "__guarded__", False):
        return hook

    @functools.wraps(hook)
    def guarded(self: GuardrailCallback, trainer: Trainer, *args: Any, **kwargs: Any) -> Any:
        if self.broken and name != "teardown":
            return None
        try:
            return hook(self, trainer, *args, **kwargs)
        except GuardrailError:
            raise
        except Exception as err:
            self._fail(trainer, name, err)
            return None

    guarded.__guarded__ = True  # type: ignore[attr-defined]
    return guarded


def _identity(f: Finding) -> tuple[Any, ...]:
    return (f.check, f.where, f.message, f.step, f.epoch, f.rank)


def collect_findings(trainer: Trainer, gather: bool = True) -> list[Finding]:
    """Every finding of the trainer's guardrail callbacks (any object with ``.findings``).

    Under DDP, with ``gather`` (a collective: every rank must call it), findings of all ranks
    are gathered; a finding that several ranks made alike (same check, place, message, step)
    is kept once, with the lowest rank, and one that a single rank made keeps that rank.
    """
    local = [f for cb in trainer.callbacks for f in getattr(cb, "findings", None) or []
             if isinstance(f, Finding)]
    everything = [f for rank_findings in gather_objects(local) for f in rank_findings] \
        if gather else local
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for f in sorted(everything, key=lambda f: f.rank):
        key = (f.check, f.where, f.message, f.step, f.epoch)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


@contextlib.contextmanager
def best_effort(what: str) -> Iterator[None]:
    """Run a guardrail's bookkeeping on a failure path without hiding the user's own error.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     with best_effort("write the manifest"):
        ...         raise OSError("disk full")
        >>> str(caught[0].message)
        'guardrail could not write the manifest: OSError: disk full'

    """
    try:
        yield
    except Exception as err:
        rank_zero_warn(f"guardrail could not {what}: {type(err).__name__}: {err}", stacklevel=3)
