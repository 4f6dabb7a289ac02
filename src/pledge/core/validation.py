"""Small validators shared by the domains. Messages name the field, never echo the value."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Final

from pydantic import AfterValidator, AwareDatetime

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


# Times taken from the API (a 422 naming the field, not a 500 at the database): `AwareInstantIn`
# where the schema requires a time zone, `InstantIn` where the service says what a naive one
# means.
InstantIn = Annotated[datetime, AfterValidator(within_calendar_in_utc)]
AwareInstantIn = Annotated[AwareDatetime, AfterValidator(within_calendar_in_utc)]
