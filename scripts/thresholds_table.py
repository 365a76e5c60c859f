"""Print the README's threshold table, generated from the check modules' dataclasses.

Usage:
    python scripts/thresholds_table.py
"""

from guardrail.thresholds import markdown

if __name__ == "__main__":
    print(markdown())
