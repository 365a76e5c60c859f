"""The training app: ``python -m guardrail.train recipe=wea``.

Composes ``configs/train.yaml`` with Hydra, instantiates datamodule, network, module,
guardrail callbacks, logger and trainer from their ``_target_``s, fits, tests on the held-out
split with the best checkpoint, and leaves a run directory (report.json, report.html,
findings.jsonl, metrics/, checkpoints/, .hydra/, train.log). On a terminal it shows
Lightning's progress bar; with stdout redirected, one plain line per epoch (and every 30 s
within a long one) on stdout and in train.log. The summary at the end names every error and
warning. Bad input ends with one clear paragraph on
stderr and exit status 2, never a bare traceback; the run directory still says what happened.

SIGTERM (a scheduler's preemption or time limit) saves a last checkpoint, leaves status
``interrupted`` with the signal named, and exits with status 143. ``resume=RUN_DIR``
continues an interrupted run from ``RUN_DIR/checkpoints/last.ckpt``, in the
same run directory, replaying the overrides it started with (``.hydra/overrides.yaml``) so that
it trains under the same config; the config lock judges it as it judged the first start.

Run from a folder with a ``configs/`` directory, that folder's configs join Hydra's search
path and its Python modules are importable, so a team's own ``configs/recipe/myproj.yaml``
(see ``guardrail new``) runs as ``recipe=myproj``; ``--config-dir DIR`` adds another config
folder (and makes the folder above it importable).

Examples:
    python -m guardrail.train recipe=est
    python -m guardrail.train recipe=wea model.pool=8 trainer.max_epochs=5
    python -m guardrail.train recipe=wea guardrails=strict logger=tensorboard
    python -m guardrail.train recipe=est --cfg job      # print the composed config
    python -m guardrail.train recipe=myproj --config-dir ~/myproj/configs
    python -m guardrail.train resume=outputs/est/2026-01-01_12-00-00   # continue a run

"""

from __future__ import annotations

import logging
import shlex
import signal
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from guardrail.errors import ConfigError, GuardrailError
from guardrail.preflight import check_argv, config_dir_of
from guardrail.recipe import make_importable, search_path, with_project_configs

if TYPE_CHECKING:
    import lightning.pytorch as pl

EXIT_USAGE = 2
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143: what a shell reports for a process ended by SIGTERM


