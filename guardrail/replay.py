"""Replay the first optimisation steps from one saved state and record what each module did.

Two replays from identical model, optimiser, RNG state and batches must agree bit for bit;
:func:`replay_steps` records, per step, a hash of every module's output (in execution order)
and of every module's parameters after the step, so a comparison can name the first module
that diverged. The model, optimiser and RNG are restored afterwards: training continues as if
nothing happened.
"""

from __future__ import annotations

import contextlib
import copy
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from guardrail.fingerprint import new_hasher, update_hash

StepRecord = dict[str, list[tuple[str, str]]]  # {"outputs": [(module, hash)], "params": [...]}


def rng_state() -> dict[str, Any]:
    """Global RNG states of torch (CPU and CUDA), numpy and ``random``."""
    return {
        "torch": torch.random.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "numpy": np.random.get_state(),
        "random": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.random.set_rng_state(state["torch"])
    if state["cuda"] is not None:
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["random"])


def _digest(obj: Any) -> str:
    h = new_hasher()
    update_hash(h, _detach(obj))
    return h.hexdigest()


def _detach(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.detach()
    if isinstance(obj, list | tuple):
        return [_detach(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _detach(v) for k, v in obj.items()}
    return obj if isinstance(obj, int | float | str | bool | type(None)) else type(obj).__name__


@contextlib.contextmanager
def _output_hooks(model: nn.Module, outputs: list[tuple[str, str]]) -> Iterator[None]:
    handles = []
    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(
                lambda _m, _i, out, name=name: outputs.append((name, _digest(out)))))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


_INT_VIEW = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _bits_sum(t: Tensor) -> Tensor:
    """Sum of the raw bit patterns as integers, computed on the tensor's device.

    Any changed bit changes it, barring an exact compensation; one pass, no host copy.
    """
    flat = t.detach().reshape(-1)
    return flat.view(_INT_VIEW[flat.element_size()]).sum(dtype=torch.int64)  # no int64 copy


def _param_hashes(model: nn.Module) -> list[tuple[str, str]]:
    names, sums = [], []
    for name, module in model.named_modules():
        own = [p for _, p in sorted(module.named_parameters(recurse=False))]
        if own:
            names.append(name or "(root)")
            sums.append(torch.stack([_bits_sum(p) for p in own]).sum())
    values = torch.stack(sums).tolist() if sums else []  # one transfer per step
    return [(n, str(v)) for n, v in zip(names, values, strict=True)]


def _model_fingerprint(model: nn.Module) -> list[tuple[str, str]]:
    """Bit-pattern sums of every parameter, read in one transfer (the healthy-path check)."""
    sums = [_bits_sum(p) for p in model.parameters()]
    return [("(model)", str(torch.stack(sums).tolist()))] if sums else []


def replay_steps(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Sequence[Any],
    loss_fn: Callable[[Any, int], Tensor],
    repeats: int = 2,
    outputs: bool = True,
) -> list[list[StepRecord]]:
    """Run ``len(batches)`` optimisation steps ``repeats`` times from the same state.

    Args:
        model: The module whose outputs and parameters are recorded.
        optimizer: Its optimiser (its state is saved and restored).
        batches: The batches, already on the model's device.
        loss_fn: ``(batch, index) -> scalar loss``; runs the forward pass.
        repeats: How many replays.
        outputs: Hash every module's output and parameters after every step (to localise a
            divergence; slower); without it, one fingerprint of all parameters after the
            last step (the records of earlier steps are empty).

    Returns:
        One list of step records per replay.

    Example:
        >>> m = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
        >>> opt = torch.optim.SGD(m.parameters(), lr=0.1)
        >>> runs = replay_steps(m, opt, [torch.ones(4, 2)] * 2, lambda b, i: m(b).pow(2).mean())
        >>> runs[0] == runs[1], [name for name, _ in runs[0][0]["outputs"]]
        (True, ['0', '1', '2'])

    """
    saved_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
    saved_opt = copy.deepcopy(optimizer.state_dict())
    saved_rng = rng_state()
    was_training = model.training
    runs: list[list[StepRecord]] = []
    try:
        for repeat in range(repeats):
            if repeat:  # the first replay starts from the live state, which is the saved one
                model.load_state_dict(saved_model)
                optimizer.load_state_dict(copy.deepcopy(saved_opt))
                set_rng_state(saved_rng)
            model.train()
            records: list[StepRecord] = []
            for i, batch in enumerate(batches):
                seen: list[tuple[str, str]] = []
                optimizer.zero_grad(set_to_none=True)
                with _output_hooks(model, seen) if outputs else contextlib.nullcontext():
                    loss = loss_fn(batch, i)
                loss.backward()
                optimizer.step()
                if outputs:
                    params = _param_hashes(model)
                else:
                    params = _model_fingerprint(model) if i == len(batches) - 1 else []
                records.append({"outputs": seen, "params": params})
            runs.append(records)
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_opt)
        optimizer.zero_grad(set_to_none=True)
        set_rng_state(saved_rng)
        model.train(was_training)
    return runs
