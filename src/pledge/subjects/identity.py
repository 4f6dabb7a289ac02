"""Identity values (e-mail, phone, external id): validation and the normal form whose keyed
hash is the blind index. Two spellings of one address must give one index."""

from __future__ import annotations

import unicodedata
from enum import StrEnum

import phonenumbers
from email_validator import EmailNotValidError, validate_email


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


def normalise_email(value: str) -> str:
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
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
