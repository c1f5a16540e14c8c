"""``filterwatch worker``: run the Faust worker on the configured store until stopped."""

from __future__ import annotations

import logging

from monitor.config import Config
from monitor.storage import Store

__all__ = ["run_worker"]


def run_worker(config: Config, loglevel: str = "warning") -> None:
    """Open the store (embedded stores are held until shutdown), then run the agents."""
    import faust

    from streams.agents import build_worker_app
    from streams.topics import create_topics

    create_topics(config.kafka)
    store = Store.open(config.store)
    try:
        store.init_schema()
        app, _ = build_worker_app(config, store)
        logging.getLogger("apprise").setLevel(logging.CRITICAL + 1)
        worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
        worker.execute_from_commandline()
    finally:
        store.close()  # release the embedded store for the next process
