"""The terminal summary printed at the end of ``python -m guardrail.train``.

Example:
    >>> import io
    >>> from rich.console import Console
    >>> console = Console(width=100, record=True, file=io.StringIO())
    >>> from guardrail.findings import Finding
    >>> console.print(render_summary({"recipe": "wea", "status": "completed",
    ...     "metrics": {"test": {"rmse_k": 0.5}}, "baselines": {"pixel_mean": {"rmse_k": 3.4}},
    ...     "findings": {"by_severity": {"error": 0, "warning": 1, "info": 2}}}, "/tmp/run",
    ...     [Finding("loss.plateau", "warning", "The val loss has not improved.", where="val_loss"),
    ...      Finding("data.skipped", "info", "Ids were not judged.")]))
    >>> text = console.export_text()
    >>> "pixel_mean" in text
    True
    >>> [line for line in text.splitlines() if "loss.plateau" in line]
    ['  warning loss.plateau at val_loss: The val loss has not improved.']

"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from guardrail.findings import Finding, Severity
from guardrail.report.html import baseline_label
from guardrail.report.run import REPORT_HTML, REPORT_JSON
from guardrail.report.text import plain_number

_STYLE = {"completed": "green", "interrupted": "yellow", "failed": "red", "running": "yellow"}


def render_summary(report: dict[str, Any], run_dir: str | Path,
                   findings: Sequence[Finding] = ()) -> Group:
    """Metrics against baselines, findings by severity, each error and warning, the paths.

    Every error and warning among ``findings`` gets one line (severity, check, where and
    message), errors first, so the terminal says what is wrong without opening a file.
    """
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
        row = [metric, plain_number(test[metric])]
        row += [plain_number(b[metric]) if metric in b else "" for b in baselines.values()]
        table.add_row(*row)
    counts = (report.get("findings") or {}).get("by_severity", {})
    counted = Text.assemble(
        "findings: ", (f"{counts.get('error', 0)} error", "red"), ", ",
        (f"{counts.get('warning', 0)} warning", "yellow"), ", ", f"{counts.get('info', 0)} info")
    run_dir = Path(run_dir)
    paths = Text(f"report: {run_dir / REPORT_JSON}\n        {run_dir / REPORT_HTML}")
    parts: list[Any] = [title]
    if report.get("error"):
        parts.append(Text(str(report["error"]), style="red"))
    if test:
        parts.append(table)
    parts.append(counted)
    order = {Severity.ERROR: 0, Severity.WARNING: 1}
    for f in sorted((f for f in findings if f.severity in order), key=lambda f: order[f.severity]):
        style = "red" if f.severity is Severity.ERROR else "yellow"
        where = f" at {f.where}" if f.where else ""
        parts.append(Text.assemble("  ", (f.severity.value, style), f" {f.check}{where}: ",
                                   f.message))
    parts.append(paths)
    return Group(*parts)
