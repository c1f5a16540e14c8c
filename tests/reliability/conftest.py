"""Scenarios against the real broker and real ClickHouse engine (see tests/conftest.py)."""
