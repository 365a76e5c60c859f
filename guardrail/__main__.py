"""``python -m guardrail``: the same as the ``guardrail`` command."""

from guardrail.cli import entry

entry()
