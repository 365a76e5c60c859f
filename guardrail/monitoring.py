"""``guardrail monitor RUN_DIR``: serving traffic against the training reference, per window.

Reads the served records by streaming -- the prediction log of ``guardrail serve`` (SQLite,
read by a cursor in chunks of :data:`CHUNK` rows) or a JSON-lines file (line by line) -- cuts
them into windows of ``window`` records or by the log's ``time`` (``by="day"`` or ``"week"``),
profiles each window on the bins of the run's reference (``RUN_DIR/export/reference.json``,
written by ``guardrail export``) and judges it with the pure rules of
:mod:`guardrail.checks.drift`. Memory is bounded by the reference and one window's category
counts, never by the log: a window keeps counts on fixed bins, not its records. With
``--labels`` the labels are held too, and so is one small tuple for each labelled row that says
whether it was served (for the feedback checks).

Public API (plain data, for the CLI and for renderers such as an HTML report):

- :func:`iter_windows` yields one :class:`WindowResult` per window, as it is read;
- :func:`monitor` runs them all, writes ``RUN_DIR/monitoring/<timestamp>/`` (``findings.jsonl``,
  ``monitor.json``, ``windows.jsonl`` and the page ``monitor.html``) and returns a
  :class:`MonitorResult`;
- :func:`read_windows` reads ``windows.jsonl`` back; :func:`load_reference` the reference;
  :func:`reference_distributions` the training histograms a window's ``current`` counts are
  drawn against; :func:`exit_code` the 0/1/2 of a list of findings.

A window's ``features[name]`` holds ``kind``, ``field``, ``summary``, ``statistics`` (numeric:
``psi``, ``ks``, ``p_value``, ``shift_sd``; categorical: ``js``, ``linf``, ``p_value``,
``unseen_share``) and ``current``: for numeric features the counts on the reference's decile
bins (:func:`reference_distributions` gives their edges; the last count is missing values),
``n``, ``missing``, ``mean``, ``sd``; for categorical ones the shares of the reference's most
frequent categories and of ``<unseen>``/``<missing>``.

Sources. A log row is ``(id, time, model_id, record, prediction, warnings)``. A JSON-lines
file holds either raw records (what ``guardrail records`` prints; their predictions are
computed with the exported program) or objects ``{"record": ..., "prediction": ..., "time":
..., "id": ...}`` (``examples.jsonl``'s shape; ``time`` and ``id`` optional). A row's id is
the log's ``id``, the object's ``id``, or else its line number from 1; ``--labels`` joins on it.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from guardrail.checks.drift import (
    PROFILE_VERSION,
    DriftThresholds,
    EncodedChunk,
    Feature,
    WindowAccumulator,
    drift_findings,
    performance_findings,
    performance_metric,
    thin_window_finding,
)
from guardrail.errors import ConfigError
from guardrail.feedback import judge_windows
from guardrail.findings import Finding, Severity, count_findings
from guardrail.io import to_jsonable, write_json

__all__ = ["CHUNK", "DEFAULT_WINDOW", "FOLDER", "MonitorResult", "Row", "WindowResult",
           "exit_code", "iter_windows", "load_reference", "monitor", "read_labels",
           "read_log", "read_records", "read_windows", "reference_distributions"]

FOLDER = "monitoring"
DEFAULT_WINDOW = 300
CHUNK = 2000  # rows read from the source at a time
PARALLEL_ROWS = 50_000  # a log at least this long is parsed by worker processes (workers=None)
_NO_PREDICTION = object()


def _json_loader() -> Callable[[str | bytes], Any]:
    """``orjson.loads`` where orjson is installed (2-3x faster), else ``json.loads``.

    orjson refuses what Python's json writes for non-finite floats (``NaN``); those texts
    are read again by ``json.loads``, so both read the same values.
    """
    try:
        import orjson
    except ImportError:
        return json.loads

    def loads(text: str | bytes) -> Any:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return json.loads(text)

    return loads


_loads = _json_loader()


@dataclasses.dataclass(frozen=True)
class Row:
    """One served record: its id, time (ISO 8601 or ``None``), record and prediction.

    ``prediction`` is ``None`` where the source holds none (computed before profiling);
    ``served`` whether the prediction was shown to the world (``None``: not said).
    """

    id: str
    time: str | None
    record: Any
    prediction: Any = None
    has_prediction: bool = True
    served: bool | None = None


@dataclasses.dataclass
class WindowResult:
    """One judged window, JSON-ready through :meth:`to_dict`.

    Attributes:
        index: 0, 1, ... in reading order.
        key: The day (``2010-03-01``) or ISO week (``2010-W09``) of a ``by`` window, else None.
        start: Time of its first row (or ``None``); ``end``: of its last.
        first_id: Id of its first row; ``last_id``: of its last.
        records: Rows in it.
        features: Per input feature: kind, field, summary, statistics, current distribution.
        predictions: The same for the model's predictions.
        performance: ``{"metric", "value", "labelled", "test", "worse_by"}`` with labels,
            ``{"labelled": n}`` with too few, ``None`` without; with rows that say whether
            they were ``served``, also ``"split_metric"``, ``"served"`` and ``"holdout"``: the
            error on each group (:func:`_served_performance`).
        findings: What the rules found in it.
        outcomes: ``(id, prediction, label, served)`` of its labelled rows that say whether
            they were served (for :class:`~guardrail.feedback.FeedbackMonitor`; not written).

    """

    index: int
    key: str | None
    start: str | None
    end: str | None
    first_id: str | None
    last_id: str | None
    records: int
    features: dict[str, Any]
    predictions: dict[str, Any]
    performance: dict[str, Any] | None
    findings: list[Finding]
    outcomes: list[tuple[str, Any, Any, bool]] = dataclasses.field(default_factory=list)

    def info(self) -> dict[str, Any]:
        """What identifies the window (copied into its findings' evidence)."""
        return {"index": self.index, "key": self.key, "start": self.start, "end": self.end,
                "first_id": self.first_id, "last_id": self.last_id, "records": self.records}

    def headline(self) -> dict[str, Any]:
        """The window in one small dict: its info, finding counts, most drifted feature."""
        counts = count_findings(self.findings)["by_severity"]
        drifted = sorted({f.where for f in self.findings if f.where and
                          f.check.startswith(("drift.", "skew."))})
        return {**self.info(), "findings": counts, "drifted": drifted,
                "performance": self.performance}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (one line of ``windows.jsonl``)."""
        return {**self.info(), "features": self.features, "predictions": self.predictions,
                "performance": self.performance,
                "findings": [f.to_dict() for f in self.findings]}


@dataclasses.dataclass
class MonitorResult:
    """What :func:`monitor` found: every window's headline, every finding, where it wrote.

    Attributes:
        run_dir: The run monitored.
        source: ``{"kind": "log" | "records", "path": ...}``.
        windowing: ``{"window": N}`` or ``{"by": "day" | "week"}``.
        thresholds: The :class:`DriftThresholds` used, as a dict.
        windows: :meth:`WindowResult.headline` of each window (the full windows are in
            ``windows.jsonl``: :func:`read_windows`).
        findings: Every finding, window by window.
        folder: The output folder (``None`` when not written).
        feedback: With labels: :meth:`~guardrail.feedback.FeedbackMonitor.summary` of the
            rows that say whether they were served, or ``{"skipped": why}``; else ``None``.

    """

    run_dir: str
    source: dict[str, Any]
    windowing: dict[str, Any]
    thresholds: dict[str, Any]
    windows: list[dict[str, Any]]
    findings: list[Finding]
    records: int = 0
    folder: str | None = None
    feedback: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        """0 nothing, 1 warnings, 2 errors."""
        return exit_code(self.findings)

    def to_dict(self) -> dict[str, Any]:
        """``monitor.json``."""
        return {"run_dir": self.run_dir, "source": self.source, "windowing": self.windowing,
                "records": self.records, "thresholds": self.thresholds,
                "status": {0: "ok", 1: "warnings", 2: "errors"}[self.exit_code],
                "exit_code": self.exit_code, "counts": count_findings(self.findings),
                "windows": self.windows, "folder": self.folder, "feedback": self.feedback,
                "findings": [f.to_dict() for f in self.findings]}


def exit_code(findings: Sequence[Finding]) -> int:
    """0 when nothing is wrong, 1 for warnings, 2 for errors (info does not count).

    Example:
        >>> exit_code([]), exit_code([Finding("a.b", "warning", "x")])
        (0, 1)

    """
    severities = {f.severity for f in findings}
    return 2 if Severity.ERROR in severities else 1 if Severity.WARNING in severities else 0


# ------------------------------------------------------------------------------ reference
def load_reference(run_dir: str | Path) -> dict[str, Any]:
    """``RUN_DIR/export/reference.json``, checked to hold the drift profile monitoring needs.

    Raises:
        ConfigError: The run has no export, or one written before the drift profile existed.
    """
    path = Path(run_dir) / "export" / "reference.json"
    if not path.is_file():
        raise ConfigError(
            f"{run_dir} has no export/reference.json: monitoring compares serving traffic with "
            f"the training reference `guardrail export` writes. Run `guardrail export {run_dir}` "
            "first.")
    try:
        reference = json.loads(path.read_text())
    except ValueError as err:
        raise ConfigError(f"{path} is not valid JSON ({err}); run `guardrail export "
                          f"{run_dir}` again.") from None
    drift = reference.get("drift") if isinstance(reference, dict) else None
    if not isinstance(drift, dict) or drift.get("version") != PROFILE_VERSION:
        raise ConfigError(
            f"{path} was written by an older `guardrail export` and holds no drift profile "
            "(training-decile bins, quantile sketch, category counts). Re-run `guardrail "
            f"export {run_dir}`: it rewrites export/ from the same checkpoint.")
    drift["performance"] = reference.get("performance")
    return drift


def reference_distributions(reference: Mapping[str, Any]) -> dict[str, Any]:
    """The training distributions a window's ``current`` is drawn against, per feature.

    Numeric: ``edges`` (inner decile edges; bins are ``(-inf, e0)``, ``[e0, e1)``, ...,
    ``[e_last, inf)``, then one bin of missing values), ``shares`` of the training values in
    those bins, ``mean``, ``sd``, ``quantiles``. Categorical: ``shares`` of the most frequent
    categories.
    """
    out: dict[str, Any] = {}
    for group, source in (("features", reference["features"]),
                          ("predictions", (reference.get("predictions") or {}).get(
                              "features", {}))):
        out[group] = {}
        for name, ref in source.items():
            total = ref["n"] + ref["missing"]
            if ref["kind"] == "numeric":
                counts = [*list(ref["counts"]), ref["missing"]]
                out[group][name] = {"kind": "numeric", "edges": ref["edges"],
                                    "shares": [c / total if total else 0.0 for c in counts],
                                    **{k: ref.get(k) for k in ("mean", "sd", "quantiles")}}
            else:
                top = sorted(ref["counts"].items(), key=lambda kv: -kv[1])[:20]
                out[group][name] = {"kind": "categorical",
                                    "shares": {k: c / total for k, c in top},
                                    "missing": ref["missing"] / total if total else 0.0}
    return out


# -------------------------------------------------------------------------------- sources
def read_log(path: str | Path, chunk: int = CHUNK) -> Iterator[list[Row]]:
    """Rows of a prediction log, oldest first, ``chunk`` at a time (a cursor: bounded memory).

    Raises:
        ConfigError: No such file, or not a prediction log of ``guardrail serve``.
    """
    for raw in _read_log_raw(path, chunk):
        yield _parse_log_rows(raw)


def _read_log_raw(path: str | Path, chunk: int = CHUNK) -> Iterator[list[tuple[Any, ...]]]:
    """The log's ``(id, time, record, prediction)`` rows as stored (JSON text), in chunks."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"The prediction log {path} does not exist; `guardrail serve` writes "
                          "RUN_DIR/serving/predictions.sqlite (or the path given to its --log).")
    try:  # read-only: monitoring never writes to (or locks out) a live server's log
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        cursor = con.execute("SELECT id, time, record, prediction FROM predictions ORDER BY id")
    except sqlite3.Error as err:
        raise ConfigError(f"{path} is not a prediction log of `guardrail serve` ({err}); give "
                          "the SQLite file it writes, or a JSON-lines file with --records.") \
            from None
    try:
        while True:
            rows = cursor.fetchmany(chunk)
            if not rows:
                return
            yield rows
    finally:
        con.close()


