"""Small validators shared by the domains. Messages name the field, never echo the value."""

from __future__ import annotations

import re

from pledge.core.errors import InvalidInput

_SLUG = re.compile(r"^[a-z][a-z0-9_-]{0,59}$")


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
