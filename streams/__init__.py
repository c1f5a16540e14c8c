"""Faust adapters (the Kafka side): thin agents around the stages in ``monitor/``.

- :mod:`streams.app`: builds the Faust ``App`` from filterwatch's config.
- :mod:`streams.topics`: topic names and their creation (kafka-python admin).
- :mod:`streams.agents`: the ``ingest`` and ``detect`` agents, /health and /metrics.
- :mod:`streams.produce`: ``--to-kafka`` producing, keyed by request id.
- :mod:`streams.worker`: ``filterwatch worker``.
"""

__all__: list[str] = []
