"""The tiny face every window detector shares (after river's ``DriftDetector``)."""

from __future__ import annotations

__all__ = ["WindowDetector"]


class WindowDetector:
    """``update(...)`` with one window's aggregate, then read :attr:`drift_detected`.

    State lives in :meth:`_reset`, which ``__init__`` calls. After a detection the
    *test* state restarts at the top of the next ``update`` while the reference is kept,
    so one change produces one detection and a persisting change is detected again only
    after it has built up fresh evidence.
    """

    def __init__(self) -> None:
        self._drift_detected = False
        self.windows_seen = 0
        self._reset()

    def _reset(self) -> None:
        self._drift_detected = False

    @property
    def drift_detected(self) -> bool:
        return self._drift_detected

    @property
    def warmed_up(self) -> bool:
        raise NotImplementedError

    def export_reference(self) -> dict | None:
        """The learned reference as plain data (JSON-able), or None before warm-up.

        This is what a reference profile stores per segment, and what a model version's
        segments copy from the fleet while that version is under deploy guard.
        """
        raise NotImplementedError

    def load_reference(self, ref: dict) -> None:
        """Adopt a reference exported by a detector of the same kind (skips warm-up)."""
        raise NotImplementedError
