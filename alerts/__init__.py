"""Alerts: rules (direction, severity, hold, cooldown), RCA context, rendering, apprise."""

from alerts.model import Alert, Incident, RcaContext
from alerts.rules import AlertRules, evidence_direction, severity_for

__all__ = ["Alert", "AlertRules", "Incident", "RcaContext", "evidence_direction", "severity_for"]
