"""Identity values (e-mail, phone, external id): validation and the normal form whose keyed
hash is the blind index. Two spellings of one address must give one index."""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email


class IdentityKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    EXTERNAL_ID = "external_id"


# The field that holds each identity's value, and its category.
IDENTITY_FIELDS: dict[IdentityKind, tuple[str, str]] = {
    IdentityKind.EMAIL: ("email", "user.contact.email"),
    IdentityKind.PHONE: ("phone", "user.contact.phone_number"),
    IdentityKind.EXTERNAL_ID: ("external_id", "user.id"),
}


class InvalidIdentity(ValueError):
    """The message names what is wrong, never the value itself."""


# The common shape of an address — ASCII dot-atom local part, LDH labels, alphabetic TLD —
# checked by one regex. Anything else goes through email-validator. Both give the same normal
# form (tests/subjects/test_identity.py proves it with hypothesis); the fast path exists
# because email-validator costs ~40 µs an address, which dominated bulk import.
_COMMON_EMAIL = re.compile(
    r"(?=[^@]{1,64}@)[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_SPECIAL_USE_TLDS = frozenset(SPECIAL_USE_DOMAIN_NAMES)


def _common_email(candidate: str) -> str | None:
    lowered = candidate.lower()
    if len(lowered) > 254 or not _COMMON_EMAIL.fullmatch(lowered):
        return None
    domain = lowered.rpartition("@")[2]
    if "--" in domain or domain.rpartition(".")[2] in _SPECIAL_USE_TLDS:
        return None  # IDNA rules and special-use names: let email-validator decide
    return lowered


def normalise_email(value: str) -> str:
    candidate = value.strip()
    fast = _common_email(candidate)
    if fast is not None:
        return fast
    try:
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError:
        raise InvalidIdentity("not a valid e-mail address") from None
    # Local parts are case-sensitive in theory and never in practice; matching must not miss.
    return checked.normalized.lower()


def normalise_phone(value: str, default_region: str) -> str:
    try:
        parsed = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidIdentity("not a phone number") from None
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidIdentity("not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_external_id(value: str) -> str:
    text = unicodedata.normalize("NFC", value.strip())
    if not text or len(text) > 200:
        raise InvalidIdentity("an external id must be 1 to 200 characters")
    return text


def normalise(kind: IdentityKind, value: str, default_region: str = "GB") -> str:
    if kind is IdentityKind.EMAIL:
        return normalise_email(value)
    if kind is IdentityKind.PHONE:
        return normalise_phone(value, default_region)
    return normalise_external_id(value)
