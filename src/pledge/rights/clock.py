"""The one clock of rights requests (DESIGN.md §4 invariant 6).

Every deadline — acknowledgement, response, extension, appeal — is computed here from the
jurisdiction's rule (data, `data/deadlines.toml`) and the request's stored moments: receipt,
verification, pauses, extension, appeal. Due dates are derived, never stored as the only
truth. Dates are calendar dates in UTC: a request is due by the end of its due day.

Counting (LAW.md "Counting days"):
* "one month" (GDPR, UK): to the same date next month; if that date does not exist, the last
  day of that month. The extension runs to three months from the start.
* US states: calendar days from the day of receipt; acknowledgements and opt-outs in
  business days (weekends and the jurisdiction's holidays excluded).
* UK practice moves a due date on a weekend or bank holiday to the next working day; the
  end of the first period (the last day to notify an extension) moves with it.
* Where the law stops the clock, the days paused move every period's end: the first period's
  and the extended one's alike, and a tenant's promise (one that restarts on information
  starts again from the answer instead).
"""

from __future__ import annotations

import calendar as calendar_module
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import holidays as holiday_data

from pledge.core.errors import InvalidInput

_DURATION = re.compile(r"^\s*(\d+)\s+(months|days|business days)\s*$")


@dataclass(frozen=True)
class Duration:
    amount: int
    unit: str  # "months" | "days" | "business days"

    @staticmethod
    def parse(text: str) -> Duration | None:
        if not text:
            return None
        m = _DURATION.match(text)
        if not m:
            raise ValueError(f"not a duration: {text!r} (use '<n> months|days|business days')")
        return Duration(int(m.group(1)), m.group(2))

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}"


@dataclass(frozen=True)
class Rule:
    """A jurisdiction's deadlines for one request type."""

    jurisdiction: str
    name: str
    respond: Duration
    extension: Duration | None = None
    acknowledge: Duration | None = None
    appeal: Duration | None = None
    appeal_extension: Duration | None = None
    pauses: bool = False
    clock_start: str = "receipt"
    weekend_rule: bool = False
    calendar: str = ""
    complaint: str = ""
    free_requests_per_12_months: int = 0
    free_request_types: tuple[str, ...] = ()
    fee_allowed: str = "excessive_only"
    # The law under which an agent's power of attorney stands in for the person's own
    # confirmation (California: 11 CCR 7063(b)); "" where it cannot be claimed.
    power_of_attorney: str = ""


@dataclass(frozen=True)
class Promise:
    """A tenant's own promise, faster than (or as fast as) the law. The earlier date wins,
    until a lawful extension is notified: then the extended legal date is the one to meet.

    Seed 000's erasure form: "within one month of receipt of your request or of any further
    information we ask for, whichever is later" is `Promise(Duration(1, "months"),
    restart_on_information=True)`."""

    respond: Duration
    restart_on_information: bool = False


@dataclass(frozen=True)
class Pause:
    started: date
    ended: date | None = None  # None: still waiting on the requester


@dataclass(frozen=True)
class Deadlines:
    starts: date  # the day the clock starts
    acknowledge_by: date | None
    first_due: date  # the end of the first period, pauses included (the last day to extend)
    due: date  # what the request must meet now: extension, pauses, promise included
    extended_due: date | None  # the due date with the extension (and pauses), granted or not
    extended: bool
    paused_days: int
    paused: bool  # waiting on the requester right now
    appeal_due: date | None = None
    statutory_due: date | None = None  # before the tenant's promise


# ---------------------------------------------------------------------------------------------
# Calendars and arithmetic


@cache
def _holidays(code: str, year: int) -> frozenset[date]:
    if not code:
        return frozenset()
    country, _, subdiv = code.partition("-")
    found = holiday_data.country_holidays(country, subdiv=subdiv or None, years=year)
    return frozenset(found.keys())


