"""The fault suite's cases: faults injected into small models, and healthy models.

``declared`` holds models that subclass ``GuardrailModule`` (task, example input and loss
declared); ``plain`` holds plain ``LightningModule``s written as users write them.
``scripts/fault_suite.py`` runs them and splits them into a tuning and a held-out half.
"""

from faults.common import CHECKS, Case, Run
from faults.declared import CASES as DECLARED
from faults.plain import CASES as PLAIN

CASES: list[Case] = [*DECLARED, *PLAIN]

__all__ = ["CASES", "CHECKS", "Case", "Run"]
