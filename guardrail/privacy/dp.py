"""DP-SGD's parts for a LightningModule: layer checks, noise calibration, Poisson sampling.

Opacus (``pip install 'guardrail-dl[privacy]'``) does the per-example gradients, the
clipping, the noise and the accounting; this module adapts them to a model Lightning owns:
layers are checked (and replaced, if asked) in place, because the Trainer holds the module
object, and the noise is calibrated to a privacy budget ``(epsilon, delta)`` over the
planned training length.

Example:
    >>> from torch import nn
    >>> unsupported_layers(nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8)))
    ['1 (BatchNorm1d)']
    >>> round(noise_multiplier(target_epsilon=4.0, delta=1e-5, sample_rate=0.01, epochs=10), 2)
    0.78

"""

from __future__ import annotations

import contextlib
import importlib.util
import warnings
from collections.abc import Iterator
from types import ModuleType

from torch import nn

from guardrail.errors import ConfigError

INSTALL = "pip install 'guardrail-dl[privacy]'"


def opacus() -> ModuleType:
    """The ``opacus`` package, or a :class:`ConfigError` saying how to install it."""
    if importlib.util.find_spec("opacus") is None:
        raise ConfigError(
            "privacy.dp=true trains with DP-SGD through Opacus, which is not installed. Install "
            f"it with `{INSTALL}` (Opacus 1.6), or train without differential privacy "
            "(`privacy.dp=false`).")
    import opacus as package

    return package


def unsupported_layers(module: nn.Module) -> list[str]:
    """Sub-modules Opacus cannot compute per-example gradients for, as ``name (Class)``."""
    from opacus.validators import ModuleValidator

    found = []
    for name, layer in module.named_modules():
        validate = ModuleValidator.VALIDATORS.get(type(layer))
        if validate is not None and validate(layer):
            found.append(f"{name or type(module).__name__} ({type(layer).__name__})")
    return found


def fix_layers(module: nn.Module) -> list[str]:
    """Replace, in place, each layer Opacus has a private equivalent for; returns their names.

    BatchNorm becomes GroupNorm, ``nn.LSTM``/``nn.GRU``/``nn.RNN`` their ``DPLSTM``/``DPGRU``/
    ``DPRNN`` (same weights and parameter names), ``nn.MultiheadAttention`` Opacus'. In place,
    unlike ``ModuleValidator.fix`` (which returns a copy): the Trainer holds this module.
    """
    from opacus.validators import ModuleValidator

    replaced = []
    for name, layer in list(module.named_modules()):
        fixer = ModuleValidator.FIXERS.get(type(layer))
        if fixer is None or not name:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        device = next(layer.parameters(), None)
        new = fixer(layer)
        if device is not None:
            new.to(device.device)
        setattr(parent, child, new)
        replaced.append(f"{name} ({type(layer).__name__} -> {type(new).__name__})")
    return replaced


def layers_error(where: str, layers: list[str]) -> ConfigError:
    """The one-paragraph refusal of a model whose layers DP-SGD cannot train."""
    return ConfigError(
        f"{where} has layer(s) DP-SGD cannot train: {', '.join(layers)}. Per-example gradients "
        "(Opacus) need every example's gradient to be its own, and BatchNorm mixes the examples "
        "of a batch, while nn.LSTM/nn.GRU/nn.RNN have no per-example gradient rule. Replace them "
        "in the model (GroupNorm for BatchNorm; opacus.layers.DPLSTM/DPGRU/DPRNN, which keep "
        "the weights' names), or let guardrail replace them before training with "
        "`privacy.dp_fix_layers=true` (Opacus' ModuleValidator.fix, done in place).")


def noise_multiplier(*, target_epsilon: float, delta: float, sample_rate: float,
                     epochs: int | None = None, steps: int | None = None) -> float:
    """The noise (a multiple of the clipping norm) that spends ``target_epsilon`` at ``delta``.

    Over ``epochs`` of ``1 / sample_rate`` steps (or ``steps``), by Opacus' RDP accountant.
    """
    from opacus.accountants.utils import get_noise_multiplier

    with quiet_accountant():
        return float(get_noise_multiplier(target_epsilon=target_epsilon, target_delta=delta,
                                          sample_rate=sample_rate, epochs=epochs, steps=steps,
                                          accountant="rdp"))


@contextlib.contextmanager
def quiet_accountant() -> Iterator[None]:
    """Silence the RDP accountant's "optimal order is the largest alpha": its bound holds."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        yield