def run(cfg: DictConfig, run_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit and test the configured recipe; returns the final report dict.

    Args:
        cfg: The composed config (``configs/train.yaml``).
        run_info: Extra keys for report.json (the Hydra app passes the overrides).

    Raises:
        GuardrailError: Bad input or a strict guardrail stopped training; report.json is
            written with status ``failed`` first.

    """
    # torch and Lightning load here, not at import: a refused command line answers at once.
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from guardrail.build import build
    from guardrail.callbacks import ProgressLog, RunReport
    from guardrail.environment import thread_budget

    output_dir = Path(cfg.paths.output_dir)
    threads, why = thread_budget(cfg.get("threads", "auto"), _local_processes(cfg))
    torch.set_num_threads(threads)
    logging.getLogger("guardrail.train").info("torch threads: %d (%s)", threads, why)
    report = RunReport(output_dir, run_info={"recipe": cfg.get("recipe_name"),
                                             "torch_threads": {"threads": threads, "why": why},
                                             **(run_info or {})})
    trainer: pl.Trainer | None = None
    try:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        built = build(cfg)
        datamodule, module = built.datamodule, built.module
        callbacks = [hydra.utils.instantiate(c, _convert_="all")
                     for c in cfg.guardrails.callbacks.values()]
        callbacks += [hydra.utils.instantiate(cfg.checkpoint), report]
        logger = hydra.utils.instantiate(cfg.logger) if cfg.get("logger") else False
        bar = {}
        if cfg.trainer.get("enable_progress_bar", True) and not sys.stdout.isatty():
            # A bar redraws a terminal line; in a file or CI log it says nothing useful.
            callbacks.append(ProgressLog(use_logging=True))
            bar = {"enable_progress_bar": False}
        trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=logger, **bar)
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_checkpoint(cfg.get("resume")))
        if trainer.interrupted:
            return report.report
        ckpt_path = _test_checkpoint(trainer, cfg.get("ckpt_path"))
        trainer.test(module, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
    except BaseException as err:
        # Errors inside fit/test were already recorded by RunReport.on_exception; errors
        # before the trainer existed (config, data packages) are recorded here.
        if not report.report or report.report.get("status") not in ("failed", "interrupted"):
            interrupted = isinstance(err, KeyboardInterrupt | SIGTERMException)
            report.write(trainer, "interrupted" if interrupted else "failed", gather=False,
                         error=None if interrupted else f"{type(err).__name__}: {err}")
        raise
    _print_summary(report.report, output_dir)
    return report.report


def _local_processes(cfg: DictConfig) -> int:
    """Training processes this node runs: CPU devices under DDP share its cores."""
    devices = cfg.trainer.get("devices", 1)
    on_cpu = cfg.trainer.get("accelerator") == "cpu"
    return devices if on_cpu and isinstance(devices, int) and devices > 1 else 1


def resume_checkpoint(run_dir: str | None) -> str | None:
    """The checkpoint ``resume=RUN_DIR`` continues from (None for a new run).

    Raises:
        ConfigError: The run directory has no ``checkpoints/last.ckpt``.

    """
    if not run_dir:
        return None
    last = Path(run_dir) / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise ConfigError(
            f"resume={run_dir}: there is no {last} to continue from (the run stopped before its "
            "first epoch ended, or its config did not save one: `checkpoint.save_last=true`). "
            "Start it again without `resume=`.")
    return str(last)


def resume_argv(argv: list[str]) -> list[str]:
    """``argv`` with ``resume=RUN_DIR`` expanded into the run's own overrides and directory.

    The run's task overrides come from ``RUN_DIR/.hydra/overrides.yaml``, its
    ``hydra.searchpath`` and ``--config-dir`` from ``.hydra/hydra.yaml``; the output directory
    is ``RUN_DIR`` itself. A command line that already names ``hydra.run.dir`` (a DDP rank
    relaunched with the expanded line) is returned as it is.

    Raises:
        ConfigError: ``RUN_DIR`` is no run directory, or other overrides would change the run.

    """
    resume = [a for a in argv if a.startswith("resume=")]
    value = resume[-1].partition("=")[2] if resume else ""
    if not value or value == "null" or any(a.startswith("hydra.run.dir=") for a in argv):
        return argv
    import yaml

    run_dir = Path(value).expanduser().absolute()
    hydra_dir = run_dir / ".hydra"
    if not (hydra_dir / "overrides.yaml").is_file():
        raise ConfigError(f"resume={value}: {run_dir} is not a run directory of the app (it has "
                          "no .hydra/overrides.yaml). Give the folder a run was written to, "
                          "e.g. `resume=outputs/est/2026-01-01_12-00-00`.")
    others = [a for a in argv if a not in resume]
    if others:
        raise ConfigError(f"resume={value} continues the run under its own config; "
                          f"{' '.join(shlex.quote(a) for a in others)} would change it. Drop "
                          "them, or start a new run with them.")
    original = [o for o in yaml.safe_load((hydra_dir / "overrides.yaml").read_text()) or []
                if not o.startswith("resume=")]
    hydra_yaml = yaml.safe_load((hydra_dir / "hydra.yaml").read_text()) \
        if (hydra_dir / "hydra.yaml").is_file() else {}
    hydra_cfg = (hydra_yaml or {}).get("hydra", {})
    searchpath = [o for o in hydra_cfg.get("overrides", {}).get("hydra", [])
                  if o.startswith("hydra.searchpath=")]
    config_dirs = [s["path"] for s in hydra_cfg.get("runtime", {}).get("config_sources", [])
                   if s.get("provider") == "command-line" and s.get("schema") == "file"]
    flags = ["--config-dir", config_dirs[0]] if config_dirs else []
    return [*flags, *original, *searchpath, f"resume={run_dir}", f"hydra.run.dir={run_dir}"]


def _test_checkpoint(trainer: pl.Trainer, wanted: str | None) -> str | None:
    """``wanted`` when the run has such a checkpoint (``best`` needs a saved one), else None."""
    checkpoint = trainer.checkpoint_callback
    if wanted != "best" or trainer.fast_dev_run:
        return None if trainer.fast_dev_run else wanted
    return wanted if checkpoint is not None and getattr(checkpoint, "best_model_path", "") else None


def _print_summary(report: dict[str, Any], output_dir: Path) -> None:
    from lightning.pytorch.utilities import rank_zero_only
    from rich.console import Console

    from guardrail.report import render_summary
    from guardrail.report.run import load_run

    if rank_zero_only.rank != 0:
        return
    try:
        findings = load_run(output_dir)[1]
    except GuardrailError:  # no findings file: the counts alone
        findings = []
    # soft_wrap: paths stay whole (copy-pasteable) when stdout is not a terminal
    Console(soft_wrap=True).print(render_summary(report, output_dir, findings))


@hydra.main(version_base="1.3", config_path="pkg://guardrail.configs", config_name="train")
def _app(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    run_info = {
        "overrides": list(hydra_cfg.overrides.task),
        "choices": {k: v for k, v in OmegaConf.to_container(hydra_cfg.runtime.choices).items()
                    if not k.startswith("hydra/")},
    }
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    try:
        run(cfg, run_info)
    except SIGTERMException:
        # Lightning ends a SIGTERM'd run with SystemExit(None), status 0: a scheduler would
        # take a preempted job for a finished one.
        print(f"guardrail: stopped by SIGTERM; {cfg.paths.output_dir} has its last checkpoint: "
              f"continue with `python -m guardrail.train resume={cfg.paths.output_dir}`.",
              file=sys.stderr)
        sys.exit(EXIT_SIGTERM)
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
    try:
        argv = resume_argv(argv)
    except ConfigError as err:
        print(f"guardrail: error: {err}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    config_dir = config_dir_of(argv)
    argv = with_project_configs(argv, config_dir=config_dir)
    make_importable(search_path(config_dir, argv))
    problem = check_argv(argv)
    if problem:
        print(f"guardrail: error: {problem}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    sys.argv = [sys.argv[0], *argv]
    _app()


if __name__ == "__main__":
    main()
