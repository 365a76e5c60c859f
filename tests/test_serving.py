"""The served model: a real `guardrail serve` process on 127.0.0.1, talked to over HTTP.

The CCF hand-over story on a short CCF run: amounts in cents are warned about, a renamed or
missing field and a string for a number are refused with 422 naming them; no client input
gives a 5xx; the prediction log keeps one row per answered record under concurrent clients and
survives the server being killed. Every request loop is bounded in count and in time.
"""

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import trained_and_exported
from guardrail.serving import PredictionLog, ServedModel

pytestmark = pytest.mark.slow
httpx = pytest.importorskip("httpx")

MONEY = ("funded_amnt", "annual_inc")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run_dir: Path, *args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardrail", "serve", str(run_dir), "--host", "127.0.0.1",
         "--port", str(port), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode()[-3000:])
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop(proc)
    raise RuntimeError("the server did not answer /health within 120 s")


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A short CCF run, exported."""
    return trained_and_exported(tmp_path_factory.mktemp("ccf"), "ccf", 2)


@pytest.fixture(scope="module")
def server(run_dir):
    proc, url = start_server(run_dir)
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def sent(run_dir) -> list[dict]:
    """The test split's first 64 records, as `guardrail records` prints them."""
    out = subprocess.run([sys.executable, "-m", "guardrail", "records", str(run_dir),
                          "--split", "test", "--limit", "64"], check=True,
                         capture_output=True, text=True, timeout=300)
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_served_predictions_equal_the_exported_models(run_dir, server, sent):
    examples = [json.loads(line) for line in
                (run_dir / "export" / "examples.jsonl").read_text().splitlines()]
    assert sent == [e["record"] for e in examples]
    answer = httpx.post(server + "/predict", json={"records": sent}, timeout=30).json()
    assert answer["predictions"] == pytest.approx([e["prediction"] for e in examples],
                                                  rel=1e-6, abs=1e-6)
    assert answer["warnings"] == []
    manifest = json.loads((run_dir / "export" / "export.json").read_text())
    assert manifest["parity"]["passed"] and manifest["parity"]["max_abs_diff"] <= 1e-5


def test_amounts_in_cents_are_warned_about_on_every_record(server, sent):
    cents = [{**r, "funded_amnt": r["funded_amnt"] * 100} for r in sent]
    answer = httpx.post(server + "/predict", json={"records": cents}, timeout=30)
    assert answer.status_code == 200
    warned = {w["record"] for w in answer.json()["warnings"] if w["field"] == "funded_amnt"}
    assert warned == set(range(len(cents)))


def test_renamed_missing_and_wrongly_typed_fields_are_refused_together(server, sent):
    record = sent[0]
    renamed = {("amount" if k == "funded_amnt" else k): v for k, v in record.items()}
    missing = {k: v for k, v in record.items() if k != "annual_inc"}
    typed = {**record, "funded_amnt": "12000"}
    answer = httpx.post(server + "/predict", json={"records": [renamed, missing, typed]},
                        timeout=30)
    assert answer.status_code == 422
    errors = {(e["record"], e["field"], e["kind"]) for e in answer.json()["errors"]}
    assert {(0, "amount", "unknown_field"), (0, "funded_amnt", "missing"),
            (1, "annual_inc", "missing"), (2, "funded_amnt", "wrong_type")} <= errors


def test_contract_and_strict_mode(run_dir, server, sent):
    assert set(httpx.get(server + "/contract", timeout=10).json()["fields"]) >= set(MONEY)
    proc, url = start_server(run_dir, "--strict", "--log", str(run_dir / "strict.sqlite"))
    try:
        cents = [{**sent[0], "funded_amnt": 10**9}]
        answer = httpx.post(url + "/predict", json={"records": cents}, timeout=30)
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["field"] == "funded_amnt"
    finally:
        stop(proc)


def junk(rng: random.Random, record: dict) -> bytes:
    """One malformed, truncated, oversized, deeply nested or wrongly typed body."""
    good = json.dumps({"records": [record]})
    kind = rng.randrange(9)
    if kind == 0:
        return good[:rng.randrange(len(good))].encode()  # truncated
    if kind == 1:
        depth = rng.choice([50, 1000, 100_000])
        return ("[" * depth + "]" * depth).encode()  # deeply nested
    if kind == 2:
        return json.dumps({"records": [{k: rng.choice([None, "x", [], {}, 1e308, -1, True])
                                        for k in record}]}).encode()  # wrongly typed
    if kind == 3:
        return b'{"records": [' + b"1," * 5_500_000 + b"1]}"  # over the 10 MB limit
    if kind == 4:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))  # binary
    if kind == 5:
        return json.dumps({"records": rng.choice([None, 1, "x", {}, [[]], [None]])}).encode()
    if kind == 6:
        return json.dumps({"records": [{**record, "extra": {"a": [1, {"b": None}]}}]}).encode()
    if kind == 7:
        return b'{"records": [{"funded_amnt": NaN, "annual_inc": Infinity}]}'
    return json.dumps({"records": [record] * 5000}).encode()  # more records than allowed


def test_a_thousand_bad_bodies_give_no_5xx_and_health_answers_after(server, sent):
    rng = random.Random(0)
    record = sent[0]
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + 480
    with httpx.Client(base_url=server, timeout=30) as client:
        for _ in range(1000):
            if time.monotonic() > deadline:
                break
            status = client.post("/predict", content=junk(rng, record),
                                 headers={"content-type": "application/json"}).status_code
            statuses[status] = statuses.get(status, 0) + 1
    assert sum(statuses.values()) == 1000, f"only {sum(statuses.values())} sent in time"
    assert not [s for s in statuses if s >= 500], statuses
    assert statuses.get(413, 0) > 0 and statuses.get(422, 0) > 0
    assert httpx.get(server + "/health", timeout=10).status_code == 200


def rows(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT count(*) FROM predictions").fetchone()[0]


def test_the_log_has_one_row_per_answered_record_under_concurrent_clients(run_dir, sent):
    db = run_dir / "concurrent.sqlite"
    proc, url = start_server(run_dir, "--log", str(db))
    answered = [0] * 8

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            for _ in range(200):
                if c.post("/predict", json={"records": [sent[i]]}).status_code == 200:
                    answered[i] += 1

    try:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        deadline = time.monotonic() + 30
        while rows(db) < sum(answered) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sum(answered) == 1600 and rows(db) == 1600
    finally:
        stop(proc)


def test_the_log_survives_the_server_being_killed(run_dir, sent):
    db = run_dir / "killed.sqlite"
    proc, url = start_server(run_dir, "--log", str(db))
    done = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=10) as c:
            for _ in range(2000):  # bounded; the kill ends it first
                if done.is_set():
                    return
                try:
                    c.post("/predict", json={"records": sent[:16]})
                except httpx.HTTPError:
                    return

    thread = threading.Thread(target=client)
    thread.start()
    time.sleep(3)
    stop(proc, signal.SIGKILL)  # mid-run: no clean shutdown
    done.set()
    thread.join(60)
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT count(*) FROM predictions").fetchone()[0] > 0


def test_served_model_and_log_in_process(run_dir, sent, tmp_path):
    model = ServedModel(run_dir / "export")
    errors, _ = model.check([{"funded_amnt": "x"}])
    assert errors and len(model.predict(sent[:2])) == 2
    log = PredictionLog(tmp_path / "log.sqlite")
    log.append(model.model_id, [{"a": 1}, {"a": 2}], [0.1, 0.2], [[], []])
    log.close()
    assert rows(tmp_path / "log.sqlite") == 2 and log.dropped == 0
