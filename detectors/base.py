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

    # Return-to-baseline interface. Detectors with a return test (the rate CUSUM, latency)
    # set ``_rec_active`` after a detection and ``_recovered`` on the update at which the
    # segment is shown back; the others never do, and alert rules fall back to silence.
    # Class-level defaults keep states pickled before these existed loadable.
    _rec_active = False
    _recovered = False

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
    def recovered(self) -> bool:
        """True on the update at which the segment was shown back at its reference."""
        return self._recovered

    @property
    def recovering(self) -> bool:
        """A detection happened and the return test is running."""
        return self._rec_active

    @property
    def recovery_rate(self) -> float:
        """The level seen by the return test (for the resolved message)."""
        return 0.0

    def end_recovery(self) -> None:
        """Stop testing the return (the segment's traffic is gone)."""
        self._rec_active = False

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
