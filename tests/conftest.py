"""Shared fixtures.

chDB allows one open store per process, so the whole session shares one embedded store
and each test gets a database of its own in it.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile

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
