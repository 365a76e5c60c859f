"""How fast ``guardrail monitor`` is: one window of 300 records, and a prediction log of 1M rows.

Usage (an exported EST run, e.g. from scripts/drift_evidence.py's instructions)::

    OMP_NUM_THREADS=1 python scripts/bench_monitor.py /tmp/mon/est --rows 1000000

The log is built synthetically from the run's test records (their served predictions, cycled,
one day per 10,000 rows) in the schema ``guardrail serve`` writes; ``guardrail monitor`` then runs
on it in a child process, timed, with its peak resident memory (``ru_maxrss`` of the child).
A smaller log (``--rows 100000``) shows memory does not grow with the log's length. Each run
reports wall and CPU time (the monitoring process and its worker processes together: on a shared
machine, CPU time is the figure that does not depend on the others' load) and the load average
when it started. ``--keep DIR`` keeps the logs to measure again (an existing log is reused).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from guardrail.rundir import run_datamodule
from guardrail.serving import SCHEMA, ServedModel


def served(run_dir: Path) -> tuple[list[dict], list]:
    records = run_datamodule(run_dir).records("test")
    model = ServedModel(run_dir / "export")
    predictions = []
    for i in range(0, len(records), 512):
        predictions += model.predict(records[i:i + 512])
    return records, predictions


def build_log(path: Path, records: list[dict], predictions: list, rows: int) -> float:
    started = time.perf_counter()
    texts = [(json.dumps(r), json.dumps(p)) for r, p in zip(records, predictions, strict=True)]
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(SCHEMA)
    batch = []
    for i in range(rows):
        record, prediction = texts[i % len(texts)]
        day = 1 + i // 10_000
        stamp = f"2026-{1 + (day - 1) // 28:02d}-{1 + (day - 1) % 28:02d}T12:00:00+00:00"
        batch.append((stamp, "bench", record, prediction, "[]"))
        if len(batch) == 50_000:
            con.executemany("INSERT INTO predictions (time, model_id, record, prediction, "
                            "warnings) VALUES (?, ?, ?, ?, ?)", batch)
            batch = []
    if batch:
        con.executemany("INSERT INTO predictions (time, model_id, record, prediction, warnings) "
                        "VALUES (?, ?, ?, ?, ?)", batch)
    con.commit()
    con.close()
    return time.perf_counter() - started


@dataclasses.dataclass
class Measured:
    """One ``guardrail monitor`` run in a child process."""

    wall: float  # seconds
    cpu: float  # user + system seconds of the process and its worker processes
    rss: float  # peak RSS of the monitoring process, MB
    worker_rss: float  # peak RSS of its largest worker process, MB (0 without workers)
    load: float  # the machine's 1-minute load average when it started
    rc: int

    def row(self, what: str, rows: int) -> str:
        workers = f", worker peak RSS {self.worker_rss:,.0f} MB" if self.worker_rss else ""
        return (f"| {what} on {rows:,} rows (exit {self.rc}) | {self.wall:.1f} s wall, "
                f"{rows / self.wall:,.0f} rows/s, {self.cpu:.1f} s CPU, peak RSS "
                f"{self.rss:,.0f} MB{workers} (load {self.load:.1f}) |")


def child(args: list[str]) -> Measured:
    """``guardrail monitor ARGS`` in a child process: wall and CPU time, peak memory."""
    code = ("import resource, sys, time\nfrom guardrail.cli import main\nt = time.perf_counter()\n"
            f"rc = main({args!r})\nprint('WALL', time.perf_counter() - t, file=sys.stderr)\n"
            "me = resource.getrusage(resource.RUSAGE_SELF)\n"
            "kids = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
            "print('CPU', me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime, "
            "file=sys.stderr)\n"
            "print('RSS', me.ru_maxrss, file=sys.stderr)\n"
            "print('KIDRSS', kids.ru_maxrss, file=sys.stderr)\n"
            "sys.exit(rc)")
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lines = dict(line.split(" ", 1) for line in proc.stderr.splitlines()
                 if line.startswith(("WALL ", "RSS ", "CPU ", "KIDRSS ")))
    if "WALL" not in lines:
        raise RuntimeError(proc.stderr[-3000:])
    return Measured(float(lines["WALL"]), float(lines["CPU"]), int(lines["RSS"]) / 1024,
                    int(lines["KIDRSS"]) / 1024, load, proc.returncode)


def one_window(run_dir: Path, records: list[dict], predictions: list, repeats: int = 5) -> float:
    """Seconds to judge one window of 300 records in-process (best of ``repeats``)."""
    from guardrail.monitoring import monitor

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "window.jsonl"
        path.write_text("".join(json.dumps({"record": r, "prediction": p}) + "\n" for r, p in
                                zip(records[:300], predictions[:300], strict=True)))
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            monitor(run_dir, records=path, window=300, write=False)
            best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--keep", type=Path, default=None, help="folder for the logs")
    parser.add_argument("--workers", type=int, default=None,
                        help="`guardrail monitor --workers` (default: its own choice)")
    args = parser.parse_args(argv)
    records, predictions = served(args.run_dir)
    print("| measurement | value |\n|---|---|")
    print(f"| one window of 300 {args.run_dir.name.upper()} records, in-process (best of 5) | "
          f"{one_window(args.run_dir, records, predictions) * 1000:.0f} ms |")
    folder = args.keep or Path(tempfile.mkdtemp())
    for rows in args.rows:
        log = folder / f"log_{rows}.sqlite"
        if not log.is_file():
            seconds = build_log(log, records, predictions, rows)
            print(f"| build a log of {rows:,} rows ({log.stat().st_size / 1e9:.2f} GB) | "
                  f"{seconds:.1f} s |")
        extra = [] if args.workers is None else ["--workers", str(args.workers)]
        base = ["monitor", str(args.run_dir), "--log", str(log), *extra]
        print(child(base).row("`guardrail monitor --log`, windows of 300", rows))
        print(child([*base, "--by", "day"]).row("`guardrail monitor --log --by day`", rows))
    print(f"\n(python {sys.version.split()[0]}, {os.cpu_count()} cores; CPU: user + system "
          "time of the monitoring process and its workers; RSS: ru_maxrss; load: the 1-minute "
          f"load average at the start; {resource.getpagesize()} B pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
