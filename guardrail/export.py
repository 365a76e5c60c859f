"""``guardrail export RUN_DIR``: the trained model as a program, with a parity test at export.

:func:`export_run` rebuilds the run's module from its config, loads the checkpoint's weights
(``weights_only``: nothing a user did not write is unpickled), and writes ``RUN_DIR/export/``:

- ``model.pt2``, a ``torch.export`` program with a dynamic batch dimension (TorchScript,
  ``model.ts``, where export cannot capture the model; ``export.json`` says which and why);
- ``preprocessor.json`` and ``contract.json``, copied from the run;
- ``examples.jsonl``: a fixed held-out batch of raw records (the test split's first
  ``examples``) with the predictions the trained model gives them;
- ``reference.json``: the contract of the training inputs, a profile of the model's
  predictions on training records, the drift profile of every training record (decile bins,
  a quantile sketch, category counts) and the model's error on the test split: what
  ``guardrail monitor`` compares serving traffic with;
- ``export.json``: versions, formats, file hashes (SHA-256, checked before loading), the
  tolerance, the measured parity, and the replay spread (the largest difference between two
  identical replays of the examples, what ``guardrail doctor`` judges them against).

**Parity test.** The exported program through the serving path (records ->
``preprocessor.json`` -> program) is compared with the trained module through the training
path (the datamodule's own tensors of the same rows -> module: its test loader's, or
``record_inputs("test")`` where the test dataset's rows are not the records', as in a
ranking split of per-user rows). A difference beyond the
tolerance is an ``export.parity`` error naming the output and the worst record: the serving
path computes something other than what was trained.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from guardrail.errors import ConfigError, DataError
from guardrail.findings import Finding, Severity
from guardrail.io import write_json, write_jsonl, write_text

FOLDER = "export"
PROGRAM, SCRIPT = "model.pt2", "model.ts"
EXAMPLES, REFERENCE, MANIFEST = "examples.jsonl", "reference.json", "export.json"
ATOL, RTOL = 1e-5, 1e-4  # float32 programs reorder a few operations; more is a skew
MAX_BATCH = 4096  # the largest batch the program takes (a dynamic dimension needs a bound)


def export_run(run_dir: str | Path, checkpoint: str = "best", examples: int = 64,
               reference_samples: int = 2048, atol: float = ATOL,
               rtol: float = RTOL) -> tuple[dict[str, Any], list[Finding]]:
    """Export the run's trained model into ``RUN_DIR/export/``; returns export.json and findings.

    Raises:
        ConfigError: Not a run directory, no checkpoint, or no contract/preprocessor files.
        DataError: The checkpoint cannot be read as weights.
    """
    from guardrail.batches import model_inputs
    from guardrail.contract import infer_contract
    from guardrail.doctor import replay_spread
    from guardrail.preprocess import FILE as PRE_FILE
    from guardrail.preprocess import load_preprocessor
    from guardrail.rundir import checkpoint_path, run_built

    run_dir = Path(run_dir)
    for name in ("contract.json", PRE_FILE):
        if not (run_dir / name).is_file():
            raise ConfigError(
                f"{run_dir} has no {name}: the run was trained without the DataContract "
                "guardrail (`guardrails=default` has it). Train again with it on, then export.")
    built = run_built(run_dir)
    module, datamodule = built.module, built.datamodule
    ckpt = checkpoint_path(run_dir, checkpoint)
    load_weights(module, ckpt)
    module.eval()
    pre = load_preprocessor(run_dir / PRE_FILE)
    records = _records(datamodule, "test")
    train_records = _records(datamodule, "train")
    n = min(examples, len(records))
    if n == 0:
        raise ConfigError(f"{run_dir}: the test split has no records to export examples from.")

    # the training path: the datamodule's own tensors of the same rows, through the module
    aligned = datamodule.record_inputs("test") if callable(
        getattr(datamodule, "record_inputs", None)) else None
    trained = _outputs(module, [tuple(t[:n] for t in aligned)], n) if aligned is not None \
        else _outputs(module, [model_inputs(module, b) for b in _batches(datamodule, n)], n)
    # the serving path: raw records through the saved preprocessor
    served_inputs = pre.transform(records[:n])
    out = run_dir / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    program, fmt, why = _export(module, served_inputs, out)
    served = first_output(program(*served_inputs)).detach()
    parity = measure_parity(trained, served, atol, rtol)
    findings = parity_findings(parity, records[:n])

    shutil.copyfile(run_dir / "contract.json", out / "contract.json")
    shutil.copyfile(run_dir / PRE_FILE, out / PRE_FILE)
    predictions = pre.predictions(served)
    # the run-to-run noise `guardrail doctor` judges these golden outputs against
    spread = max(replay_spread(program, served_inputs, pre.predictions),
                 replay_spread(module, served_inputs, pre.predictions))
    write_jsonl(out / EXAMPLES, [{"record": r, "prediction": p}
                                 for r, p in zip(records[:n], predictions, strict=True)])
    reference = _reference(program, pre, train_records, reference_samples,
                           json.loads((run_dir / "contract.json").read_text()), infer_contract)
    reference["performance"] = _test_performance(program, pre, records, datamodule)
    write_json(out / REFERENCE, reference)
    files = {name: sha256(out / name) for name in
             (fmt_file(fmt), "contract.json", PRE_FILE, EXAMPLES, REFERENCE)}
    manifest = {
        "format": fmt, "why": why, "files": files, "checkpoint": str(ckpt),
        "model_id": model_id(run_dir, files[fmt_file(fmt)]),
        "tolerance": {"atol": atol, "rtol": rtol}, "parity": parity,
        "examples": n, "replay_spread": spread, "max_batch": MAX_BATCH,
        "versions": {"torch": torch.__version__, "python": platform.python_version(),
                     "guardrail": _version()},
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "findings": [f.to_dict() for f in findings],
    }
    write_json(out / MANIFEST, manifest)
    return manifest, findings


def load_weights(module: torch.nn.Module, path: Path) -> None:
    """The checkpoint's ``state_dict`` into ``module``, loaded with ``weights_only=True``.

    Raises:
        DataError: The file is not a readable checkpoint, or its weights do not fit the module.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        module.load_state_dict(ckpt["state_dict"])
    except Exception as err:  # any unreadable or mismatched file: one clear paragraph
        raise DataError(
            f"The checkpoint {path} cannot be loaded as this run's weights ({type(err).__name__}:"
            f" {str(err).splitlines()[0] if str(err) else ''}). It is corrupt, not a Lightning "
            "checkpoint, or from another model; export from another checkpoint "
            "(`--checkpoint last`) or train again.") from None


