"""The alert lifecycle on incidents that start and end at known times (CI-size).

Through the window-level twin at the production rate: the alert fires after the onset,
is never resolved while the incident is still on, resolves after it ends, and the
manager sends a bounded number of notifications for it. The full run (7 scenarios x 5
seeds) is `filterwatch backtest --suite lifecycle` (bench/results/alert_lifecycle.txt).
"""

import pytest

from monitor.lifecycle import LifecycleConfig, run_one

CFG = LifecycleConfig(seeds=1, workers=1, onset_s=300, incident_s=600, after_s=1200)


@pytest.mark.parametrize("scenario", ["selfharm-underblock", "latency-regression"])
def test_fires_holds_and_resolves(scenario):
    run = run_one((scenario, 1, CFG))
    assert run.alerts_before_onset == 0
    assert run.fired_delay_s is not None and run.fired_delay_s < 120
    assert run.premature_resolves == 0, run.timeline
    assert run.resolve_delay_s is not None, run.timeline  # resolved after the incident ended
    assert run.resolve_delay_s < CFG.after_s
    # one firing and one resolved message per alert, at most (no reminders this short)
    assert run.notifications <= 2 * run.alerts_after_onset