def _log_size(path: str | Path) -> int:
    """About how many rows the log holds (from its ids: instant on any size)."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            low, high = con.execute("SELECT min(id), max(id) FROM predictions").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return 0
    return int(high - low + 1) if low is not None and high is not None else 0


def _parse_log_rows(raw: Sequence[tuple[Any, ...]]) -> list[Row]:
    out = []
    for rid, time, record, prediction in raw:
        try:
            out.append(Row(str(rid), time, _loads(record), _loads(prediction)))
        except (ValueError, TypeError):
            out.append(Row(str(rid), time, None, None))
    return out


def read_records(path: str | Path, chunk: int = CHUNK) -> Iterator[list[Row]]:
    """Rows of a JSON-lines file, ``chunk`` at a time, read line by line.

    Raises:
        ConfigError: No such file, or a line that is not a JSON object (named by number).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"The records file {path} does not exist; write one with `guardrail "
                          "records RUN_DIR --split test > FILE.jsonl`.")
    out: list[Row] = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = _loads(line)
            except ValueError as err:
                raise ConfigError(
                    f"{path}, line {number} is not valid JSON ({err}): --records takes one JSON "
                    "object per line, a raw record or {\"record\": ..., \"prediction\": ...}.") \
                    from None
            if not isinstance(item, dict):
                raise ConfigError(
                    f"{path}, line {number} is {type(item).__name__}, not a JSON object: "
                    "--records takes one record (a JSON object) per line.")
            if "record" in item and isinstance(item["record"], dict):
                served = item.get("served")
                if served is not None and (served.__class__ is not bool and served not in (0, 1)):
                    raise ConfigError(
                        f"{path}, line {number}: \"served\" is {served!r}; give true or false "
                        "(whether the prediction was shown to the world).")
                out.append(Row(str(item.get("id", number)), item.get("time"), item["record"],
                               item.get("prediction"), "prediction" in item,
                               None if served is None else bool(served)))
            else:
                out.append(Row(str(number), None, item, None, False))
            if len(out) >= chunk:
                yield out
                out = []
    if out:
        yield out