def measure_parity(trained: Tensor, served: Tensor, atol: float = ATOL,
                   rtol: float = RTOL) -> dict[str, Any]:
    """Largest differences between two outputs, per output column, and whether they agree.

    Example:
        >>> p = measure_parity(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 2.5]]))
        >>> p["passed"], p["worst"]["output"], p["worst"]["record"], p["max_abs_diff"]
        (False, 1, 0, 0.5)

    """
    if trained.shape != served.shape:
        return {"passed": False, "max_abs_diff": None, "shape": {
            "trained": list(trained.shape), "served": list(served.shape)},
            "worst": {"output": None, "record": None}}
    a, b = trained.float().reshape(len(trained), -1), served.float().reshape(len(served), -1)
    diff = (a - b).abs()
    excess = diff - (atol + rtol * a.abs())
    flat = int(torch.argmax(excess))
    record, column = divmod(flat, diff.shape[1]) if diff.numel() else (0, 0)
    return {"passed": bool((excess <= 0).all()), "max_abs_diff": float(diff.max()),
            "per_output": [float(d) for d in diff.max(0).values],
            "worst": {"output": column, "record": record,
                      "trained": float(a[record, column]) if diff.numel() else None,
                      "served": float(b[record, column]) if diff.numel() else None}}


def parity_findings(parity: dict[str, Any], records: Sequence[Any]) -> list[Finding]:
    """``export.parity`` (error) when the serving path does not compute what was trained."""
    if parity["passed"]:
        return []
    worst = parity["worst"]
    if parity["max_abs_diff"] is None:
        message = (f"The exported program through the serving path gives outputs of shape "
                   f"{parity['shape']['served']}, the trained model {parity['shape']['trained']}.")
        where = "output"
    else:
        message = (f"Output {worst['output']} differs between the serving path and the trained "
                   f"model by up to {parity['max_abs_diff']:.3g}: record {worst['record']} gets "
                   f"{worst['served']:.6g} served and {worst['trained']:.6g} trained.")
        where = f"output[{worst['output']}]"
    return [Finding(
        "export.parity", Severity.ERROR, message, where=where,
        evidence={**parity, "record": records[worst["record"]]
                  if worst.get("record") is not None else None},
        hint="The preprocessing at serving differs from training (statistics of the serving "
             "batch, another encoding, a changed vocabulary): serve through the run's saved "
             "preprocessor.json, not a re-implementation.")]


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_id(run_dir: Path, program_sha: str) -> str:
    """The served model's id: the run's config hash and the program's hash, shortened."""
    config = run_dir / ".hydra" / "config.yaml"
    config_sha = sha256(config)[:12] if config.is_file() else "unknown"
    return f"{config_sha}-{program_sha[:12]}"


