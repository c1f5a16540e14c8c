"""The outbox: notifications are written to ClickHouse first, then delivered, per target.

Each (notification, target) is a delivery with a state history in ``deliveries``:
``pending`` -> ``sent``, or ``retry`` (with exponential backoff) until
``alerts.max_attempts``, then ``failed``. Because the state is in ClickHouse, a worker
restart picks up every delivery that is not ``sent`` (:meth:`Outbox.deliver`), and
because a notification's id is derived from its group and sequence number, enqueuing it
again (a retried batch, a replay after a crash) adds nothing: the same id is never sent
twice once it is recorded as sent. The one window left is a crash between a target
accepting the message and the ``sent`` row landing: that delivery is retried
(at-least-once), which is the only honest promise over HTTP/SMTP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from alerts.manager import Notification
from alerts.notify import Notifier
from monitor.config import AlertsConfig
from monitor.storage import Store

__all__ = ["DeliveryReport", "Outbox"]


@dataclass
class DeliveryReport:
    attempted: int = 0
    sent: int = 0
    retry: int = 0
    failed: int = 0


class Outbox:
    def __init__(self, store: Store, notifier: Notifier | None, config: AlertsConfig):
        self.store = store
        self.notifier = notifier
        self.config = config
        # Outcomes of attempts the store did not take (it failed right after a send).
        # Written before anything else is sent, so an accepted message is never sent
        # again by this process even while the store is down.
        self._unrecorded: dict[tuple[str, str], dict] = {}

    # -- write first ----------------------------------------------------------------------
    def enqueue(self, n: Notification, wall: float | None = None) -> int:
        """Record the notification and one pending delivery per routed target."""
        wall = time.time() if wall is None else wall
        db = self.store.db
        # Enqueued before (a replayed batch, or a retry after the store failed between
        # the two inserts below) once its delivery rows exist; the notification row
        # itself may be written twice (a ReplacingMergeTree keeps one).
        known_table = "deliveries" if n.alerts else "notifications"
        known = self.store.scalar(
            f"SELECT count() FROM {db}.{known_table} WHERE notification_id = {{id:String}}",
            {"id": n.notification_id},
        )
        if known:
            return 0
        self.store.insert_rows(
            "notifications",
            [
                {
                    "notification_id": n.notification_id,
                    "group_key": n.group_key,
                    "kind": n.kind,
                    "severity": n.severity,
                    "route_tags": list(n.route_tags),
                    "alert_ids": [a.alert_id for a in n.alerts],
                    "silenced_ids": [a.alert_id for a, _ in n.silenced],
                    "created_at": int(n.created_at * 1000),
                    "title": n.title,
                    "body_markdown": n.body_markdown,
                    "body_text": n.body_text,
                }
            ],
        )
        if not n.alerts:
            return 0  # all silenced: recorded, not sent
        targets = self.notifier.targets_for(n.severity, n.route_tags) if self.notifier else []
        rows = [self._row(n.notification_id, t.label, "pending", 0, "", wall) for t in targets]
        if not rows:
            rows = [self._row(n.notification_id, "-", "no_route", 0, "no target takes it", wall)]
        self.store.insert_rows("deliveries", rows)
        return len(targets)

    # -- then deliver -----------------------------------------------------------------------
    def deliver(self, wall: float | None = None) -> DeliveryReport:
        """Attempt every delivery that is due; record each outcome."""
        wall = time.time() if wall is None else wall
        rep = DeliveryReport()
        if self.notifier is None:
            return rep
        for key, row in list(self._unrecorded.items()):
            self.store.insert_rows("deliveries", [row])
            del self._unrecorded[key]
        db = self.store.db
        due = self.store.rows(
            "SELECT d.notification_id, d.target, d.attempts, n.severity, n.title, "
            "n.body_markdown, n.body_text FROM ("
            "  SELECT notification_id, target, argMax(status, version) AS status, "
            "         argMax(attempts, version) AS attempts, "
            "         argMax(next_attempt_at, version) AS next_at "
            f"  FROM {db}.deliveries GROUP BY notification_id, target"
            ") AS d "
            f"INNER JOIN (SELECT * FROM {db}.notifications FINAL) AS n USING notification_id "
            "WHERE d.status IN ('pending', 'retry') "
            "AND d.next_at <= fromUnixTimestamp64Milli({now:Int64}, 'UTC') "
            "ORDER BY n.created_at, d.notification_id, d.target",
            {"now": int(wall * 1000)},
        )
        c = self.config
        for nid, target, attempts, severity, title, md, text in due:
            rep.attempted += 1
            d = self.notifier.send(target, severity, title, md, text)
            tries = int(attempts) + 1
            if d.status == "sent":
                rep.sent += 1
                row = self._row(nid, target, "sent", tries, "", wall, sent=True)
            elif tries >= c.max_attempts:
                rep.failed += 1
                row = self._row(nid, target, "failed", tries, d.detail, wall)
            else:
                rep.retry += 1
                backoff = min(c.retry_backoff_s * 2 ** (tries - 1), c.retry_backoff_max_s)
                row = self._row(nid, target, "retry", tries, d.detail, wall + backoff)
            self._unrecorded[(nid, target)] = row
            self.store.insert_rows("deliveries", [row])
            del self._unrecorded[(nid, target)]
        return rep

    def pending(self) -> int:
        return int(
            self.store.scalar(
                "SELECT countIf(s IN ('pending', 'retry')) FROM (SELECT argMax(status, version) "
                f"AS s FROM {self.store.db}.deliveries GROUP BY notification_id, target)"
            )
            or 0
        )

    @staticmethod
    def _row(nid, target, status, attempts, error, next_at, sent: bool = False) -> dict:
        return {
            "notification_id": nid,
            "target": target,
            "status": status,
            "attempts": attempts,
            "last_error": error,
            "next_attempt_at": int(next_at * 1000),
            "sent_at": int(time.time() * 1000) if sent else None,
            "version": time.time_ns(),
        }
