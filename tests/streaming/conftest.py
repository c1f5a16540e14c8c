"""The streaming tests' broker and per-test environment are in ``tests/conftest.py``."""
