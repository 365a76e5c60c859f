"""``AttributionReport``: explain the trained model, and say where to trust the explanation."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torchmetrics.functional.classification import binary_auroc

from guardrail.attribution import explain
from guardrail.batches import peek_rows
from guardrail.callbacks.base import GuardrailCallback, Policy
from guardrail.checks.attribution import attribution_findings, sanity_passed
from guardrail.errors import ConfigError
from guardrail.findings import Finding, Severity
from guardrail.io import write_json
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
        max_similarity: Randomisation test: the largest Spearman between the trained model's
            gradient profile and a random copy's.
        max_loss_ratio: Randomisation test: the largest error, as a share of its random
            copies', the model may have on up to ``LOSS_SAMPLES`` (1024) validation samples
            (a module with ``compute_loss``; 1 - AUROC for binary tasks, the error rate for
            multiclass, the loss otherwise).
        min_agreement: Spearman below which two methods count as disagreeing.
        max_completeness_error: IG completeness error above which an info finding is given.
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

    def __init__(self, dirpath: str | Path | None = None, samples: int = 64,
                 reference_samples: int = 256, n_steps: int = 32, permutations: int = 3,
                 randomisations: int = 2, occlusion_samples: int = 4, budget_s: float = 60.0,
                 max_similarity: float = 0.5, max_loss_ratio: float = 0.9,
                 min_agreement: float = 0.2,
                 max_completeness_error: float = 0.05, seed: int = 0, stage: str = "fit",
                 policy: Policy = "record") -> None:
        super().__init__(policy)
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
        self.thresholds = {"max_similarity": max_similarity, "max_loss_ratio": max_loss_ratio,
                           "min_agreement": min_agreement,
                           "max_completeness_error": max_completeness_error}
        self.result: dict[str, Any] | None = None
        self.files: dict[str, str] = {}

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
        start = time.perf_counter()
        was_training = pl_module.training
        try:
            with torch.inference_mode(False), torch.enable_grad():
                pl_module.eval()
                self._explain(trainer, pl_module)
        except Exception as err:  # never break the user's run over an explanation
            self.emit(trainer, Finding(
                "attribution.skipped", Severity.INFO,
                f"The model could not be attributed: {type(err).__name__}: {err}.",
                hint="Training and every other guardrail are unaffected; a module whose "
                     "forward takes its batch's inputs as tensors can be attributed."))
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
            self.emit(trainer, _skipped(f"no training samples to compare with: {why}"))
            return
        inputs, targets, why = peek_rows(val, pl_module, self.samples) if val is not None \
            else (None, None, "there is no validation loader")
        if inputs is None or [x.dtype for x in inputs] != [x.dtype for x in reference] or \
                [x.shape[1:] for x in inputs] != [x.shape[1:] for x in reference]:
            inputs, targets = _head(reference, self.samples), _head(ref_targets, self.samples)
            self.emit(trainer, _skipped(
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
        self.result, arrays = explain(
            pl_module, inputs, to_device(list(reference)),
            names=getattr(pl_module, "feature_names", None),
            task=getattr(pl_module, "task", None),
            loss=_loss_on(pl_module, to_device(list(loss_inputs)), to_device(loss_targets)),
            **self.settings)
        if self.result.get("sanity"):
            self.result["sanity"]["passed"] = sanity_passed(
                self.result["sanity"], self.thresholds["max_similarity"],
                self.thresholds["max_loss_ratio"])
        # once per (check, where): each test call explains again, and says the same
        self.emit_once(trainer, attribution_findings(self.result, **self.thresholds))
        self._write(trainer, arrays)

    def _write(self, trainer: Trainer, arrays: dict[str, Any]) -> None:
        from guardrail.report.plots import attribution_plots

        assert self.result is not None
        folder = (self.dirpath or Path(trainer.default_root_dir)) / FOLDER
        try:
            plots = attribution_plots(folder, self.result, arrays)
        except ImportError as err:
            plots = {}
            self.emit(trainer, _skipped(f"plots ({err}; `pip install matplotlib`)"))
        self.result["plots"] = plots
        write_json(folder / RESULT, self.result)
        self.files = {RESULT: str(folder / RESULT),
                      **{name: str(folder / name) for name in plots.values()}}


LOSS_SAMPLES = 1024  # held-out samples the randomisation test's loss ratio is measured on


def _head(data: Any, n: int) -> Any:
    if isinstance(data, tuple):
        return tuple(x[:n] for x in data)
    return data[:n] if isinstance(data, torch.Tensor) else None


def _loss_on(pl_module: LightningModule, inputs: list[torch.Tensor],
             targets: Any) -> Callable[[torch.nn.Module], float] | None:
    """``model -> error on held-out samples``, lower is better, for the randomisation test.

    Classifiers are judged by how they rank or pick, not by their loss: an overconfident
    model can rank almost perfectly while its weighted cross-entropy is above a random
    copy's (BOT: AUROC 0.95, loss 1.3-1.6x its random copies'). So the error is 1 - AUROC for
    a binary task (with both classes among the samples), the error rate for multiclass, and
    the module's own ``compute_loss`` otherwise.
    """
    compute = getattr(pl_module, "compute_loss", None)
    if targets is None or not callable(compute):
        return None
    task = getattr(pl_module, "task", None)
    if task == "binary" and isinstance(targets, torch.Tensor) and \
            len(torch.unique(targets.flatten())) == 2:
        def error(model: torch.nn.Module) -> float:
            with torch.no_grad():
                scores = first_tensor(model(*inputs)).flatten().float()
                return 1.0 - float(binary_auroc(scores, targets.flatten().long()))
    elif task == "multiclass" and isinstance(targets, torch.Tensor):
        def error(model: torch.nn.Module) -> float:
            with torch.no_grad():
                picked = first_tensor(model(*inputs)).argmax(1)
                return float((picked != targets.long()).float().mean())
    else:
        def error(model: torch.nn.Module) -> float:
            with torch.no_grad():
                return float(compute(model(*inputs), targets))

    try:
        error(pl_module)
    except Exception:  # a loss that needs more than (predictions, targets): judged without
        return None
    return error


def _skipped(what: str) -> Finding:
    return Finding("attribution.skipped", Severity.INFO, f"Not attributed: {what}.",
                   hint="The rest of the attribution report stands.")