def fmt_file(fmt: str) -> str:
    """The file name of a program format."""
    return {"torch.export": PROGRAM, "torchscript": SCRIPT}[fmt]


def load_program(folder: str | Path) -> Any:
    """The exported program of ``folder`` as a callable, after checking its SHA-256.

    Raises:
        DataError: No export there, or a file changed since export (never loaded then:
            ``torch.export.load`` may unpickle what the file holds).
    """
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"{folder} holds no readable {MANIFEST} ({err}); run `guardrail export "
                        "RUN_DIR` first.") from None
    name = fmt_file(manifest["format"])
    if sha256(folder / name) != manifest["files"][name]:
        raise DataError(f"{folder / name} has changed since it was exported (its SHA-256 differs "
                        f"from {MANIFEST}); refusing to load it. Export again.")
    if manifest["format"] == "torch.export":
        return torch.export.load(folder / name).module()
    return torch.jit.load(folder / name, map_location="cpu")


def _export(module: torch.nn.Module, inputs: tuple[Tensor, ...],
            out: Path) -> tuple[Any, str, str]:
    """(callable program, format, why): torch.export, else TorchScript."""
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    wrapped = _Forward(module)
    try:  # forward(*inputs) is one argument to export: a tuple, batch dimension dynamic
        ep = torch.export.export(
            wrapped, tuple(inputs), dynamic_shapes=(tuple({0: batch} for _ in inputs),))
        torch.export.save(ep, out / PROGRAM)
        return ep.module(), "torch.export", "torch.export captured the model"
    except Exception as err:  # a model export cannot capture: say why, fall back
        why = f"torch.export failed ({type(err).__name__}: {_line(err)})"
    scripting = getattr(module, "_jit_is_scripting", None)
    try:  # a LightningModule asks for its trainer unless it knows it is being traced
        if scripting is not None:
            module._jit_is_scripting = True
        script = torch.jit.trace(wrapped, tuple(inputs), check_trace=False)
        torch.jit.save(script, str(out / SCRIPT))
    except Exception as err:
        raise DataError(
            f"The model could be exported neither by torch.export ({why}) nor by TorchScript "
            f"tracing ({type(err).__name__}: {_line(err)}). A forward that takes the "
            "preprocessor's tensors and returns a tensor, without Python-side data-dependent "
            "control flow, exports.") from None
    finally:
        if scripting is not None:
            module._jit_is_scripting = scripting
    write_text(out / "why_torchscript.txt", why + "\n")
    return script, "torchscript", why + "; traced with TorchScript instead"


def _line(err: BaseException) -> str:
    return (str(err).splitlines() or [""])[0][:200]