def read_labels(path: str | Path) -> dict[str, Any]:
    """Labels by row id: JSON lines (``{"id": 17, "label": 12.3}``) or CSV (``id,label``).

    Raises:
        ConfigError: No such file, or a line without an id and a label.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"The labels file {path} does not exist.")
    labels: dict[str, Any] = {}
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
        if first.strip().lower().replace(" ", "") == "id,label":
            for number, line in enumerate(fh, 2):
                parts = line.strip().split(",")
                if len(parts) != 2:
                    raise ConfigError(f"{path}, line {number}: expected `id,label`, got "
                                      f"{line.strip()[:60]!r}.")
                labels[parts[0]] = _number(parts[1])
            return labels
        for number, line in enumerate([first, *fh], 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                labels[str(item["id"])] = item["label"]
            except (ValueError, KeyError, TypeError):
                raise ConfigError(
                    f"{path}, line {number} is not a JSON object with \"id\" and \"label\" "
                    "(or give a CSV with the header `id,label`); ids are the log's row ids, "
                    "or a records file's line numbers from 1.") from None
    return labels


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


# -------------------------------------------------------------------------------- windows
def iter_windows(run_dir: str | Path, *, log: str | Path | None = None,
                 records: str | Path | None = None, window: int | None = DEFAULT_WINDOW,
                 by: str | None = None, labels: str | Path | Mapping[str, Any] | None = None,
                 thresholds: DriftThresholds | Mapping[str, Any] | None = None,
                 chunk: int = CHUNK, workers: int | None = None) -> Iterator[WindowResult]:
    """Judge the served records window by window, yielding each as it is read.

    Args:
        run_dir: The run (its ``export/reference.json`` is the reference).
        log: A prediction log; default ``RUN_DIR/serving/predictions.sqlite``.
        records: A JSON-lines file instead of a log.
        window: Records per window (the last window may be shorter).
        by: ``"day"`` or ``"week"``: windows by the rows' time instead of by count.
        labels: A labels file (:func:`read_labels`) or a mapping of row id to label.
        thresholds: :class:`DriftThresholds` or the fields to change.
        chunk: Rows read at a time.
        workers: Processes that parse and encode a log's chunks while this one judges the
            windows (0: none). ``None``: two where the machine has two cores, the log
            holds at least :data:`PARALLEL_ROWS` rows and the process can fork (one thread, a
            POSIX system). The windows are the same either way.

    Raises:
        ConfigError: No export, a missing or malformed source, a bad window setting.
    """
    limits = DriftThresholds.coerce(thresholds)
    reference = load_reference(run_dir)
    if by is not None and by not in ("day", "week"):
        raise ConfigError(f"--by {by!r}: windows are by `day` or `week`.")
    if by is None and (window is None or window < 1):
        raise ConfigError(f"--window {window}: give a number of records, 1 or more.")
    if log is not None and records is not None:
        raise ConfigError("Give --log or --records, not both.")
    plan = [Feature.from_dict(d) for d in reference["plan"]]
    truth = read_labels(labels) if isinstance(labels, str | Path) else labels
    encoder = WindowAccumulator(plan, reference)
    if records is not None:
        chunks = _record_chunks(read_records(records, chunk),
                                _Predictor(Path(run_dir) / "export"), encoder)
    else:
        path = Path(log) if log is not None else _default_log(run_dir)
        raw = _read_log_raw(path, chunk)
        if workers is None:
            workers = min(2, os.cpu_count() or 1) if _forkable() and \
                _log_size(path) >= PARALLEL_ROWS else 0
        chunks = _parallel_chunks(raw, plan, reference, workers) if workers > 0 else (
            _encode_log_rows(rows, encoder) for rows in raw)
    tops = {(group, feature.name): _top_categories(ref)
            for feature, ref, group in encoder.parts if feature.kind == "categorical"}
    state = _Open(encoder, tops)
    index = 0
    days: dict[str, str] = {}
    for part in chunks:
        size = part.encoded.rows
        keys = _keys(part, by, days) if by is not None else None
        start = 0
        while start < size:
            if keys is None:
                end = start + min(size - start, window - state.records)  # type: ignore[operator]
            else:
                key = keys[start]
                if state.records and key != state.key:
                    yield state.close(index, reference, truth is not None, limits)
                    index += 1
                    state = _Open(encoder, tops)
                end = start
                while end < size and keys[end] == key:
                    end += 1
                state.key = key
            state.add(part, start, end, truth)
            start = end
            if by is None and state.records >= window:  # type: ignore[operator]
                yield state.close(index, reference, truth is not None, limits)
                index += 1
                state = _Open(encoder, tops)
    if state.records:
        yield state.close(index, reference, truth is not None, limits)


@dataclasses.dataclass
class _Chunk:
    """Rows read together: their ids, times, predictions, served flags, encoded features."""

    ids: list[str]
    times: list[str | None]
    predictions: list[Any]
    encoded: EncodedChunk
    served: list[bool | None]


def _record_chunks(source: Iterator[list[Row]], predictor: _Predictor,
                   encoder: WindowAccumulator) -> Iterator[_Chunk]:
    for rows in source:
        predictor.fill(rows)
        predictions = [r.prediction for r in rows]
        yield _Chunk([r.id for r in rows], [r.time for r in rows], predictions,
                     encoder.encode([r.record for r in rows], predictions),
                     [r.served for r in rows])


def _encode_log_rows(raw: Sequence[tuple[Any, ...]], encoder: WindowAccumulator) -> _Chunk:
    rows = _parse_log_rows(raw)
    predictions = [r.prediction for r in rows]
    return _Chunk([r.id for r in rows], [r.time for r in rows], predictions,
                  encoder.encode([r.record for r in rows], predictions), [None] * len(rows))


_WORKER_ENCODER: WindowAccumulator | None = None


def _start_worker(plan: list[Feature], reference: Mapping[str, Any]) -> None:
    global _WORKER_ENCODER  # one encoder per worker process
    _WORKER_ENCODER = WindowAccumulator(plan, reference)


def _encode_in_worker(raw: Sequence[tuple[Any, ...]]) -> _Chunk:
    assert _WORKER_ENCODER is not None
    return _encode_log_rows(raw, _WORKER_ENCODER)


def _parallel_chunks(raw: Iterator[list[tuple[Any, ...]]], plan: list[Feature],
                     reference: Mapping[str, Any], workers: int) -> Iterator[_Chunk]:
    """The log's chunks parsed and encoded by ``workers`` processes, in the log's order.

    At most ``2 * workers + 1`` chunks are in flight: memory stays bounded by the chunk size.
    Workers are forked where that is safe (:func:`_forkable`), else spawned -- which, like any
    spawned process, re-imports the calling script: guard it with ``if __name__ ==
    "__main__":``.
    """
    context = multiprocessing.get_context("fork" if _forkable() else "spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(plan, reference)) as pool:
        pending: collections.deque[Future[_Chunk]] = collections.deque()
        try:
            for rows in raw:
                pending.append(pool.submit(_encode_in_worker, rows))
                if len(pending) > 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _forkable() -> bool:
    """Whether worker processes can be forked: a POSIX platform, and one thread here.

    A fork copies only the calling thread: a server's threads would be lost in the workers.
    """
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def _keys(part: _Chunk, by: str, days: dict[str, str]) -> list[str]:
    """The day or week of each row of the chunk (dates parsed once per distinct day)."""
    out = []
    for rid, time in zip(part.ids, part.times, strict=True):
        if not time:
            raise ConfigError(f"--by {by} needs each row's time; row {rid} has none (a "
                              "records file gives it as {\"record\": ..., \"time\": "
                              "\"2026-01-01T12:00:00Z\"}); use --window N instead.")
        text = str(time)
        key = days.get(text[:10])
        if key is None:
            key = days[text[:10]] = _key(Row(rid, text, None), by)
        out.append(key)
    return out


def _default_log(run_dir: str | Path) -> Path:
    from guardrail.serving import LOG_FILE

    return Path(run_dir) / LOG_FILE


def _key(row: Row, by: str) -> str:
    if not row.time:
        raise ConfigError(f"--by {by} needs each row's time; row {row.id} has none (a records "
                          "file gives it as {\"record\": ..., \"time\": \"2026-01-01T12:00:00Z\"}"
                          "); use --window N instead.")
    try:
        day = dt.date.fromisoformat(str(row.time)[:10])
    except ValueError:
        raise ConfigError(f"Row {row.id} has the time {row.time!r}, not ISO 8601 "
                          "(2026-01-01T12:00:00Z).") from None
    if by == "day":
        return day.isoformat()
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


class _Predictor:
    """Predictions of rows that came without (a records file), by the exported program."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.model: Any = None

    def fill(self, rows: list[Row]) -> None:
        todo = [i for i, r in enumerate(rows) if not r.has_prediction]
        if not todo:
            return
        if self.model is None:
            from guardrail.serving import ServedModel

            self.model = ServedModel(self.folder)
        batch = [rows[i].record for i in todo]
        errors, _ = self.model.check(batch)
        bad = {e["record"] for e in errors}
        good = [j for j in range(len(batch)) if j not in bad]
        answers: dict[int, Any] = {}
        for start in range(0, len(good), 512):
            part = good[start:start + 512]
            for j, p in zip(part, self.model.predict([batch[j] for j in part]), strict=True):
                answers[j] = p
        for j, i in enumerate(todo):
            rows[i] = dataclasses.replace(rows[i], prediction=answers.get(j), has_prediction=True)


