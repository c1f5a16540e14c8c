from monitor.aggregate import WindowAggregator
from monitor.events import Verdict


def verdict(ts, cat="adult", blocked=True, mv="v1"):
    return Verdict(
        "r",
        ts,
        "t",
        "https://a.org/",
        "a.org",
        mv,
        {cat: 0.9},
        (cat,),
        "block" if blocked else "allow",
        "strict",
        30.0,
        "prod",
    )


def test_windows_close_in_order_and_late_events_are_counted():
    agg = WindowAggregator(window_s=5, lateness=1)
    closed = []
    for ts in (0.1, 1.0, 5.5, 9.9, 10.2, 3.0, 15.1):
        closed += agg.add_verdict(verdict(ts))
    closed += agg.flush()
    assert [w.index for w in closed] == [0, 1, 2, 3]
    assert [w.requests for w in closed] == [2, 2, 1, 1]
    assert agg.late_events == 1  # ts=3.0 arrived after window 0 closed


def test_feedback_attribution_and_merge():
    agg = WindowAggregator(window_s=5)
    agg.add_verdict(verdict(1.0))
    agg.add_feedback(2.0, "v1", ("adult",), "unblock")
    agg.add_feedback(2.5, "v1", ("self_harm",), "report")
    agg.add_feedback(3.0, "v1", ("adult",), "confirm")  # labels are not rate evidence
    (w,) = agg.flush()
    assert w.cells[("adult", "v1")][:4] == [1, 1, 1, 0]
    assert w.cells[("self_harm", "v1")][:4] == [0, 0, 0, 1]
    other = WindowAggregator(window_s=5)
    other.add_verdict(verdict(4.0, mv="v2"))
    (w2,) = other.flush()
    w.merge(w2)
    totals = w.category_totals()
    assert totals[("adult", "*")][:2] == [2, 2]
    assert w.requests == 2
