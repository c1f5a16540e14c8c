"""Faust adapters (the Kafka side): thin agents around the stages in ``monitor/``.

The production shape (Faust app, topics, agents, DLQ topic, checkpointed detector
state) is built on top of the in-process stages; until it lands, the same stages run
in-process through :class:`monitor.pipeline.Pipeline` (``filterwatch demo`` / ``replay``).
"""

__all__: list[str] = []
