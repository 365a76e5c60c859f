"""Reading and writing a run directory's report files.

``report.json`` keys: ``schema``, ``guardrail_version``, ``recipe``, ``overrides``, ``status``
(``running``, ``completed``, ``interrupted``, ``failed``), ``error``, ``started_at``,
``finished_at``, ``metrics`` (split -> name -> value), ``baselines`` (name -> metric -> test
value), ``baseline_roles`` (name -> ``trivial`` or ``reference``), ``history`` (one row per
epoch), ``findings`` (counts by severity and by check) and ``files``.

Example:
    >>> import tempfile, pathlib
    >>> from guardrail.findings import Finding
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = write_run_files(d, {"status": "completed", "metrics": {"test": {"rmse": 1.0}}},
    ...                     [Finding("demo.x", "warning", "Odd.")])
    >>> report, findings = load_run(d)
    >>> report["findings"]["by_severity"], findings[0].check
    ({'error': 0, 'warning': 1, 'info': 0}, 'demo.x')

"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from guardrail.errors import GuardrailError
from guardrail.findings import Finding, count_findings
from guardrail.io import write_json, write_jsonl, write_text
from guardrail.report.html import render_html

FINDINGS_FILE = "findings.jsonl"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
SCHEMA = 1


def write_run_files(
    run_dir: str | Path, report: dict[str, Any], findings: Sequence[Finding], html: bool = True
) -> dict[str, Any]:
    """Write findings.jsonl, report.json and (optionally) report.html atomically.

    ``report`` is completed with the schema version, the findings' counts and the file names;
    the completed dict is returned. Call on global rank zero only.
    """
    from guardrail import __version__

    run_dir = Path(run_dir)
    report = {
        "schema": SCHEMA,
        "guardrail_version": __version__,
        "status": "running",
        **report,
        "findings": count_findings(findings),
        "files": {"findings": FINDINGS_FILE, "report_json": REPORT_JSON,
                  **({"report_html": REPORT_HTML} if html else {}), **report.get("files", {})},
    }
    write_jsonl(run_dir / FINDINGS_FILE, [f.to_dict() for f in findings])
    write_json(run_dir / REPORT_JSON, report)
    if html:
        write_text(run_dir / REPORT_HTML, render_html(report, findings, run_dir))
    return report


def load_run(run_dir: str | Path) -> tuple[dict[str, Any], list[Finding]]:
    """Read a run directory's report.json and findings.jsonl.

    Raises:
        GuardrailError: The folder holds no report.json, or a file is not valid JSON.

    """
    run_dir = Path(run_dir)
    path = run_dir / REPORT_JSON
    if not path.is_file():
        raise GuardrailError(
            f"'{run_dir}' is not a guardrail run directory: it has no {REPORT_JSON}. Pass the "
            "folder a run wrote (e.g. outputs/wea/2026-01-01_12-00-00); `ls outputs/*` lists them."
        )
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        lines = (run_dir / FINDINGS_FILE).read_text(encoding="utf-8").splitlines() \
            if (run_dir / FINDINGS_FILE).is_file() else []
        findings = [Finding.from_dict(json.loads(line)) for line in lines if line.strip()]
    except (json.JSONDecodeError, TypeError, ValueError) as err:
        raise GuardrailError(
            f"'{run_dir}' holds a corrupt report file ({err}). Nothing was changed; re-run the "
            "training to regenerate it."
        ) from err
    return report, findings


def rerender(run_dir: str | Path) -> Path:
    """Re-render ``report.html`` from the recorded files; returns its path."""
    report, findings = load_run(run_dir)
    out = Path(run_dir) / REPORT_HTML
    write_text(out, render_html(report, findings, run_dir))
    return out
