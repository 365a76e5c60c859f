"""``guardrail serve RUN_DIR``: the exported model behind HTTP, refusing what it was not trained on.

Built on LitServe (Lightning's server: FastAPI and uvicorn underneath, the model in a worker
process of its own). :class:`ServedModel` is the whole serving path, usable in-process too:
the export's program, its preprocessor and its contract, loaded from ``RUN_DIR/export/`` after
the program's SHA-256 is checked. Every record is checked against the contract before the
model sees it (:func:`guardrail.checks.contract.check_records`): a missing or unknown field,
a wrong type, a non-finite number or a malformed sequence answers ``422`` with every problem
of every record at once; a category never seen in training or a number far outside the
training range is answered, with a warning naming the field (``strict``: refused instead).

Routes: ``POST /predict`` with ``{"records": [...]}`` answers ``{"predictions": [...],
"warnings": [...], "model_id": ...}``; ``GET /health``; ``GET /contract``. Bodies over
``max_body`` bytes get ``413``; a body that is not a JSON object with a ``records`` list gets
``422``; nothing a client sends gives a ``500``.

Every answered record is appended to the :class:`PredictionLog` (SQLite in WAL mode) by a
writer thread, so a slow or full disk never blocks or fails a request: it degrades to a
logged warning.

Example:
    >>> log = PredictionLog(":memory:")
    >>> log.append("m1", [{"x": 1.0}], [2.0], [[]])
    >>> log.close()
    >>> log.written
    1

"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from guardrail.errors import ConfigError

LOG = logging.getLogger("guardrail.serve")
MAX_BODY = 10 * 1024 * 1024  # bytes: 64 tabular records are ~100 KB
MAX_RECORDS = 4096  # the exported program's largest batch
LOG_FILE = Path("serving") / "predictions.sqlite"
SCHEMA = """CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    model_id TEXT NOT NULL,
    record TEXT NOT NULL,
    prediction TEXT NOT NULL,
    warnings TEXT NOT NULL
)"""


class ServedModel:
    """The serving path of an export: contract check, preprocessor, program.

    Args:
        folder: ``RUN_DIR/export`` (what ``guardrail export`` wrote).
        strict: Refuse unseen categories and far-out numbers instead of warning.

    Raises:
        DataError: No export there, or its program changed since export.
    """

    def __init__(self, folder: str | Path, strict: bool = False) -> None:
        from guardrail.checks.contract import compile_contract
        from guardrail.export import MANIFEST, load_program
        from guardrail.preprocess import FILE, load_preprocessor

        folder = Path(folder)
        self.program = load_program(folder)
        self.manifest = json.loads((folder / MANIFEST).read_text())
        self.preprocessor = load_preprocessor(folder / FILE)
        self.contract = json.loads((folder / "contract.json").read_text())
        self.compiled = compile_contract(self.contract)
        self.model_id: str = self.manifest["model_id"]
        self.strict = strict

    def check(self, records: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``(errors, warnings)`` of ``records`` against the contract, as JSON dicts."""
        from guardrail.checks.contract import check_records

        if isinstance(records, list) and len(records) > MAX_RECORDS:
            return [{"record": None, "field": "records", "problem":
                     f"{len(records)} records in one request; at most {MAX_RECORDS}",
                     "severity": "error", "kind": "too_many_records"}], []
        if isinstance(records, list) and not records:
            return [{"record": None, "field": "records", "problem": "no records to predict",
                     "severity": "error", "kind": "empty"}], []
        problems = check_records(self.compiled, records, strict=self.strict)
        errors = [p.to_dict() for p in problems if p.severity == "error"]
        warnings = [p.to_dict() for p in problems if p.severity != "error"]
        return errors, warnings

    def predict(self, records: Sequence[Any]) -> list[Any]:
        """Predictions of records that passed :meth:`check` (one per record)."""
        import torch

        from guardrail.export import first_output

        with torch.no_grad():
            out = first_output(self.program(*self.preprocessor.transform(records)))
        return self.preprocessor.predictions(out)


class PredictionLog:
    """Answered records appended to SQLite (WAL) by a writer thread; never blocks a request.

    Each row: UTC time, the model id, the raw record, the prediction and the contract
    warnings of that record (JSON). Rows of one request are written in one transaction. A
    write that fails (a full disk, a locked or removed file) is dropped with a logged warning;
    :attr:`dropped` counts them.

    Args:
        path: The database file (made with its folder), or ``:memory:``.
        queue_size: Requests held in memory before new ones are dropped (with a warning).
    """

    def __init__(self, path: str | Path, queue_size: int = 10_000) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.written = self.dropped = 0
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(queue_size)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._write, name="prediction-log", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def append(self, model_id: str, records: Sequence[Any], predictions: Sequence[Any],
               warnings: Sequence[Sequence[Any]]) -> None:
        """Queue one request's rows; returns at once."""
        now = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        try:  # serialised by the writer: a request pays only for the queue
            self._queue.put_nowait((now, model_id, records, predictions, warnings))
        except queue.Full:
            self.dropped += len(records)
            LOG.warning("prediction log: %d row(s) dropped, the writer is behind", len(records))

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _write(self) -> None:
        con: sqlite3.Connection | None = None
        try:
            con = sqlite3.connect(self.path, isolation_level=None, timeout=10,
                                  check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA journal_size_limit=67108864")  # the WAL file shrinks to 64 MB
            con.execute(SCHEMA)
        except sqlite3.Error as err:
            LOG.warning("prediction log %s cannot be opened (%s): predictions are served but "
                        "not logged", self.path, err)
            con = None
        self._ready.set()
        while True:
            item = self._queue.get()
            if item is None:
                break
            now, model_id, records, predictions, warnings = item
            if con is None:
                self.dropped += len(records)
                continue
            try:
                rows = [(now, model_id, json.dumps(r), json.dumps(p), json.dumps(list(w)))
                        for r, p, w in zip(records, predictions, warnings, strict=True)]
                with con:  # one transaction per request
                    con.execute("BEGIN")
                    con.executemany("INSERT INTO predictions (time, model_id, record, "
                                    "prediction, warnings) VALUES (?, ?, ?, ?, ?)", rows)
                self.written += len(rows)
            except (sqlite3.Error, TypeError, ValueError) as err:
                self.dropped += len(records)
                LOG.warning("prediction log: %d row(s) not written (%s); serving goes on",
                            len(records), err)
        if con is not None:
            con.close()


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000,
          log_path: str | Path | None = None, strict: bool = False, max_body: int = MAX_BODY,
          workers: int = 1) -> None:
    """Serve ``RUN_DIR/export`` until stopped (SIGINT/SIGTERM)."""
    export_dir = Path(run_dir) / "export"
    if not (export_dir / "export.json").is_file():
        raise ConfigError(f"{run_dir} has no export: run `guardrail export {run_dir}` first "
                          "(it writes the program and tests its parity with training).")
    ServedModel(export_dir, strict=strict)  # fail here, in one paragraph, not in a worker
    try:
        from guardrail.serve_app import build_server  # litserve loads only to serve
    except ImportError as err:
        from guardrail.errors import MissingDependencyError

        raise MissingDependencyError(getattr(err, "name", None) or "litserve",
                                     "`guardrail serve`", "'guardrail-dl[serve]'") from None

    log = Path(run_dir) / LOG_FILE if log_path is None else Path(log_path)
    server = build_server(export_dir, log, strict, max_body, workers)
    server.run(host=host, port=port, generate_client_file=False, log_level="warning",
               num_api_servers=1)
