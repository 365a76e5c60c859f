"""The training app: ``python -m guardrail.train recipe=wea``.

Composes ``configs/train.yaml`` with Hydra, instantiates datamodule, network, module,
guardrail callbacks, logger and trainer from their ``_target_``s, fits, tests on the held-out
split with the best checkpoint, and leaves a run directory (report.json, report.html,
findings.jsonl, metrics/, checkpoints/, .hydra/). Bad input ends with one clear paragraph on
stderr and exit status 2, never a bare traceback; the run directory still says what happened.

Examples:
    python -m guardrail.train recipe=est
    python -m guardrail.train recipe=wea model.pool=8 trainer.max_epochs=5
    python -m guardrail.train recipe=wea guardrails=strict logger=tensorboard
    python -m guardrail.train recipe=est --cfg job      # print the composed config

"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from guardrail.build import build
from guardrail.callbacks import RunReport
from guardrail.errors import GuardrailError
from guardrail.preflight import check_argv

EXIT_USAGE = 2


def run(cfg: DictConfig, run_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit and test the configured recipe; returns the final report dict.

    Args:
        cfg: The composed config (``configs/train.yaml``).
        run_info: Extra keys for report.json (the Hydra app passes the overrides).

    Raises:
        GuardrailError: Bad input or a strict guardrail stopped training; report.json is
            written with status ``failed`` first.

    """
    output_dir = Path(cfg.paths.output_dir)
    report = RunReport(output_dir, run_info={"recipe": cfg.get("recipe_name"), **(run_info or {})})
    trainer: pl.Trainer | None = None
    try:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        built = build(cfg)
        datamodule, module = built.datamodule, built.module
        callbacks = [hydra.utils.instantiate(c, _convert_="all")
                     for c in cfg.guardrails.callbacks.values()]
        callbacks += [hydra.utils.instantiate(cfg.checkpoint), report]
        logger = hydra.utils.instantiate(cfg.logger) if cfg.get("logger") else False
        trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
        trainer.fit(module, datamodule=datamodule)
        if trainer.interrupted:
            return report.report
        ckpt_path = _test_checkpoint(trainer, cfg.get("ckpt_path"))
        trainer.test(module, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
    except BaseException as err:
        # Errors inside fit/test were already recorded by RunReport.on_exception; errors
        # before the trainer existed (config, data packages) are recorded here.
        if not report.report or report.report.get("status") not in ("failed", "interrupted"):
            interrupted = isinstance(err, KeyboardInterrupt)
            report.write(trainer, "interrupted" if interrupted else "failed", gather=False,
                         error=None if interrupted else f"{type(err).__name__}: {err}")
        raise
    _print_summary(report.report, output_dir)
    return report.report


def _test_checkpoint(trainer: pl.Trainer, wanted: str | None) -> str | None:
    """``wanted`` when the run has such a checkpoint (``best`` needs a saved one), else None."""
    checkpoint = trainer.checkpoint_callback
    if wanted != "best" or trainer.fast_dev_run:
        return None if trainer.fast_dev_run else wanted
    return wanted if checkpoint is not None and getattr(checkpoint, "best_model_path", "") else None


@rank_zero_only
def _print_summary(report: dict[str, Any], output_dir: Path) -> None:
    from rich.console import Console

    from guardrail.report import render_summary

    # soft_wrap: paths stay whole (copy-pasteable) when stdout is not a terminal
    Console(soft_wrap=True).print(render_summary(report, output_dir))


@hydra.main(version_base="1.3", config_path="pkg://guardrail.configs", config_name="train")
def _app(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    run_info = {
        "overrides": list(hydra_cfg.overrides.task),
        "choices": {k: v for k, v in OmegaConf.to_container(hydra_cfg.runtime.choices).items()
                    if not k.startswith("hydra/")},
    }
    try:
        run(cfg, run_info)
    except GuardrailError as err:
        print(f"guardrail: error: {err}", file=sys.stderr)
        print(f"guardrail: the run directory {cfg.paths.output_dir} records this failure.",
              file=sys.stderr)
        sys.exit(EXIT_USAGE)


def main(argv: list[str] | None = None) -> None:
    """Entry point: check the command line, then hand it to Hydra."""
    # Lightning 2.6 on torch 2.13 warns about its own pytree use on every batch transfer.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    argv = sys.argv[1:] if argv is None else argv
    problem = check_argv(argv)
    if problem:
        print(f"guardrail: error: {problem}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    sys.argv = [sys.argv[0], *argv]
    _app()


if __name__ == "__main__":
    main()
