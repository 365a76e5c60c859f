"""Resolution loss (``probe.resolution_loss``): downsampling that discards needed detail.

The paper's WEA incident: pooling before the encoder set the floor of the loss.

The rule, for networks whose output is as large as their input (autoencoders, denoisers,
field-to-field models; classifiers and regressors are never judged): a pooling layer, or a
strided convolution that does not expand capacity, is flagged when it keeps fewer numbers
per sample than the narrowest *learned* representation after it (the network's own code).
Such a layer, not the code, then bounds what can be reconstructed: no later layer can bring
back what it threw away. Ordinary 2x pooling in front of a smaller code, and strided
convolutions that add channels, stay silent.

Example:
    >>> from guardrail.shapes import Layer
    >>> pool = Layer("net.pool", "pool", (2, 1, 32, 48), (2, 1, 4, 6), 1536, 24, 8, False)
    >>> code = Layer("net.code", "linear", (2, 384), (2, 128), 384, 128, 1, True)
    >>> out = Layer("net.out", "conv", (2, 8, 32, 48), (2, 1, 32, 48), 12288, 1536, 1, True)
    >>> [f.where for f in resolution_findings([pool, code, out], 1536, 1536)]
    ['net.pool']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from guardrail.findings import Finding, Severity
from guardrail.shapes import Layer
from guardrail.thresholds import Thresholds, limit


@dataclass(frozen=True)
class ResolutionThresholds(Thresholds):
    """What ``probe.resolution_loss`` compares against; ``ArchitectureCheck`` takes it.

    Example:
        >>> ResolutionThresholds().dense_fraction
        0.5
    """

    dense_fraction: float = limit(
        0.5, "probe.resolution_loss", "share of the input's numbers per sample the output "
        "must hold for the network to be judged as field-to-field", low=0, high=1,
        open_low=True)


DEFAULTS = ResolutionThresholds()


def is_downsampling(layer: Layer) -> bool:
    """Pooling, or a strided convolution whose output holds fewer numbers than its input."""
    if layer.kind == "pool":
        return layer.out_numbers < layer.in_numbers
    return layer.kind == "conv" and layer.stride > 1 and layer.out_numbers < layer.in_numbers


def resolution_findings(
    layers: Sequence[Layer],
    in_numbers: int,
    out_numbers: int,
    detail_lost: Mapping[str, float] | None = None,
    limits: ResolutionThresholds = DEFAULTS,
) -> list[Finding]:
    """``probe.resolution_loss`` errors for layers narrower than the network's own code.

    Args:
        layers: The shape walk, in execution order.
        in_numbers: Numbers per sample of the network's input.
        out_numbers: Numbers per sample of its output.
        detail_lost: Optional measured fraction of each layer input's variance that down- then
            up-sampling removes (evidence only).
        limits: The output must hold at least ``dense_fraction`` of the input's numbers for
            the network to count as field-to-field.
    """
    dense_fraction = limits.dense_fraction
    if out_numbers < dense_fraction * in_numbers or len(layers) < 2:
        return []
    findings = []
    internal = list(layers[:-1])  # the last layer produces the output itself
    for i, layer in enumerate(internal):
        if not is_downsampling(layer):
            continue
        # The code is the narrowest learned layer of the rest of the *encoder*: the layers
        # before the representation grows back to the output's size (the decoder's layers
        # are not a code; without this cut, a textbook conv autoencoder's own bottleneck
        # would be flagged, as the fault suite showed).
        later = []
        for other in internal[i + 1:]:
            if other.out_numbers >= dense_fraction * in_numbers:
                break
            if other.learned:
                later.append(other.out_numbers)
        if not later or layer.out_numbers >= min(later):
            continue
        code = min(later)
        evidence = {"kept_numbers": layer.out_numbers, "input_numbers": layer.in_numbers,
                    "code_numbers": code, "reduction": round(layer.in_numbers
                                                             / layer.out_numbers, 2)}
        lost = (detail_lost or {}).get(layer.name)
        if lost is not None:
            evidence["variance_lost"] = round(lost, 5)
        findings.append(Finding(
            "probe.resolution_loss", Severity.ERROR,
            f"'{layer.name}' keeps {layer.out_numbers} numbers per sample of {layer.in_numbers}"
            f" ({evidence['reduction']}x fewer), fewer than the narrowest learned layer of the "
            f"encoder after it ({code}): this layer, not the code, limits what the output can "
            "reconstruct"
            + (f"; it removes {lost:.1%} of its input's variance." if lost is not None else "."),
            where=layer.name, evidence=evidence,
            hint=f"Downsample less at '{layer.name}' (a smaller pooling factor or stride), or "
                 "move it after convolutions that add channels, so that it keeps at least as "
                 "many numbers as the code.",
        ))
    return findings
