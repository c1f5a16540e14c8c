"""Fault injection for the reliability scenarios: real faults, no mocks.

- :func:`unwritable`: the embedded store's directories made immutable (as ``chattr +i``),
  so ClickHouse cannot create a part, as with a full or read-only disk. ``chmod`` is not
  enough: the tests run as root, which ignores permission bits.
- The broker is stopped and started with :class:`tests.conftest.LocalBroker`.
- A notification endpoint is "down" while nothing listens on its port.
"""

from __future__ import annotations

import fcntl
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["OUTAGE_SCALE", "outage_s", "unwritable"]

# CI runs the scenarios with shortened outages; FW_RELIABILITY_FULL=1 runs the lengths
# the issue names (ClickHouse 60 s, broker 30 s).
OUTAGE_SCALE = 1.0 if os.environ.get("FW_RELIABILITY_FULL") else 0.5


def outage_s(full: float) -> float:
    return full * OUTAGE_SCALE


_FS_IOC_GETFLAGS, _FS_IOC_SETFLAGS, _FS_IMMUTABLE_FL = 0x80086601, 0x40086602, 0x10


def _set_immutable(path: str, on: bool) -> bool:
    """Set or clear a directory's immutable flag; False if it vanished meanwhile (ClickHouse
    removes temporary part directories as it goes)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        buf = fcntl.ioctl(fd, _FS_IOC_GETFLAGS, bytes(8))
        flags = struct.unpack("i", buf[:4])[0]
        flags = flags | _FS_IMMUTABLE_FL if on else flags & ~_FS_IMMUTABLE_FL
        try:
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, struct.pack("i", flags) + bytes(4))
        except OSError as exc:
            raise AssertionError(
                f"cannot set the immutable flag on {path} ({exc.strerror}); the store "
                "outage scenario needs root on a filesystem with chattr +i support"
            ) from None
        return True
    finally:
        os.close(fd)


def _directories(root: Path) -> list[str]:
    out = [str(root)]
    for base, dirs, _files in os.walk(root):  # never follows symlinks
        out += [os.path.join(base, d) for d in dirs]
    return out


@contextmanager
def unwritable(store: Path) -> Iterator[None]:
    """No new file or directory can be made anywhere in ``store`` while inside."""
    for _ in range(3):  # again, for directories made while the first pass ran
        for d in _directories(store):
            _set_immutable(d, True)
    try:
        yield
    finally:
        for d in _directories(store):
            _set_immutable(d, False)