class _Forward(torch.nn.Module):
    """The module's forward with its first tensor output: what serving answers."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *inputs: Tensor) -> Tensor:
        return first_output(self.module(*inputs))


def first_output(out: Any) -> Tensor:
    """The first tensor of a forward's output (what is exported and served)."""
    from guardrail.shapes import first_tensor

    tensor = first_tensor(out)
    if tensor is None:
        raise DataError("The model's forward returned no tensor; it cannot be exported.")
    return tensor


def _records(datamodule: Any, split: str) -> list[Any]:
    from guardrail.datamodule import raw_records

    records = raw_records(datamodule, split)
    if records is None:
        raise ConfigError(f"{type(datamodule).__name__} has no raw records (records(split)); "
                          "export needs them for the parity test.")
    return records


def _batches(datamodule: Any, n: int) -> list[Any]:
    batches, rows = [], 0
    for batch in datamodule.test_dataloader():
        batches.append(batch)
        rows += len(batch[0]) if isinstance(batch, list | tuple) else len(batch)
        if rows >= n:
            break
    return batches


@torch.no_grad()
def _outputs(module: torch.nn.Module, inputs: list[Any], n: int) -> Tensor:
    return torch.cat([first_output(module(*x)).detach() for x in inputs])[:n]


@torch.no_grad()
def _predict(program: Any, pre: Any, records: list[Any]) -> list[Any]:
    """What serving answers for ``records``, in batches of 512."""
    out: list[Any] = []
    for i in range(0, len(records), 512):
        out += pre.predictions(first_output(program(*pre.transform(records[i:i + 512]))))
    return out


@torch.no_grad()
def _reference(program: Any, pre: Any, records: list[Any], samples: int,
               contract: dict[str, Any], infer: Any) -> dict[str, Any]:
    """The training inputs' contract and predictions' profile, and the drift profile.

    ``inputs``, ``predictions`` and ``records`` describe the first ``samples`` training records
    as the contract does; ``drift`` (:func:`guardrail.checks.drift.reference_profile`) holds
    every training record's decile bins, quantile sketch and category counts, and the
    predictions' on the first ``samples``: bounded in size whatever the split's length.
    """
    from guardrail.checks.drift import feature_plan, reference_profile

    sample = records[:samples]
    outputs = [first_output(program(*pre.transform(sample[i:i + 512])))
               for i in range(0, len(sample), 512)]
    flat = torch.cat(outputs).reshape(len(sample), -1) if outputs else torch.zeros(0, 1)
    rows = [{f"prediction[{j}]" if flat.shape[1] > 1 else "prediction": float(v)
             for j, v in enumerate(row)} for row in flat.tolist()]
    answers = pre.predictions(torch.cat(outputs)) if outputs else []
    drift = reference_profile(feature_plan(contract), records, answers)
    return {"inputs": contract, "predictions": infer(rows), "records": len(sample),
            "drift": drift}


def _test_performance(program: Any, pre: Any, records: list[Any],
                      datamodule: Any) -> dict[str, Any] | None:
    """The model's error on the whole test split (``rmse`` or ``brier``).

    What ``drift.performance`` compares a labelled window with; ``None`` where the test
    split's targets are not the last tensor of a dataset row-aligned with its records.
    """
    from guardrail.checks.drift import performance_metric

    dataset = (getattr(datamodule, "datasets", None) or {}).get("test")
    tensors = getattr(dataset, "tensors", None)
    if not isinstance(tensors, tuple | list) or not tensors:
        return None  # a dict of tensors (WEA's fields, REC's ranking rows) has no target column
    if not isinstance(tensors[-1], torch.Tensor) or tensors[-1].dim() != 1 \
            or len(tensors[-1]) != len(records):
        return None
    labels = tensors[-1].tolist()
    measured = performance_metric(list(zip(_predict(program, pre, records), labels,
                                           strict=True)))
    if measured is None:
        return None
    return {"metric": measured[0], "value": measured[1], "records": len(records)}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("guardrail")
    except PackageNotFoundError:
        return "unknown"
