"""Tests of diagnostics.tails.flow: how much one viewer may be sent."""

from __future__ import annotations

from diagnostics.tails.flow import ViewerFlow


def flow(window: int = 100, rate: float = 1000, burst: float = 1000) -> ViewerFlow:
    return ViewerFlow(window=window, rate=rate, burst=burst)


def test_it_allows_a_window_of_unacknowledged_lines() -> None:
    viewer = flow(window=100)
    assert viewer.room(now=1.0) == 100
    viewer.record_sent(100, 100, now=1.0)
    assert viewer.room(now=1.0) == 0 and viewer.window_full
    viewer.ack(60)
    assert viewer.room(now=1.0) == 60


def test_it_ignores_an_acknowledgement_of_lines_never_sent() -> None:
    viewer = flow()
    viewer.record_sent(10, 10, now=1.0)
    viewer.ack(10_000)
    assert viewer.acked == 10


def test_it_limits_the_rate_and_refills_with_time() -> None:
    viewer = flow(window=10_000, rate=100, burst=100)
    viewer.record_sent(100, 100, now=1.0)
    viewer.ack(100)
    assert viewer.room(now=1.0) == 0
    assert 0 < viewer.seconds_until_room(now=1.0) <= 0.011
    assert viewer.room(now=1.5) == 50


def test_it_knows_when_the_viewer_is_behind() -> None:
    viewer = flow()
    viewer.start_at(40)
    viewer.saw(45)
    assert viewer.behind
    viewer.record_sent(45, 5, now=1.0)
    assert not viewer.behind


def test_skipped_lines_count_as_shown() -> None:
    viewer = flow(window=10)
    viewer.skip_to(500)
    assert viewer.sent == viewer.acked == 500
    assert viewer.room(now=1.0) == 10
