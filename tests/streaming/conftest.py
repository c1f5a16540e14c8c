"""A real Apache Kafka broker for the streaming tests.

``KAFKA_BOOTSTRAP`` set: use that broker. Otherwise start the repo's single-node KRaft
broker (``scripts/kafka-local``) on a test port and stop it at the end. A broker that
cannot start fails the tests; it never skips them.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEST_PORT = os.environ.get("FILTERWATCH_TEST_KAFKA_PORT", "29092")
TEST_CPORT = str(int(TEST_PORT) + 1)


@pytest.fixture(scope="session")
def kafka_bootstrap():
    if os.environ.get("KAFKA_BOOTSTRAP"):
        yield os.environ["KAFKA_BOOTSTRAP"]
        return
    env = {**os.environ, "KAFKA_PORT": TEST_PORT, "KAFKA_CONTROLLER_PORT": TEST_CPORT}
    script = str(ROOT / "scripts" / "kafka-local")
    p = subprocess.run([script, "start"], env=env, capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        pytest.fail(f"the Kafka broker could not start:\n{p.stdout}\n{p.stderr}", pytrace=False)
    try:
        yield f"127.0.0.1:{TEST_PORT}"
    finally:
        subprocess.run([script, "stop", "--wipe"], env=env, capture_output=True, timeout=120)


@pytest.fixture
def kafka_env(kafka_bootstrap, tmp_path):
    """Unique topics, app id and ports for one test."""
    from tests.streaming.workers import KafkaTestEnv

    env = KafkaTestEnv(kafka_bootstrap, tmp_path, uuid.uuid4().hex[:8])
    yield env
    env.close()
