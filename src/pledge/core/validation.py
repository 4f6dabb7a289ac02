"""Small validators shared by the domains. Messages name the field, never echo the value.

A JSON body takes each value in its own JSON type only: `true`/`false` for a boolean, an
integer for an integer (not `false`, not `"12"`), a time as text. Pydantic's lax mode would
convert the others and change their meaning: `"cents": false` clears a fee, `"occurred_at": 0`
puts 1970-01-01 on a person's record. The API's input models mark those fields `StrictBool` /
`StrictInt`, and take times as `InstantIn` / `AwareInstantIn`, not the whole model strict:
FastAPI validates the body after parsing it (Pydantic's Python mode), where a strict model
would also refuse the text a time, a UUID or an enum arrives as. Query parameters and forms
arrive as text, and stay lax.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Final

from pydantic import AfterValidator, AwareDatetime, BeforeValidator
from pydantic_core import PydanticCustomError

from pledge.core.errors import InvalidInput

_SLUG = re.compile(r"^[a-z][a-z0-9_-]{0,59}$")


class Unchanged(Enum):
    """A setter's "leave it as it is", where None already means "none" (no exemption, no
    period, no webhook URL)."""

    UNCHANGED = "unchanged"


UNCHANGED: Final = Unchanged.UNCHANGED


def slug(value: str, what: str) -> str:
    if not _SLUG.match(value):
        raise InvalidInput(
            f"{what} must be 1-60 lower-case letters, digits, '-' or '_', starting with a letter"
        )
    return value


def text(value: str, what: str, *, max_chars: int, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{what} is required")
    if len(value) > max_chars:
        raise InvalidInput(f"{what} is longer than {max_chars} characters")
    return value


def within_calendar_in_utc(value: datetime) -> datetime:
    """A time whose UTC value falls outside years 1-9999 is valid where it was written but
    can be neither stored (both databases keep UTC) nor read back by Python."""
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("the time in UTC must fall between years 1 and 9999") from None
    return value


# A date and a time of day, as RFC 3339 (and ISO 8601) write them; the rest is Pydantic's to
# parse. Pydantic would also take a number, or text of digits, as seconds since 1970.
_WRITTEN_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def written_time(value: object) -> object:
    """A time given as text with a date and a time of day, never as a number (a made-up
    1970 date) or a date alone (a made-up midnight)."""
    if isinstance(value, datetime) or (isinstance(value, str) and _WRITTEN_TIME.match(value)):
        return value
    raise PydanticCustomError(
        "datetime_type",
        "Input should be a date and time as RFC 3339 text, e.g. 2026-01-31T09:30:00Z",
    )


# Times taken from the API (a 422 naming the field, not a 500 at the database): `AwareInstantIn`
# where the schema requires a time zone, `InstantIn` where the service says what a naive one
# means.
InstantIn = Annotated[
    datetime, BeforeValidator(written_time), AfterValidator(within_calendar_in_utc)
]
AwareInstantIn = Annotated[
    AwareDatetime, BeforeValidator(written_time), AfterValidator(within_calendar_in_utc)
]