class _Open:
    """The window being read: its accumulator and bounds."""

    def __init__(self, template: WindowAccumulator,
                 tops: Mapping[tuple[str, str], list[str]] | None = None) -> None:
        self.acc = template.empty()
        self.tops = tops or {}
        self.records = 0
        self.key: str | None = None
        self.first: tuple[str, str | None] | None = None  # (id, time)
        self.last: tuple[str, str | None] | None = None
        self.outcomes: list[tuple[str, Any, Any, bool]] = []  # labelled rows with a served flag

    def add(self, part: _Chunk, start: int, end: int, truth: Mapping[str, Any] | None) -> None:
        if end <= start:
            return
        self.first = self.first or (part.ids[start], part.times[start])
        self.last = (part.ids[end - 1], part.times[end - 1])
        self.records += end - start
        self.acc.add_encoded(part.encoded, start, end)
        if truth is not None:
            ids, predictions = part.ids[start:end], part.predictions[start:end]
            labels = [truth.get(i) for i in ids]
            self.acc.pairs.extend((p, y) for p, y in zip(predictions, labels, strict=True)
                                  if y is not None)
            self.outcomes.extend(
                (i, p, y, s) for i, p, y, s in zip(ids, predictions, labels,
                                                    part.served[start:end], strict=True)
                if y is not None and s is not None)

    def close(self, index: int, reference: Mapping[str, Any], labelled: bool,
              limits: DriftThresholds) -> WindowResult:
        assert self.first is not None and self.last is not None
        result = WindowResult(index, self.key, self.first[1], self.last[1], self.first[0],
                              self.last[0], self.records, {}, {}, None, [], self.outcomes)
        info = result.info()
        profile = self.acc.profile()
        computed = self.acc.statistics(profile)
        for group in ("features", "predictions"):
            refs = reference["features"] if group == "features" else (
                reference.get("predictions") or {}).get("features", {})
            for name, cur in profile[group].items():
                getattr(result, group)[name] = _describe(
                    refs[name], cur, computed.get((group, name)), self.tops.get((group, name)))
        thin = thin_window_finding(info, limits)
        result.findings = [thin] if thin else drift_findings(reference, profile, info, limits,
                                                             computed)
        if labelled:
            perf, found = performance_findings(reference.get("performance"), profile["pairs"],
                                               info, limits)
            result.performance = perf
            if not thin:
                result.findings += found
            split = _served_performance(self.outcomes, limits)
            if split and perf is not None:
                perf.update(split)
        return result


