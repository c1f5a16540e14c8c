"""Worker processes for the streaming tests: start, watch /health, kill, stop, query."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

FW = [sys.executable, "-m", "monitor.cli"]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("FILTERWATCH_")}


class Worker:
    def __init__(self, env: KafkaTestEnv, name: str):
        self.env = env
        self.name = name
        self.store = env.tmp / f"store-{name}"
        self.port = free_port()
        self.config = env.write_config(name, self.store, self.port)
        self.log = env.tmp / f"worker-{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Worker:
        fh = self.log.open("ab")
        self.proc = subprocess.Popen(
            [*FW, "--config", str(self.config), "worker"],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=_env(),
            cwd=self.env.tmp,
        )
        return self

    def health(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
            return r.read().decode()

    def wait(self, cond, timeout: float = 180.0, what: str = "condition") -> dict:
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited: {self.log.read_text()[-3000:]}")
            h = self.health()
            if h is not None:
                last = h
                if cond(h):
                    return h
            time.sleep(0.5)
        raise AssertionError(
            f"worker {self.name}: timed out waiting for {what}; last {last}; "
            f"log: {self.log.read_text()[-2000:]}"
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def sql(self, query: str) -> list[dict]:
        p = subprocess.run(
            [*FW, "--config", str(self.config), "sql", query, "--format", "json"],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=120,
        )
        if p.returncode != 0:
            raise AssertionError(p.stderr)
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


class KafkaTestEnv:
    def __init__(self, bootstrap: str, tmp: Path, tag: str, partitions: int = 4):
        self.bootstrap = bootstrap
        self.tmp = tmp
        self.tag = tag
        self.partitions = partitions
        self.prefix = f"t{tag}-"
        self.app_id = f"fw-test-{tag}"
        self.workers: list[Worker] = []
        self.procs: list[subprocess.Popen] = []
        self.kafka_overrides: dict = {}  # e.g. batch_max for a benchmark

    def kafka_section(self, port: int | None = None) -> dict:
        return {
            "bootstrap": self.bootstrap,
            "app_id": self.app_id,
            "topic_prefix": self.prefix,
            "partitions": self.partitions,
            "agg_partitions": self.partitions,
            "web_port": port or free_port(),
            "session_timeout_s": 8.0,
            "batch_within_s": 0.5,
            "idle_s": 20.0,
            **self.kafka_overrides,
        }

    def write_config(
        self,
        name: str,
        store: Path,
        port: int,
        notify: list | None = None,
        alerts: dict | None = None,
    ) -> Path:
        cfg = {
            "store": {"path": str(store)},
            "kafka": self.kafka_section(port),
            "ingest": {"max_event_bytes": 8192},
        }
        if notify:
            cfg["notify"] = notify
        if alerts:
            cfg["alerts"] = alerts
        p = self.tmp / f"fw-{name}.yaml"
        p.write_text(yaml.safe_dump(cfg))
        p.chmod(0o600)  # it may hold notification URLs: secrets (see monitor/secrets.py)
        return p

    def worker(self, name: str) -> Worker:
        w = Worker(self, name)
        self.workers.append(w)
        return w

    def producer_config(self) -> Path:
        return self.write_config("producer", self.tmp / "unused-store", free_port())

    def simulate(
        self,
        scenario: str,
        rate: float,
        duration: float,
        onset: float,
        seed: int = 7,
        send_rate: float | None = None,
        lines_per_message: int = 1,
    ):
        """Produce a simulated stream into the topics; returns its ground truth.

        With ``send_rate`` the producer runs in the background at that many events per
        second of wall time and (truth, process) is returned.
        """
        out = self.tmp / f"{scenario}.jsonl"
        subprocess.run(
            [
                *FW,
                "simulate",
                "--scenario",
                scenario,
                "--rate",
                str(rate),
                "--duration",
                str(duration),
                "--onset",
                str(onset),
                "--seed",
                str(seed),
                "--out",
                str(out),
                "--quiet",
            ],
            check=True,
            env=_env(),
            timeout=300,
        )
        truth = json.loads(out.with_name(f"{scenario}.truth.json").read_text())
        cmd = [
            *FW,
            "--config",
            str(self.producer_config()),
            "replay",
            str(out),
            "--to-kafka",
            "--lines-per-message",
            str(lines_per_message),
            "--quiet",
        ]
        if send_rate:
            proc = subprocess.Popen(
                [*cmd, "--rate", str(send_rate)],
                env=_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.procs.append(proc)
            return truth, proc
        subprocess.run(cmd, check=True, env=_env(), timeout=600, capture_output=True)
        return truth

    def close(self) -> None:
        """Stop whatever a failed test left running, so stores and ports are released."""
        for w in self.workers:
            w.stop()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)


def settled(
    worker, keys=("verdicts", "feedback", "skipped", "rejected"), quiet_s=6.0, timeout=240.0
) -> dict:
    """Wait until the worker has no lag and its counters stopped moving."""
    deadline = time.time() + timeout
    last, since = None, time.time()
    while time.time() < deadline:
        h = worker.wait(lambda h: True, timeout=30)
        snap = (*[h[k] for k in keys], h["windows"])
        if snap != last:
            last, since = snap, time.time()
        elif h["lag"] == 0 and time.time() - since >= quiet_s:
            return h
        time.sleep(0.5)
    raise AssertionError(f"worker did not settle: {last}")


def totals(worker) -> dict:
    db = "filterwatch"
    (row,) = worker.sql(
        f"SELECT (SELECT sum(requests) FROM {db}.traffic_1m) AS rollup_requests, "
        f"(SELECT count() FROM {db}.verdicts) AS verdicts, "
        f"(SELECT count() FROM {db}.feedback) AS feedback, "
        f"(SELECT count() FROM {db}.alerts) AS alerts"
    )
    return {k: int(v or 0) for k, v in row.items()}
