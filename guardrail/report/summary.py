"""The terminal summary printed at the end of ``python -m guardrail.train``.

Example:
    >>> import io
    >>> from rich.console import Console
    >>> console = Console(width=100, record=True, file=io.StringIO())
    >>> console.print(render_summary({"recipe": "wea", "status": "completed",
    ...     "metrics": {"test": {"rmse_k": 0.5}}, "baselines": {"pixel_mean": {"rmse_k": 3.4}},
    ...     "findings": {"by_severity": {"error": 0, "warning": 1, "info": 2}}}, "/tmp/run"))
    >>> "pixel_mean" in console.export_text()
    True

"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from guardrail.report.html import baseline_label
from guardrail.report.run import REPORT_HTML, REPORT_JSON

_STYLE = {"completed": "green", "interrupted": "yellow", "failed": "red", "running": "yellow"}


def render_summary(report: dict[str, Any], run_dir: str | Path) -> Group:
    """Metrics against baselines, findings by severity and the report paths."""
    status = report.get("status", "running")
    title = Text.assemble(("guardrail ", "bold"), (str(report.get("recipe") or "run"), "bold"),
                          ": ", (status, _STYLE.get(status, "red")))
    test = (report.get("metrics") or {}).get("test") or {}
    baselines = report.get("baselines") or {}
    table = Table(title="test metrics", title_justify="left")
    table.add_column("metric")
    table.add_column("model", justify="right")
    for name in baselines:
        table.add_column(baseline_label(report, name), justify="right")
    for metric in sorted(test):
        row = [metric, f"{test[metric]:.4g}"]
        row += [f"{b[metric]:.4g}" if metric in b else "" for b in baselines.values()]
        table.add_row(*row)
    counts = (report.get("findings") or {}).get("by_severity", {})
    findings = Text.assemble(
        "findings: ", (f"{counts.get('error', 0)} error", "red"), ", ",
        (f"{counts.get('warning', 0)} warning", "yellow"), ", ", f"{counts.get('info', 0)} info")
    run_dir = Path(run_dir)
    paths = Text(f"report: {run_dir / REPORT_JSON}\n        {run_dir / REPORT_HTML}")
    parts: list[Any] = [title]
    if report.get("error"):
        parts.append(Text(str(report["error"]), style="red"))
    if test:
        parts.append(table)
    parts += [findings, paths]
    return Group(*parts)