def _served_performance(outcomes: Sequence[tuple[str, Any, Any, bool]],
                        limits: DriftThresholds) -> dict[str, Any] | None:
    """The window's error on served and on held-out (un-served) rows, each well labelled.

    ``{"split_metric", "served", "holdout"}``: the mean absolute error for numeric labels (a
    window's RMSE on a few dozen held-out rows is ruled by its largest errors), the Brier
    score for 0/1 labels; ``None`` unless both groups hold ``limits.min_labels`` labelled
    rows of one kind.

    Example:
        >>> rows = [("1", 1.0, 2.0, True), ("2", 1.0, 1.5, False)] * 50
        >>> _served_performance(rows, DriftThresholds())
        {'split_metric': 'mae', 'served': 1.0, 'holdout': 0.5}

    """
    groups = {key: [(p, y) for _, p, y, s in outcomes if s is flag]
              for key, flag in (("served", True), ("holdout", False))}
    if min(len(g) for g in groups.values()) < limits.min_labels:
        return None
    measured = {key: performance_metric(group) for key, group in groups.items()}
    kinds = {m[0] if m else None for m in measured.values()}
    if kinds == {"brier"}:
        return {"split_metric": "brier", **{k: m[1] for k, m in measured.items() if m}}
    if kinds == {"rmse"}:
        return {"split_metric": "mae", **{
            key: sum(abs(float(p) - float(y)) for p, y in group) / len(group)
            for key, group in groups.items()}}
    return None


