"""Serving latency and throughput on loopback: `guardrail serve` against the program in-process.

Usage:
    OMP_NUM_THREADS=1 python scripts/bench_serve.py --recipes est ccf --requests 300

For each recipe: a short training run (`trainer.max_epochs=2`) into a temporary folder (or
`--run-dir` of an existing run per recipe, in order), `guardrail export`, then a `guardrail
serve` process on 127.0.0.1. One client sends `--requests` sequential requests of one record
and of 64 records from the test split (after 20 warm-up requests) and measures each
request's latency; throughput is records answered per second. The same records are then run
in-process through the exported program alone (preprocessor and program, no HTTP, no
checks), and the contract check and the prediction log's enqueue are timed in-process on the
same records: their share of the median request time is what checking and logging cost.
Then ``--clients`` clients (threads, each with its own connection) send the same requests at
once, split between them: records answered per second over the wall time, and the latency
each request saw. Prints two markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import torch

from guardrail.export import first_output
from guardrail.serving import PredictionLog, ServedModel


def train_and_export(recipe: str, folder: Path) -> Path:
    """A short run of ``recipe`` in ``folder``, exported."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "guardrail.train", f"recipe={recipe}",
                    "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
                    "guardrails.callbacks.config_lock.mode=off", f"hydra.run.dir={folder}"],
                   check=True, capture_output=True, timeout=900, env=env)
    subprocess.run([sys.executable, "-m", "guardrail", "export", str(folder)], check=True,
                   capture_output=True, timeout=600, env=env)
    return folder


def start(run_dir: Path, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "guardrail", "serve", str(run_dir),
                             "--host", "127.0.0.1", "--port", str(port), "--log", str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError("the server did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def served(url: str, batches: list[list[dict]], warmup: int = 20) -> list[float]:
    """Latency (s) of each request, after warm-up, one client, sequential."""
    times = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i, records in enumerate(batches[:warmup] + batches):
            start = time.perf_counter()
            response = client.post("/predict", json={"records": records})
            elapsed = time.perf_counter() - start
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
            if i >= warmup:
                times.append(elapsed)
    return times


def concurrently(url: str, batches: list[list[dict]], clients: int) -> tuple[list[float], float]:
    """Latency (s) of each request and the wall time, ``clients`` clients sending at once."""
    def client_run(share: list[list[dict]]) -> list[float]:
        return served(url, share, warmup=0)

    shares = [batches[k::clients] for k in range(clients)]
    served(url, batches[:20], warmup=0)  # warm the server up first
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        times = [t for part in pool.map(client_run, shares) for t in part]
    return times, time.perf_counter() - start


def in_process(model: ServedModel, batches: list[list[dict]]) -> dict[str, list[float]]:
    """Seconds per request of the program alone, of the contract check, of the log's enqueue."""
    out: dict[str, list[float]] = {"program": [], "pipeline": [], "check": [], "log": []}
    with tempfile.TemporaryDirectory() as tmp:
        log = PredictionLog(Path(tmp) / "log.sqlite")
        for records in batches:
            inputs = model.preprocessor.transform(records)
            with torch.no_grad():
                start = time.perf_counter()
                first_output(model.program(*inputs))
                out["program"].append(time.perf_counter() - start)
            start = time.perf_counter()
            predictions = model.predict(records)
            out["pipeline"].append(time.perf_counter() - start)
            start = time.perf_counter()
            model.check(records)
            out["check"].append(time.perf_counter() - start)
            start = time.perf_counter()
            log.append(model.model_id, records, predictions, [[] for _ in records])
            out["log"].append(time.perf_counter() - start)
        log.close()
    return out


def main() -> None:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["est", "ccf"])
    parser.add_argument("--run-dir", nargs="*", default=[], type=Path,
                        help="existing run directories (exported), one per recipe, in order")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    args = parser.parse_args()
    together: list[str] = []
    print("| recipe | records per request | p50 | p99 | records/s (served) | program in-process "
          "(p50) | preprocess + program (p50) | contract check + log enqueue, share of p50 |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for k, recipe in enumerate(args.recipes):
            run_dir = args.run_dir[k] if k < len(args.run_dir) else train_and_export(
                recipe, Path(tmp) / recipe)
            records = [json.loads(line)["record"] for line in
                       (run_dir / "export" / "examples.jsonl").read_text().splitlines()]
            model = ServedModel(run_dir / "export")
            proc, url = start(run_dir, Path(tmp) / f"{recipe}.sqlite")
            try:
                for size in (1, 64):
                    batches = [[records[(i + j) % len(records)] for j in range(size)]
                               for i in range(args.requests)]
                    latency = served(url, batches)
                    local = in_process(model, batches)
                    p50 = statistics.median(latency)
                    overhead = statistics.median(local["check"]) + statistics.median(local["log"])
                    print(f"| {recipe.upper()} | {size} | {p50 * 1e3:.2f} ms "
                          f"| {percentile(latency, 0.99) * 1e3:.2f} ms "
                          f"| {size * len(latency) / sum(latency):,.0f} "
                          f"| {statistics.median(local['program']) * 1e3:.3f} ms "
                          f"| {statistics.median(local['pipeline']) * 1e3:.3f} ms "
                          f"| {overhead * 1e3:.3f} ms ({overhead / p50:.1%}) |", flush=True)
                    latency, wall = concurrently(url, batches, args.clients)
                    together.append(
                        f"| {recipe.upper()} | {size} | {args.clients} "
                        f"| {size * len(latency) / wall:,.0f} "
                        f"| {statistics.median(latency) * 1e3:.2f} ms "
                        f"| {percentile(latency, 0.99) * 1e3:.2f} ms |")
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
    print("\n| recipe | records per request | clients at once | records/s | p50 | p99 |")
    print("|---|---|---|---|---|---|")
    print("\n".join(together))


if __name__ == "__main__":
    main()
