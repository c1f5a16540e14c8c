"""One exception tree for filterwatch.

Other libraries' errors (clickhouse-connect, apprise, file I/O) are translated at the
boundary with ``raise Ours(...) from exc`` so the CLI can print one clear line.

::

    FilterwatchError
    ├── ConfigError        bad config file, environment value or CLI argument
    ├── InputError         an input file that cannot be read at all (not one bad event)
    ├── StorageError       ClickHouse (chDB or server) refused or failed
    │   └── StoreLockedError   the embedded store is held by another process
    └── DeliveryError      a notification could not be handed to apprise

A single malformed *event* is not an exception: validation returns a
:class:`monitor.validation.Rejection` and the event goes to the dead-letter sink.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DeliveryError",
    "FilterwatchError",
    "InputError",
    "StorageError",
    "StoreLockedError",
]


class FilterwatchError(Exception):
    """Base of every error filterwatch raises on purpose."""


class ConfigError(FilterwatchError):
    """The configuration or a command-line argument is invalid; the message names the fix.

    Always one line: a key or value quoted from the input may carry newlines or control
    characters, which are shown escaped."""

    def __init__(self, message: str = "") -> None:
        super().__init__("".join(_escape(c) for c in str(message)))


def _escape(c: str) -> str:
    return c if c.isprintable() or c == " " else repr(c)[1:-1]


class InputError(FilterwatchError):
    """An input file cannot be opened or has an unusable format."""


class StorageError(FilterwatchError):
    """ClickHouse refused a statement or could not be reached."""


class StoreLockedError(StorageError):
    """The embedded chDB store is already open in another process."""


class DeliveryError(FilterwatchError):
    """A notification target could not be used."""
