"""filterwatch's domain model, config, storage, simulator, replay, in-process pipeline, CLI."""

__all__: list[str] = []
