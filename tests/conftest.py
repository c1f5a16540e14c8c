"""Shared fixtures.

chDB allows one open store per process, so the whole session shares one embedded store
and each test gets a database of its own in it.

The streaming and reliability tests share one real Apache Kafka broker. With
``KAFKA_BOOTSTRAP`` set that broker is used; otherwise the repo's single-node KRaft
broker (``scripts/kafka-local``) is started on a test port and stopped at the end. A
broker that cannot start fails the tests; it never skips them.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from monitor.config import Config, StoreConfig
from monitor.storage import Store

_counter = itertools.count()


@pytest.fixture(scope="session")
def chdb_root():
    root = tempfile.mkdtemp(prefix="fw-test-store-")
    store = Store.open(StoreConfig(path=root, database="fw_bootstrap"))
    yield store
    store.close()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def store(chdb_root, request):
    name = f"t{next(_counter)}_{os.getpid()}"
    s = chdb_root.with_database(name)
    s.init_schema()
    yield s
    s.command(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture
def config(store) -> Config:
    return Config(store=store.config)


ROOT = Path(__file__).resolve().parents[1]
TEST_PORT = os.environ.get("FILTERWATCH_TEST_KAFKA_PORT", "29092")


class LocalBroker:
    """The test broker's process: started once, stoppable mid-test (broker outages)."""

    def __init__(self, port: str):
        self.port = port
        self.bootstrap = f"127.0.0.1:{port}"
        self.env = {**os.environ, "KAFKA_PORT": port, "KAFKA_CONTROLLER_PORT": str(int(port) + 1)}
        self.script = str(ROOT / "scripts" / "kafka-local")

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.script, *args], env=self.env, capture_output=True, text=True, timeout=900
        )

    def start(self) -> None:
        p = self._run("start")
        if p.returncode != 0:
            pytest.fail(f"the Kafka broker could not start:\n{p.stdout}\n{p.stderr}", pytrace=False)

    def stop(self, wipe: bool = False) -> None:
        self._run("stop", *(["--wipe"] if wipe else []))


@pytest.fixture(scope="session")
def kafka_broker():
    """The local broker (None when ``KAFKA_BOOTSTRAP`` names one we do not control)."""
    if os.environ.get("KAFKA_BOOTSTRAP"):
        yield None
        return
    broker = LocalBroker(TEST_PORT)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop(wipe=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker):
    return kafka_broker.bootstrap if kafka_broker else os.environ["KAFKA_BOOTSTRAP"]


@pytest.fixture
def kafka_env(kafka_bootstrap, tmp_path):
    """Unique topics, app id and ports for one test."""
    from tests.streaming.workers import KafkaTestEnv

    env = KafkaTestEnv(kafka_bootstrap, tmp_path, uuid.uuid4().hex[:8])
    yield env
    env.close()