def _describe(ref: Mapping[str, Any], cur: Mapping[str, Any], full: Mapping[str, Any] | None,
              top: Sequence[str] | None = None) -> dict[str, Any]:
    """The feature as renderers get it: rounded statistics, current distribution.

    ``full`` is the feature's :func:`numeric_statistics` or :func:`categorical_statistics`
    (``None`` for a window without values of it); ``top`` the reference's 20 most frequent
    categories (computed here when not given).
    """
    base = {"kind": cur["kind"], "field": cur["field"], "summary": cur.get("summary")}
    total = cur["n"] + cur["missing"]
    if cur["kind"] == "numeric":
        s: Mapping[str, Any] = full or {}
        stats = {k: _round(s.get(k)) for k in ("psi", "ks", "p_value", "shift_sd")}
        counts = [*list(cur["counts"]), cur["missing"]]
        current = {"n": cur["n"], "missing": cur["missing"], "mean": _round(cur["mean"]),
                   "sd": _round(cur["sd"]),
                   "shares": [_round(c / total) if total else 0.0 for c in counts]}
    else:
        s = full or {"unseen": {}}
        stats = {"js": _round(s.get("js")), "linf": _round(s.get("linf")),
                 "p_value": _round(s.get("p_value")),
                 "unseen_share": _round(s["unseen"].get("share"))}
        known = ref["counts"]
        top = top if top is not None else _top_categories(ref)
        shares = {k: _round(cur["counts"].get(k, 0) / total) if total else 0.0 for k in top}
        unseen = sum(c for k, c in cur["counts"].items() if k not in known)
        current = {"n": cur["n"], "missing": cur["missing"], "shares": shares,
                   "unseen": _round(unseen / total) if total else 0.0}
    return {**base, "statistics": stats, "current": current}


