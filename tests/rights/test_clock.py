"""The clock: statutory deadlines from rules kept as data."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pledge.core.errors import InvalidInput
from pledge.rights.clock import (
    Calendar,
    Deadlines,
    Duration,
    Pause,
    Promise,
    add_months,
    deadlines,
    jurisdictions,
    rule_for,
)

TYPES = ["access", "erasure", "rectification", "opt_out_sale", "limit_sensitive", "objection"]
days = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


@pytest.mark.parametrize(
    ("start", "due"),
    [
        (date(2026, 1, 31), date(2026, 2, 28)),  # no 31 February: the last day of the month
        (date(2028, 1, 31), date(2028, 2, 29)),  # leap year
        (date(2026, 3, 31), date(2026, 4, 30)),
        (date(2026, 1, 15), date(2026, 2, 15)),
        (date(2026, 12, 31), date(2027, 1, 31)),
    ],
)
def test_gdpr_month_arithmetic(start: date, due: date) -> None:
    eu = rule_for("EU", "access")
    assert deadlines(eu, received=start, today=start).due == due


def test_the_gdpr_extension_runs_to_three_months_from_the_start() -> None:
    eu = rule_for("EU", "access")
    d = deadlines(
        eu, received=date(2026, 1, 31), today=date(2026, 2, 10), extended_on=date(2026, 2, 10)
    )
    assert d.first_due == date(2026, 2, 28)
    assert d.due == date(2026, 4, 30)  # not 28 April: counted from the start


def test_california_45_days_acknowledgement_in_business_days_opt_out_faster() -> None:
    ca = rule_for("US-CA", "access")
    d = deadlines(ca, received=date(2026, 11, 20), today=date(2026, 11, 20))  # a Friday
    assert d.due == date(2027, 1, 4)
    # 10 business days: weekends, Thanksgiving and the day after (a California holiday) excluded.
    assert d.acknowledge_by == date(2026, 12, 8)
    assert deadlines(
        ca, received=date(2026, 11, 20), today=date(2026, 11, 20), extended_on=date(2026, 12, 1)
    ).due == date(2027, 2, 18)
    opt_out = rule_for("US-CA", "opt_out_sale")
    assert opt_out.acknowledge is None and opt_out.extension is None
    assert deadlines(opt_out, received=date(2026, 11, 20), today=date(2026, 11, 20)).due == date(
        2026, 12, 15
    )


def test_uk_due_dates_skip_weekends_and_bank_holidays_and_start_at_id() -> None:
    uk = rule_for("UK", "access")
    # 25 Nov 2026 + 1 month = 25 Dec (Christmas); 26-27 weekend; 28 Dec a bank holiday → 29 Dec.
    d = deadlines(uk, received=date(2026, 11, 25), today=date(2026, 11, 25))
    assert d.due == date(2026, 12, 29)
    # ID asked for: the month runs from the day it arrived.
    d = deadlines(
        uk,
        received=date(2026, 3, 2),
        today=date(2026, 3, 20),
        verification_requested=True,
        verified=date(2026, 3, 10),
    )
    assert d.starts == date(2026, 3, 10) and d.due == date(2026, 4, 10)


def test_pauses_move_the_due_date_only_where_the_law_stops_the_clock() -> None:
    pause = [Pause(date(2026, 2, 3), date(2026, 2, 13))]
    eu = deadlines(
        rule_for("EU", "access"), received=date(2026, 2, 1), today=date(2026, 3, 1), pauses=pause
    )
    assert eu.paused_days == 10 and eu.due == date(2026, 3, 11)
    ca = deadlines(
        rule_for("US-CA", "access"), received=date(2026, 2, 1), today=date(2026, 3, 1), pauses=pause
    )
    assert ca.paused_days == 0 and ca.due == date(2026, 3, 18)  # verification time is included


def test_a_tenant_promise_wins_when_faster_and_restarts_on_information() -> None:
    eu = rule_for("EU", "erasure")
    # Seed 000: one month from receipt or from further information asked for, whichever is later.
    promise = Promise(Duration(1, "months"), restart_on_information=True)
    d = deadlines(
        eu,
        received=date(2026, 5, 4),
        today=date(2026, 6, 1),
        pauses=[Pause(date(2026, 5, 6), date(2026, 5, 20))],
        promise=promise,
    )
    assert d.statutory_due == date(2026, 6, 18)  # 4 June + 14 days paused
    assert d.due == date(2026, 6, 18)  # 20 May + 1 month = 20 June is later: the law's date wins
    fast = deadlines(
        eu, received=date(2026, 5, 4), today=date(2026, 5, 4), promise=Promise(Duration(14, "days"))
    )
    assert fast.due == date(2026, 5, 18)


def test_colorado_appeal_has_its_own_clock() -> None:
    co = rule_for("US-CO", "access")
    d = deadlines(
        co, received=date(2026, 1, 5), today=date(2026, 3, 1), appeal_received=date(2026, 3, 1)
    )
    assert d.appeal_due == date(2026, 4, 15)
    d = deadlines(
        co,
        received=date(2026, 1, 5),
        today=date(2026, 3, 1),
        appeal_received=date(2026, 3, 1),
        appeal_extended=True,
    )
    assert d.appeal_due == date(2026, 6, 14)
    assert rule_for("US-UT", "access").appeal is None  # Utah grants no appeal


def test_extension_only_inside_the_first_period_and_only_where_allowed() -> None:
    with pytest.raises(InvalidInput, match="first period"):
        deadlines(
            rule_for("EU", "access"),
            received=date(2026, 1, 1),
            today=date(2026, 2, 5),
            extended_on=date(2026, 2, 2),
        )
    with pytest.raises(InvalidInput, match="no extension"):
        deadlines(
            rule_for("AU", "access"),
            received=date(2026, 1, 1),
            today=date(2026, 1, 5),
            extended_on=date(2026, 1, 5),
        )


def test_the_first_period_counts_the_days_paused() -> None:
    # Received 5 January, waiting on the requester 10 January to 1 February (22 days): the
    # first month ends on 27 February, so an extension told on 10 February is in time.
    eu = rule_for("EU", "access")
    pauses = [Pause(date(2026, 1, 10), date(2026, 2, 1))]
    d = deadlines(eu, received=date(2026, 1, 5), today=date(2026, 2, 10), pauses=pauses)
    assert d.first_due == date(2026, 2, 27) and d.due == date(2026, 2, 27)
    extended = deadlines(
        eu,
        received=date(2026, 1, 5),
        today=date(2026, 2, 10),
        pauses=pauses,
        extended_on=date(2026, 2, 10),
    )
    assert extended.due == extended.extended_due == date(2026, 4, 27)  # 5 April + 22 days
    with pytest.raises(InvalidInput, match="first period"):
        deadlines(
            eu,
            received=date(2026, 1, 5),
            today=date(2026, 2, 28),
            pauses=pauses,
            extended_on=date(2026, 2, 28),
        )


def test_uk_first_period_ending_on_a_weekend_runs_to_the_next_working_day() -> None:
    # 28 February + 1 month = Saturday 28 March: the answer, and the extension notice, may go
    # out on Monday 30 March.
    uk = rule_for("UK", "access")
    d = deadlines(uk, received=date(2026, 2, 28), today=date(2026, 3, 30))
    assert d.first_due == d.due == date(2026, 3, 30)
    extended = deadlines(
        uk, received=date(2026, 2, 28), today=date(2026, 3, 30), extended_on=date(2026, 3, 30)
    )
    assert extended.due == date(2026, 5, 28)


def test_a_notified_extension_takes_over_from_a_faster_promise() -> None:
    eu = rule_for("EU", "access")
    for promise in (Promise(Duration(1, "months"), True), Promise(Duration(14, "days"))):
        before = deadlines(eu, received=date(2026, 1, 5), today=date(2026, 1, 5), promise=promise)
        assert before.due <= date(2026, 2, 5)  # the promise is kept while there is no extension
        extended = deadlines(
            eu,
            received=date(2026, 1, 5),
            today=date(2026, 1, 25),
            extended_on=date(2026, 1, 25),
            promise=promise,
        )
        assert extended.due == extended.statutory_due == date(2026, 4, 5)


EXTENSIBLE = sorted(j for j in jurisdictions() if rule_for(j, "access").extension is not None)


@given(
    jurisdiction=st.sampled_from(EXTENSIBLE),
    received=days,
    verified_after=st.none() | st.integers(0, 30),
    pause_start=st.integers(0, 40),
    pause_len=st.integers(0, 30),
    before_end=st.integers(0, 90),
    promise=st.none() | st.sampled_from([Duration(14, "days"), Duration(1, "months")]),
    restart=st.booleans(),
)
def test_an_extension_notified_by_the_first_periods_end_is_accepted(
    jurisdiction: str,
    received: date,
    verified_after: int | None,
    pause_start: int,
    pause_len: int,
    before_end: int,
    promise: Duration | None,
    restart: bool,
) -> None:
    rule = rule_for(jurisdiction, "access")

    def at(extended_on: date | None = None) -> Deadlines:
        return deadlines(
            rule,
            received=received,
            today=received + timedelta(days=300),
            verification_requested=verified_after is not None,
            verified=None if verified_after is None else received + timedelta(days=verified_after),
            pauses=[
                Pause(
                    received + timedelta(days=pause_start),
                    received + timedelta(days=pause_start + pause_len),
                )
            ],
            extended_on=extended_on,
            promise=Promise(promise, restart) if promise else None,
        )

    plain = at()
    # Any day from the clock's start to the end of the first period (pauses included).
    extended = at(max(plain.starts, plain.first_due - timedelta(days=before_end)))
    # The extended legal date is the one to meet, never earlier than before.
    assert extended.due == extended.extended_due == extended.statutory_due
    assert extended.due > plain.first_due and extended.due >= plain.due
    with pytest.raises(InvalidInput, match="first period"):
        at(plain.first_due + timedelta(days=1))


@given(
    jurisdiction=st.sampled_from(sorted(jurisdictions())),
    kind=st.sampled_from(TYPES),
    received=days,
    pause_start=st.integers(0, 60),
    open_for=st.integers(0, 90),
    restart_promise=st.booleans(),
)
# UK: due Saturday 28 March, so Monday 30 March; paused that Monday, still waiting on the
# Wednesday — the request has the day it had left, not "overdue by 2 days".
@example("UK", "access", date(2026, 2, 28), 30, 2, False)
def test_a_pause_never_makes_a_request_overdue_earlier(
    jurisdiction: str,
    kind: str,
    received: date,
    pause_start: int,
    open_for: int,
    restart_promise: bool,
) -> None:
    rule = rule_for(jurisdiction, kind)
    promise = Promise(Duration(1, "months"), True) if restart_promise else None
    started = received + timedelta(days=pause_start)
    today = started + timedelta(days=open_for)
    plain = deadlines(rule, received=received, today=today, promise=promise)
    waiting = deadlines(
        rule, received=received, today=today, pauses=[Pause(started)], promise=promise
    )
    assert waiting.due >= plain.due and waiting.first_due >= plain.first_due
    # Paused in time, where the law stops the clock: not overdue on any day of the wait.
    if rule.pauses and started <= plain.due:
        assert waiting.paused and waiting.due >= today


@given(
    jurisdiction=st.sampled_from(sorted(set(jurisdictions()))),
    kind=st.sampled_from(TYPES),
    received=days,
    pause_start=st.integers(0, 40),
    pause_len=st.integers(0, 30),
    extend_after=st.integers(0, 120),
)
def test_properties_of_every_rule(
    jurisdiction: str,
    kind: str,
    received: date,
    pause_start: int,
    pause_len: int,
    extend_after: int,
) -> None:
    rule = rule_for(jurisdiction, kind)
    today = received + timedelta(days=200)
    pauses = [
        Pause(
            received + timedelta(days=pause_start),
            received + timedelta(days=pause_start + pause_len),
        )
    ]
    plain = deadlines(rule, received=received, today=today)
    paused = deadlines(rule, received=received, today=today, pauses=pauses)
    # A due date is never before receipt, nor before the end of the first period.
    assert plain.due > received and plain.first_due > received
    assert plain.acknowledge_by is None or received < plain.acknowledge_by <= plain.due
    # Waiting on the requester never brings the due date forward.
    assert paused.due >= plain.due
    # An extension is accepted exactly inside the first period, and then moves the date later.
    extend_on = received + timedelta(days=extend_after)
    if rule.extension is None:
        return
    if extend_on <= plain.first_due:
        extended = deadlines(rule, received=received, today=today, extended_on=extend_on)
        assert extended.due > plain.due and extended.extended
    else:
        with pytest.raises(InvalidInput):
            deadlines(rule, received=received, today=today, extended_on=extend_on)


@given(days, st.integers(1, 36))
def test_month_addition_lands_in_the_right_month_and_never_beyond_its_end(
    start: date, months: int
) -> None:
    due = add_months(start, months)
    assert (due.year * 12 + due.month) - (start.year * 12 + start.month) == months
    assert due.day == start.day or (due.day < start.day and (due + timedelta(days=1)).day == 1)


def test_business_days_skip_the_jurisdictions_holidays() -> None:
    cal = Calendar("US-CA")
    assert not cal.is_working_day(date(2026, 11, 26))  # Thanksgiving
    assert not cal.is_working_day(date(2026, 11, 28))  # Saturday
    assert not cal.is_working_day(date(2026, 11, 27))  # the day after: a California state holiday
    assert cal.is_working_day(date(2026, 11, 30))
    assert Calendar("US-CA", frozenset({date(2026, 11, 30)})).next_working_day(
        date(2026, 11, 26)
    ) == date(2026, 12, 1)
