"""Judgement: pure functions from statistics to findings; no Lightning, no I/O."""