def _top_categories(ref: Mapping[str, Any]) -> list[str]:
    known = ref["counts"]
    return sorted(known, key=lambda k: -known[k])[:20]


def _round(value: Any, digits: int = 5) -> Any:
    return float(f"{value:.{digits}g}") if isinstance(value, float) else value


# ---------------------------------------------------------------------------------- runs
def monitor(run_dir: str | Path, *, log: str | Path | None = None,
            records: str | Path | None = None, window: int | None = DEFAULT_WINDOW,
            by: str | None = None, labels: str | Path | Mapping[str, Any] | None = None,
            thresholds: DriftThresholds | Mapping[str, Any] | None = None,
            write: bool = True, chunk: int = CHUNK, workers: int | None = None
            ) -> MonitorResult:
    """Judge every window of the source and write ``RUN_DIR/monitoring/<timestamp>/``.

    The arguments are :func:`iter_windows`'s; ``write=False`` writes nothing. Windows are
    written to ``windows.jsonl`` as they are judged, so memory holds one window's profile and
    each window's headline (and, with labels, what the feedback checks need: the module's
    docstring says what).

    Returns:
        The :class:`MonitorResult` (also ``monitor.json``; findings in ``findings.jsonl``).

    Raises:
        ConfigError: As :func:`iter_windows`.
    """
    limits = DriftThresholds.coerce(thresholds)
    source = {"kind": "records", "path": str(records)} if records is not None else {
        "kind": "log", "path": str(log if log is not None else _default_log(run_dir))}
    windowing = {"by": by} if by is not None else {"window": window}
    result = MonitorResult(str(run_dir), source, windowing, dataclasses.asdict(limits), [], [])
    windows = iter_windows(run_dir, log=log, records=records, window=window, by=by,
                           labels=labels, thresholds=limits, chunk=chunk, workers=workers)
    folder = None
    handle = None
    outcomes: list[tuple[str, Any, Any, bool]] = []
    metrics: list[tuple[int, dict[str, Any]]] = []
    try:
        for item in windows:
            if write and handle is None:
                stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d_%H-%M-%S-%f")
                folder = Path(run_dir) / FOLDER / stamp
                folder.mkdir(parents=True, exist_ok=True)
                handle = open(folder / "windows.jsonl.tmp", "w", encoding="utf-8")  # noqa: SIM115
            if handle is not None:
                handle.write(json.dumps(to_jsonable(item.to_dict())) + "\n")
            result.windows.append(item.headline())
            result.findings.extend(item.findings)
            result.records += item.records
            outcomes.extend(item.outcomes)
            if item.performance and "split_metric" in item.performance:
                metrics.append((item.index, item.performance))
    finally:
        if handle is not None:
            handle.close()
    if labels is not None:
        result.feedback, found = judge_windows(outcomes, metrics, limits.min_labels)
        result.findings.extend(found)
    if write:
        if folder is None:  # an empty source: still say so in files
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d_%H-%M-%S-%f")
            folder = Path(run_dir) / FOLDER / stamp
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "windows.jsonl.tmp").write_text("")
        (folder / "windows.jsonl.tmp").replace(folder / "windows.jsonl")
        result.folder = str(folder)
        from guardrail.io import write_jsonl

        write_jsonl(folder / "findings.jsonl", [f.to_dict() for f in result.findings])
        reference = load_reference(run_dir)
        payload = {**result.to_dict(), "reference": reference_distributions(reference)}
        write_json(folder / "monitor.json", payload)
        from guardrail.report.monitor import write_monitor_html

        write_monitor_html(folder, payload)  # the page, streaming windows.jsonl
    return result


def read_windows(folder: str | Path) -> Iterator[dict[str, Any]]:
    """The windows of a monitoring folder (``windows.jsonl``), one dict at a time."""
    with open(Path(folder) / "windows.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
