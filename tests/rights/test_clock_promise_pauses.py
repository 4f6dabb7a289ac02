"""The clock and a tenant's plain promise (without "restart_on_information"): where the law
stops the clock while the request waits on the requester, the promise waits too."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from pledge.rights.clock import Duration, Pause, Promise, deadlines, jurisdictions, rule_for

TYPES = ["access", "erasure", "rectification", "portability", "objection"]
days = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


def test_a_plain_promise_moves_with_the_days_paused() -> None:
    eu = rule_for("EU", "access")
    promise = Promise(Duration(15, "days"))
    # Received 5 January: promised by 20 January. Paused on the 10th waiting on the
    # requester (the letter says the time to answer is suspended), still waiting on the 25th.
    waiting = deadlines(
        eu,
        received=date(2026, 1, 5),
        today=date(2026, 1, 25),
        pauses=[Pause(date(2026, 1, 10))],
        promise=promise,
    )
    assert waiting.paused and waiting.paused_days == 15
    assert waiting.due == date(2026, 2, 4)  # 20 January + 15 days waited: not overdue
    # The answer came on the 25th: the 10 days the promise had left remain.
    answered = deadlines(
        eu,
        received=date(2026, 1, 5),
        today=date(2026, 1, 30),
        pauses=[Pause(date(2026, 1, 10), date(2026, 1, 25))],
        promise=promise,
    )
    assert answered.due == date(2026, 2, 4)


def test_where_the_law_keeps_the_clock_running_so_does_a_plain_promise() -> None:
    ca = rule_for("US-CA", "access")
    d = deadlines(
        ca,
        received=date(2026, 1, 5),
        today=date(2026, 1, 25),
        pauses=[Pause(date(2026, 1, 10))],
        promise=Promise(Duration(15, "days")),
    )
    assert d.due == date(2026, 1, 20)  # California: the wait is included


@given(
    jurisdiction=st.sampled_from(sorted(jurisdictions())),
    kind=st.sampled_from(TYPES),
    received=days,
    promised=st.integers(1, 40),
    pause_start=st.integers(0, 60),
    open_for=st.integers(0, 90),
)
@example("EU", "access", date(2026, 1, 5), 15, 5, 15)
def test_a_plain_promise_never_makes_a_paused_request_overdue(
    jurisdiction: str,
    kind: str,
    received: date,
    promised: int,
    pause_start: int,
    open_for: int,
) -> None:
    rule = rule_for(jurisdiction, kind)
    promise = Promise(Duration(promised, "days"))
    started = received + timedelta(days=pause_start)
    today = started + timedelta(days=open_for)
    plain = deadlines(rule, received=received, today=today, promise=promise)
    waiting = deadlines(
        rule, received=received, today=today, pauses=[Pause(started)], promise=promise
    )
    assert waiting.due >= plain.due
    # Paused in time, where the law stops the clock: not overdue on any day of the wait.
    if rule.pauses and started <= plain.due:
        assert waiting.paused and waiting.due >= today
    if not rule.pauses:  # the clock runs on, the promise's with it
        assert waiting.due == plain.due