@dataclass(frozen=True)
class Calendar:
    """Working days: Monday to Friday except the jurisdiction's public holidays (from the
    maintained `holidays` package) and any extra closing days the tenant adds."""

    code: str = ""
    extra: frozenset[date] = field(default_factory=frozenset)

    def is_working_day(self, day: date) -> bool:
        return (
            day.weekday() < 5
            and day not in self.extra
            and day not in _holidays(self.code, day.year)
        )

    def next_working_day(self, day: date) -> date:
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day


def add_months(start: date, months: int) -> date:
    """Same date `months` later; the last day of that month when the date does not exist."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    last = calendar_module.monthrange(year, month)[1]
    return date(year, month, min(start.day, last))


def add(start: date, duration: Duration, cal: Calendar) -> date:
    if duration.unit == "months":
        return add_months(start, duration.amount)
    if duration.unit == "days":
        return start + timedelta(days=duration.amount)
    day, left = start, duration.amount
    while left > 0:
        day += timedelta(days=1)
        if cal.is_working_day(day):
            left -= 1
    return day


def add_total(start: date, first: Duration, second: Duration, cal: Calendar) -> date:
    """First period plus extension, counted from the start ("three months from the start")."""
    if first.unit == second.unit:
        return add(start, Duration(first.amount + second.amount, first.unit), cal)
    return add(add(start, first, cal), second, cal)


# ---------------------------------------------------------------------------------------------
# Rules


@cache
def _table() -> dict[str, Any]:
    raw = resources.files("pledge.rights").joinpath("data/deadlines.toml").read_text()
    return tomllib.loads(raw)


def jurisdictions() -> list[str]:
    return sorted(_table())


@cache
def rule_for(jurisdiction: str, request_type: str) -> Rule:
    """The rule of a jurisdiction for a request type (built once per pair: rules are frozen
    and the table is read once)."""
    table = _table()
    if jurisdiction not in table:
        raise InvalidInput(f"no deadline rules for jurisdiction {jurisdiction[:20]!r}")
    entry = dict(table[jurisdiction])
    overrides = entry.pop("types", {}).get(request_type, {})
    entry.update(overrides)
    acknowledge = Duration.parse(entry.get("acknowledge", ""))
    if acknowledge and request_type not in entry.get("acknowledge_types", [request_type]):
        acknowledge = None
    respond = Duration.parse(entry["respond"])
    assert respond is not None
    return Rule(
        jurisdiction=jurisdiction,
        name=entry.get("name", jurisdiction),
        respond=respond,
        extension=Duration.parse(entry.get("extension", "")),
        acknowledge=acknowledge,
        appeal=Duration.parse(entry.get("appeal", "")),
        appeal_extension=Duration.parse(entry.get("appeal_extension", "")),
        pauses=bool(entry.get("pauses", False)),
        clock_start=entry.get("clock_start", "receipt"),
        weekend_rule=bool(entry.get("weekend_rule", False)),
        calendar=entry.get("calendar", ""),
        complaint=entry.get("complaint", ""),
        free_requests_per_12_months=int(entry.get("free_requests_per_12_months", 0)),
        free_request_types=tuple(entry.get("free_request_types", ())),
        fee_allowed=entry.get("fee_allowed", "excessive_only"),
        power_of_attorney=entry.get("power_of_attorney", ""),
    )


# ---------------------------------------------------------------------------------------------
# Deadlines


def _paused_days(pauses: Sequence[Pause], today: date) -> tuple[int, bool]:
    total, open_now = 0, False
    for pause in pauses:
        end = pause.ended or today
        open_now = open_now or pause.ended is None
        total += max(0, (end - pause.started).days)
    return total, open_now


def deadlines(
    rule: Rule,
    *,
    received: date,
    today: date,
    verification_requested: bool = False,
    verified: date | None = None,
    pauses: Sequence[Pause] = (),
    extended_on: date | None = None,
    appeal_received: date | None = None,
    appeal_extended: bool = False,
    promise: Promise | None = None,
    extra_closing_days: Iterable[date] = (),
    extension_granted: bool = False,
    extension_told: date | None = None,
) -> Deadlines:
    """Every deadline of a request, from its stored moments. `today` stands for "now" (the
    clock module's caller passes `utcnow().date()`), so tests can move time.

    `extended_on` is checked to lie inside the first period (InvalidInput), unless
    `extension_granted`: an extension granted already was checked when it was, and a change
    of the tenant's closing days since cannot take it back. `extension_told`: the due date
    the extension's letter gave, below which the due date never falls."""
    return _deadlines(
        rule,
        received,
        today,
        verification_requested,
        verified,
        tuple(pauses),
        extended_on,
        appeal_received,
        appeal_extended,
        promise,
        frozenset(extra_closing_days),
        extension_granted,
        extension_told,
    )


@lru_cache(maxsize=4096)
def _deadlines(
    rule: Rule,
    received: date,
    today: date,
    verification_requested: bool,
    verified: date | None,
    pauses: tuple[Pause, ...],
    extended_on: date | None,
    appeal_received: date | None,
    appeal_extended: bool,
    promise: Promise | None,
    extra_closing_days: frozenset[date],
    extension_granted: bool,
    extension_told: date | None,
) -> Deadlines:
    # A pure function of hashable, frozen inputs: a request's deadlines are asked for several
    # times per transaction (each transition caches the due date, each letter quotes it).
    cal = Calendar(rule.calendar, extra_closing_days)
    starts = received
    if rule.clock_start == "verification_if_requested" and verification_requested:
        starts = max(received, verified or today)
    paused_days, paused = _paused_days(pauses, today) if rule.pauses else (0, False)

    def settle(day: date) -> date:
        return cal.next_working_day(day) if rule.weekend_rule else day

    def period_end(day: date) -> date:
        # Every period counts the days paused and, in the UK, ends on a working day: the end
        # of the first period (the last day to notify an extension) as well as the due date.
        # The days paused are added to the working day the period ended on, so a request
        # paused on that day has, once answered, the time it had left.
        return settle(settle(day) + timedelta(days=paused_days))

    first_due = period_end(add(starts, rule.respond, cal))
    extended_due = (
        period_end(add_total(starts, rule.respond, rule.extension, cal)) if rule.extension else None
    )
    extended = extended_on is not None
    if extended_on is not None:
        if extended_due is None:
            raise InvalidInput(f"{rule.name} allows no extension for this request")
        if extended_on > first_due and not extension_granted:
            raise InvalidInput("an extension must be notified within the first period")
    due = extended_due if extended and extended_due else first_due
    if extended and extension_told is not None:
        # The letter announcing the extension gave the person a date (Art. 12(3): "inform the
        # data subject of any such extension"). A closing day removed since (one that was no
        # public holiday after all) shortens the recomputed period, but the controller has
        # told the person they may wait until then, and a complaint or a reminder before it
        # would be unfair: the date told is kept, a later one (a closing day added, a pause)
        # still moves it on.
        due = max(due, extension_told)
    statutory = due
    # A lawful extension, once notified, takes over from the tenant's promise: the letter
    # announcing it gives the extended date, and that date is the one to meet.
    if promise is not None and not extended:
        if promise.restart_on_information and pauses:
            start = max([starts, *[p.ended or today for p in pauses]])
            promised = settle(add(start, promise.respond, cal))
        else:
            # Where the law stops the clock (the letter says the time to answer is
            # suspended), the promise's stops too: its end moves by the days paused.
            promised = period_end(add(starts, promise.respond, cal))
        due = min(due, promised)
    acknowledge_by = add(received, rule.acknowledge, cal) if rule.acknowledge else None
    appeal_due = None
    if appeal_received is not None and rule.appeal is not None:
        appeal_due = (
            add_total(appeal_received, rule.appeal, rule.appeal_extension, cal)
            if appeal_extended and rule.appeal_extension
            else add(appeal_received, rule.appeal, cal)
        )
    return Deadlines(
        starts=starts,
        acknowledge_by=acknowledge_by,
        first_due=first_due,
        due=due,
        extended_due=extended_due,
        extended=extended,
        paused_days=paused_days,
        paused=paused,
        appeal_due=appeal_due,
        statutory_due=statutory,
    )


def as_date(moment: datetime | None) -> date | None:
    return moment.date() if moment is not None else None
