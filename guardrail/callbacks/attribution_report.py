"""``AttributionReport``: explain the trained model, and say where to trust the explanation."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer

from guardrail.attribution import explain
from guardrail.attribution.budget import fixed_seconds
from guardrail.attribution.task import infer_task, model_error
from guardrail.batches import peek_rows
from guardrail.callbacks.base import GuardrailCallback, Policy
from guardrail.checks.attribution import (
    AttributionThresholds,
    attribution_findings,
    sanity_passed,
    skipped,
    supported,
)
from guardrail.errors import ConfigError
from guardrail.io import write_json
from guardrail.module import TASKS
from guardrail.shapes import first_tensor

FOLDER = "attribution"
STAGES = ("fit", "test")
RESULT = "attribution.json"


class AttributionReport(GuardrailCallback):
    """After fit, attribute the model's predictions on held-out samples, with reliability figures.

    On global rank zero, after fit (or, with ``stage="test"``, as each test starts, on the
    tested weights), with gradients enabled and the model in eval mode (Lightning's
    evaluation loops run under ``inference_mode``, which breaks gradient methods: it is
    switched off around the attribution, whose tensors are made inside), over ``samples``
    validation samples and ``reference_samples`` training samples:

    - global importance of every named feature by permutation (any input type; an embedded
      category or a grid channel is one feature), with bootstrap confidence intervals;
    - Integrated Gradients on floating-point inputs with its completeness error; for grids,
      IG and occlusion heat maps; for sequences, importance per time step;
    - agreement between the methods (Spearman), the model-parameter randomisation test, and
      for each explained sample its data support (is it near the training data?).

    One-off work at the end of a run is given a budget relative to the run: ``budget_share``
    of the fit's wall time (fit start to the attribution's start), for all of it: reading the
    samples and measuring the model's error first, the plots last. What that work costs
    whatever the settings (the samples already read, the plots' fixed cost) is set aside, and
    samples, IG steps, permutations, random copies and occlusion maps are lowered, down to
    floors below which the figures would mean little (:mod:`guardrail.attribution.budget`),
    until the estimate fits the rest; ``attribution.json`` says under ``budget`` what was
    lowered and why, what was set aside, and the seconds spent in all (``total_s``);
    ``settings`` holds what was used. ``budget_s`` caps it in seconds whatever the run's length.

    The task (how the output is explained, and how the randomisation test judges errors) is
    ``task`` when given, else the module's declared ``task`` (a ``GuardrailModule``), else
    read from the outputs and targets: several output columns and integer targets (or no
    targets) make a multiclass classifier, one column and 0/1 targets a binary one.

    Writes ``attribution/attribution.json`` and PNG plots into the run directory; findings
    ``attribution.sanity_failed``, ``attribution.methods_disagree``, ``attribution.incomplete``,
    ``attribution.low_support`` and ``attribution.skipped``. It never stops training: a model
    or batch it cannot attribute gives an ``attribution.skipped`` info finding instead.

    Args:
        dirpath: Run directory (``attribution/`` is made inside); default: the trainer's
            ``default_root_dir``.
        samples: Held-out samples explained (from the validation loader; the training loader
            when there is none or its batches hold other inputs).
        reference_samples: Training samples for baselines and data support.
        n_steps: Integrated Gradients steps.
        permutations: Permutations averaged per feature.
        randomisations: Re-initialised model copies in the randomisation test (0: skip it).
        occlusion_samples: Grid samples given occlusion heat maps.
        budget_s: Seconds after which the remaining steps are skipped (and said so).
        budget_share: Share of the fit's wall time the attribution aims to stay within
            (None: as configured, up to ``budget_s``). The default, 5%, leaves room for the
            other guardrails in a whole run's 15% on a 30-second fit.
        thresholds: :class:`~guardrail.checks.attribution.AttributionThresholds`, or a
            mapping of the fields to change (``{"min_agreement": 0.3}``). The randomisation
            test's error is measured on up to ``LOSS_SAMPLES`` (1024) validation samples: 1 -
            AUROC for binary tasks, the error rate for multiclass, the module's
            ``compute_loss`` (or, without one, the mean squared error) otherwise.
        task: ``regression``, ``binary``, ``multiclass``, ``reconstruction`` or ``ranking``;
            None: the module's ``task``, else inferred.
        seed: Seed of every random draw.
        stage: ``fit``: explain at the end of fit, the weights training ended with; ``test``:
            at the start of each test, the weights the test split is scored with (the best
            checkpoint, where the test loads one). Gradients are switched back on for it.
        policy: ``record`` or ``strict`` (no rule here gives an error).

    Logged keys: ``guardrail/attribution_s`` (seconds spent).

    Example:
        >>> import lightning.pytorch as pl, tempfile
        >>> from lightning.pytorch.demos.boring_classes import BoringModel
        >>> report = AttributionReport(dirpath=tempfile.mkdtemp(), randomisations=0)
        >>> pl.Trainer(callbacks=[report], max_steps=2, logger=False, enable_progress_bar=False,
        ...            enable_checkpointing=False, enable_model_summary=False).fit(BoringModel())
        >>> len(report.result["ranking"]), report.result["ranking"][0][:3], sorted(report.files)
        (32, 'x0[', ['attribution.json', 'global_importance.png'])

    """

    state_key_fields = ("stage",)

    family = "attribution"

    def __init__(self, dirpath: str | Path | None = None, samples: int = 64,
                 reference_samples: int = 256, n_steps: int = 32, permutations: int = 3,
                 randomisations: int = 2, occlusion_samples: int = 4, budget_s: float = 60.0,
                 budget_share: float | None = 0.05,
                 thresholds: AttributionThresholds | Mapping[str, Any] | None = None,
                 task: str | None = None, seed: int = 0, stage: str = "fit",
                 policy: Policy = "record") -> None:
        super().__init__(policy)
        if task is not None and task not in TASKS:
            raise ConfigError(
                f"AttributionReport: task={task!r} is not one of {', '.join(TASKS)}; pass one "
                "of them (`guardrails.callbacks.attribution.task=multiclass`), or null to take "
                "the module's declared task or infer it from its outputs.")
        if budget_share is not None and not 0 < budget_share <= 1:
            raise ConfigError(
                f"AttributionReport: budget_share={budget_share!r} must be in (0, 1], the share "
                "of the fit's wall time; e.g. `guardrails.callbacks.attribution.budget_share="
                "0.05`, or null to run as configured.")
        self.task, self.budget_share = task, budget_share
        if stage not in STAGES:
            raise ConfigError(
                f"AttributionReport: stage={stage!r} is not one of {', '.join(STAGES)}; e.g. "
                "`guardrails.callbacks.attribution.stage=test` to explain the tested weights.")
        self.stage = stage
        if samples < 2 or reference_samples < 2:
            raise ConfigError(
                f"AttributionReport: samples={samples} and reference_samples="
                f"{reference_samples} must both be at least 2 (permutation needs a batch); "
                "e.g. `guardrails.callbacks.attribution.samples=64`.")
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self.samples, self.reference_samples = samples, reference_samples
        self.settings = {"n_steps": n_steps, "permutations": permutations,
                         "randomisations": randomisations, "occlusion_samples": occlusion_samples,
                         "budget_s": budget_s, "seed": seed}
        self.thresholds = AttributionThresholds.coerce(thresholds)
        self.result: dict[str, Any] | None = None
        self.files: dict[str, str] = {}
        self._fit_start: float | None = None
        self._started = 0.0  # when the attribution under way began

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start the clock the attribution's budget is a share of."""
        self._fit_start = time.perf_counter()

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """With ``stage="fit"``: explain the weights training ended with."""
        if self.stage == "fit":
            self._run(trainer, pl_module)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """With ``stage="test"``: explain the weights the test split is scored with."""
        if self.stage == "test":
            self._run(trainer, pl_module)

    def _run(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Explain on rank zero; anything it cannot do becomes a finding."""
        if not trainer.is_global_zero:
            return
        start = self._started = time.perf_counter()
        was_training = pl_module.training
        try:
            with torch.inference_mode(False), torch.enable_grad():
                pl_module.eval()
                self._explain(trainer, pl_module)
        except Exception as err:  # never break the user's run over an explanation
            self.emit(trainer, skipped(
                f"the model could not be called: {type(err).__name__}: {err} (training and "
                "every other guardrail are unaffected; a module whose forward takes its "
                "batch's inputs as tensors can be attributed)"))
        finally:
            pl_module.train(was_training)
        self.log_metrics(trainer, {"guardrail/attribution_s": time.perf_counter() - start})

    def _explain(self, trainer: Trainer, pl_module: LightningModule) -> None:
        datamodule = getattr(trainer, "datamodule", None)
        train, val = trainer.train_dataloader, trainer.val_dataloaders
        if datamodule is not None:  # testing alone: the loaders come from the datamodule
            train = train if train is not None else datamodule.train_dataloader()
            val = val if val is not None else datamodule.val_dataloader()
        val = val[0] if isinstance(val, list | tuple) and val else val
        reference, ref_targets, why = peek_rows(train, pl_module, self.reference_samples)
        if reference is None:
            self.emit(trainer, skipped(f"no training samples to compare with: {why}"))
            return
        inputs, targets, why = peek_rows(val, pl_module, self.samples) if val is not None \
            else (None, None, "there is no validation loader")
        explained = "held-out"
        if inputs is None or [x.dtype for x in inputs] != [x.dtype for x in reference] or \
                [x.shape[1:] for x in inputs] != [x.shape[1:] for x in reference]:
            explained = "training"
            inputs, targets = _head(reference, self.samples), _head(ref_targets, self.samples)
            self.emit(trainer, skipped(
                f"validation samples ({why or 'their inputs differ from training inputs'}); "
                "training samples are explained instead"))
        # The loss ratio of the randomisation test on more held-out samples than are
        # explained: 64 of RET's users hold about 3 positives, too few to judge a loss by.
        loss_inputs, loss_targets, _ = peek_rows(
            val, pl_module, max(self.samples, LOSS_SAMPLES)) if val is not None \
            else (None, None, "")
        if loss_inputs is None or [x.shape[1:] for x in loss_inputs] != \
                [x.shape[1:] for x in inputs]:
            loss_inputs, loss_targets = inputs, targets
        to_device = trainer.strategy.batch_to_device
        inputs = to_device(list(inputs))
        task, task_source = self._task(pl_module, inputs, targets)
        fit_s = self._started - self._fit_start if self._fit_start is not None else None
        # what is spent whatever the settings comes off the share first
        set_aside = time.perf_counter() - self._started + fixed_seconds()
        target_s = max(self.budget_share * fit_s - set_aside, 0.0) \
            if self.budget_share is not None and fit_s is not None else None
        self.result, arrays = explain(
            pl_module, inputs, to_device(list(reference)),
            names=getattr(pl_module, "feature_names", None), task=task,
            loss=model_error(pl_module, to_device(list(loss_inputs)), to_device(loss_targets),
                          task),
            target_s=target_s, **self.settings)
        self.result["task"] = {"task": task, "source": task_source}
        self.result["explained"] = explained  # which samples: report.html says so
        self.result["budget"].update(
            fit_s=None if fit_s is None else round(fit_s, 3), share=self.budget_share,
            set_aside_s=round(set_aside, 3),
            why=_budget_why(self.result["budget"], fit_s, self.budget_share, set_aside))
        if self.result.get("sanity"):
            self.result["sanity"]["passed"] = sanity_passed(self.result["sanity"],
                                                            self.thresholds)
        for row in self.result.get("local") or []:
            row["supported"] = supported(row, self.thresholds)
        # once per (check, where): each test call explains again, and says the same
        self.emit_once(trainer, attribution_findings(self.result, self.thresholds))
        self._write(trainer, arrays)

    def _task(self, pl_module: LightningModule, inputs: list[torch.Tensor],
              targets: Any) -> tuple[str | None, str]:
        """The task and where it came from: the argument, the module, or its outputs."""
        if self.task is not None:
            return self.task, "argument"
        declared = getattr(pl_module, "task", None)
        if declared in TASKS:
            return declared, "module"
        with torch.no_grad():
            out = first_tensor(pl_module(*inputs))
        return infer_task(out, targets), "inferred"

    def _write(self, trainer: Trainer, arrays: dict[str, Any]) -> None:
        from guardrail.report.plots import attribution_plots

        assert self.result is not None
        folder = (self.dirpath or Path(trainer.default_root_dir)) / FOLDER
        try:
            plots = attribution_plots(folder, self.result, arrays)
        except ImportError as err:
            plots = {}
            self.emit(trainer, skipped(f"plots ({err}; `pip install matplotlib`)"))
        self.result["plots"] = plots
        self.result["budget"]["total_s"] = round(time.perf_counter() - self._started, 3)
        write_json(folder / RESULT, self.result)
        self.files = {RESULT: str(folder / RESULT),
                      **{name: str(folder / name) for name in plots.values()}}


LOSS_SAMPLES = 1024  # held-out samples the randomisation test's loss ratio is measured on


def _head(data: Any, n: int) -> Any:
    if isinstance(data, tuple):
        return tuple(x[:n] for x in data)
    return data[:n] if isinstance(data, torch.Tensor) else None


def _budget_why(budget: dict[str, Any], fit_s: float | None, share: float | None,
                set_aside: float) -> str:
    """One sentence for ``attribution.json``: what the budget was and what it lowered.

    Example:
        >>> _budget_why({"target_s": 1.1, "reduced": {}, "estimated_s": {"planned": 0.9}},
        ...             fit_s=40.0, share=0.05, set_aside=0.9)
        "5% of the fit's 40.0 s is 2.00 s, less 0.90 s set aside (samples read, the plots' \
fixed cost): 1.10 s; nothing lowered (estimated 0.90 s)"

    """
    if share is None or fit_s is None:
        basis = "no run-relative budget (" + ("budget_share is null" if share is None else
                                              "no fit was timed") + ")"
    else:
        basis = (f"{share:.0%} of the fit's {fit_s:.1f} s is {share * fit_s:.2f} s, less "
                 f"{set_aside:.2f} s set aside (samples read, the plots' fixed cost): "
                 f"{budget['target_s']:.2f} s")
    if not budget["reduced"]:
        return f"{basis}; nothing lowered (estimated {budget['estimated_s']['planned']:.2f} s)"
    lowered = ", ".join(f"{k} {v['from']}->{v['to']}" for k, v in budget["reduced"].items())
    return (f"{basis}; lowered {lowered} (estimated {budget['estimated_s']['configured']:.2f} "
            f"s -> {budget['estimated_s']['planned']:.2f} s; floors: "
            "guardrail.attribution.budget.FLOORS)")
