"""Presentation: findings.jsonl, report.json, report.html and the terminal summary.

Reports read only what callbacks recorded, so ``guardrail report RUN_DIR`` can re-render a
finished run.
"""

from guardrail.report.html import render_html
from guardrail.report.run import (
    FINDINGS_FILE,
    REPORT_HTML,
    REPORT_JSON,
    load_run,
    rerender,
    write_run_files,
)
from guardrail.report.summary import render_summary

__all__ = [
    "FINDINGS_FILE",
    "REPORT_HTML",
    "REPORT_JSON",
    "load_run",
    "render_html",
    "render_summary",
    "rerender",
    "write_run_files",
]
