"""Judge two replays of the same steps (``determinism.mismatch``) and the settings.

Example:
    >>> a = [{"outputs": [("net.0", "x"), ("net.1", "y")], "params": [("net.0", "p")]}]
    >>> b = [{"outputs": [("net.0", "x"), ("net.1", "z")], "params": [("net.0", "p")]}]
    >>> first_divergence(a, b)
    (0, 'net.1', 'output')
    >>> compare_replays(a, a) is None
    True

"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from guardrail.findings import Finding, Severity


def first_divergence(
    run_a: Sequence[dict[str, Any]], run_b: Sequence[dict[str, Any]]
) -> tuple[int, str, str] | None:
    """(step, module, "output" | "parameters") of the first difference, or None.

    Within a step, module outputs are compared in execution order first: the first module
    whose output differs is where nondeterminism entered (everything it fed on agreed). Only
    when every output agrees are the parameters after the step compared (a nondeterministic
    backward pass or optimiser).
    """
    for step, (a, b) in enumerate(zip(run_a, run_b, strict=False)):
        for kind, key in (("output", "outputs"), ("parameters", "params")):
            for (name_a, hash_a), (name_b, hash_b) in zip(a[key], b[key], strict=False):
                if name_a != name_b or hash_a != hash_b:
                    return step, name_a, kind
            if len(a[key]) != len(b[key]):
                return step, "(module calls differ)", kind
    return None


def compare_replays(
    run_a: Sequence[dict[str, Any]], run_b: Sequence[dict[str, Any]]
) -> Finding | None:
    """A ``determinism.mismatch`` error naming the first diverging module, or None."""
    divergence = first_divergence(run_a, run_b)
    if divergence is None:
        return None
    step, module, kind = divergence
    when = f"by step {step}" if module == "(model)" else f"at step {step}"  # one fingerprint
    return Finding(
        "determinism.mismatch", Severity.ERROR,
        f"Two replays of the first {len(run_a)} steps from identical state diverged {when}: "
        f"the {kind} of '{module}' differed.",
        where=module, evidence={"step": step, "kind": kind, "steps_replayed": len(run_a)},
        hint=f"'{module}' draws randomness that is not seeded by the global seed (a private "
             "torch.Generator, time, os.urandom) or uses a nondeterministic kernel; seed it from "
             "torch.initial_seed() or turn on trainer.deterministic=true.",
    )


def settings_findings(settings: dict[str, Any], enforced: bool, on_cuda: bool) -> list[Finding]:
    """Warnings for settings that defeat determinism while enforcement is off.

    Example:
        >>> [f.where for f in settings_findings({"deterministic_algorithms": False,
        ...  "cudnn_benchmark": True}, enforced=False, on_cuda=True)]
        ['torch.backends.cudnn.benchmark', 'torch.use_deterministic_algorithms']

    """
    if enforced:
        return []
    out = []
    if on_cuda and settings.get("cudnn_benchmark"):
        out.append(Finding(
            "determinism.settings", Severity.WARNING,
            "cuDNN benchmark mode is on: convolution algorithms are chosen by timing and can "
            "differ between runs.", where="torch.backends.cudnn.benchmark",
            hint="Set trainer.benchmark=false (or trainer.deterministic=true).",
        ))
    if not settings.get("deterministic_algorithms"):
        out.append(Finding(
            "determinism.settings", Severity.INFO if not on_cuda else Severity.WARNING,
            "Deterministic algorithms are not enforced: ops without a deterministic kernel "
            "may give different results run to run.", where="torch.use_deterministic_algorithms",
            hint="Set trainer.deterministic=true, or enforce=true on DeterminismGuard.",
        ))
    return out
