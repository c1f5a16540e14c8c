import pytest

from monitor.events import Verdict
from monitor.storage import dedup_token

pytestmark = pytest.mark.integration


def verdicts(n, start=1_796_000_000.0):
    return [
        Verdict(
            f"r{i}",
            start + i * 0.01,
            f"t{i % 3}",
            "https://a.org/",
            "a.org",
            "v1",
            {"adult": 0.9, "health": 0.3},
            ("adult",),
            "block" if i % 2 else "allow",
            "strict",
            30.0,
            "prod",
        )
        for i in range(n)
    ]


def totals(store):
    db = store.db
    return (
        store.scalar(f"SELECT count() FROM {db}.verdicts"),
        store.scalar(f"SELECT sum(requests) FROM {db}.traffic_1m"),
        store.scalar(f"SELECT sum(scored) FROM {db}.category_1m"),
    )


def test_schema_is_idempotent(store):
    store.insert_verdicts(verdicts(10), "before-reinit")
    store.init_schema()  # again, on a populated database: nothing dropped or recreated
    assert totals(store) == (10, 10, 20)


def test_retried_batch_is_not_double_counted(store):
    batch = verdicts(1000)
    tok = dedup_token("test", "verdicts", 0, len(batch))
    store.insert_verdicts(batch, tok)
    store.insert_verdicts(batch, tok)  # at-least-once delivery: the same batch again
    assert totals(store) == (1000, 1000, 2000)


def test_the_token_identifies_the_batch(store):
    # The control for the test above: two distinct tokens are two batches, both counted,
    # so it is the token (not luck) that drops the retry.
    batch = verdicts(100)
    store.insert_verdicts(batch, "batch-a")
    store.insert_verdicts(batch, "batch-b")
    assert totals(store)[1] == 200


def test_queries_bind_parameters(store):
    store.insert_verdicts(verdicts(10), "t1")
    hostile = "x' OR 1=1 --"
    assert (
        store.scalar(
            f"SELECT count() FROM {store.db}.verdicts WHERE tenant_id = {{t:String}}",
            {"t": hostile},
        )
        == 0
    )
    assert (
        store.scalar(
            f"SELECT count() FROM {store.db}.verdicts WHERE tenant_id = {{t:String}}", {"t": "t1"}
        )
        == 3
    )


def test_store_persists_across_reopen(tmp_path):
    import subprocess
    import sys

    code = (
        "from monitor.config import StoreConfig; from monitor.storage import Store;"
        "from tests.integration.test_storage import verdicts;"
        f"s=Store.open(StoreConfig(path={str(tmp_path)!r})); s.init_schema();"
        "s.insert_verdicts(verdicts(5), 'x'); s.close()"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    code2 = (
        "from monitor.config import StoreConfig; from monitor.storage import Store;"
        f"s=Store.open(StoreConfig(path={str(tmp_path)!r}));"
        "print(s.scalar('SELECT count() FROM filterwatch.verdicts'))"
    )
    out = subprocess.run([sys.executable, "-c", code2], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "5"
