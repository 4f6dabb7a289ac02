"""Normal forms of identities: two spellings of one address must give one blind index."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pledge.subjects.categories import check_category, describe
from pledge.subjects.identity import InvalidIdentity, normalise_email, normalise_phone


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Jane.Doe@Example.COM", "jane.doe@example.com"),
        ("  jane.doe@example.com\t", "jane.doe@example.com"),
        ("jane+news@sub.example.co.uk", "jane+news@sub.example.co.uk"),
        ("JÖRG@bücher.example", "jörg@bücher.example"),
    ],
)
def test_email_normal_form(raw: str, normal: str) -> None:
    assert normalise_email(raw) == normal


@pytest.mark.parametrize(
    "raw", ["", "plainaddress", "a@", "@b.example", "a b@example.com", "a@b@c.example"]
)
def test_invalid_emails_are_refused_without_echoing_them(raw: str) -> None:
    with pytest.raises(InvalidIdentity) as info:
        normalise_email(raw)
    assert raw.strip() == "" or raw not in str(info.value)


@pytest.mark.parametrize(
    ("raw", "region", "normal"),
    [
        ("07700 900123", "GB", "+447700900123"),
        ("+44 (0)7700-900123", "US", "+447700900123"),
        ("(202) 555-0143", "US", "+12025550143"),
        ("+1 202 555 0143", "GB", "+12025550143"),
    ],
)
def test_phone_normal_form_is_e164(raw: str, region: str, normal: str) -> None:
    assert normalise_phone(raw, region) == normal


@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=20).filter(
        lambda s: s[0].isalnum() and s[-1].isalnum() and ".." not in s
    )
)
def test_case_never_changes_the_normal_form(local: str) -> None:
    address = f"{local}@Example.ORG"
    assert (
        normalise_email(address)
        == normalise_email(address.upper())
        == normalise_email(address.lower())
    )


def test_categories_follow_the_fides_taxonomy() -> None:
    assert check_category("user.contact.email") is None
    assert check_category("user.financial.invoice_number") is None  # extends a known category
    assert check_category("user.contact") is None
    assert check_category("contact.email") is not None
    assert check_category("user.Contact") is not None
    assert check_category("user.shoe_size") is not None
    assert describe("user.biometric.voice").sensitive
    assert not describe("user.contact.email").sensitive
    assert describe("user.financial.invoice_number").label == "user.financial.invoice_number"


def _slow(value: str) -> str | None:
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


_ATOMS = st.text(alphabet="abcXYZ019._+-!#%&'*/=?^`{|}~@\"() ", min_size=0, max_size=12)
_LABELS = st.text(alphabet="abcxnXN019-_.", min_size=0, max_size=14)
_TLDS = st.sampled_from(
    ["com", "org", "co", "uk", "test", "local", "onion", "x", "c0m", "museum", "invalid"]
)


@given(
    st.one_of(
        st.emails(),
        st.builds(lambda a, b, t: f"{a}@{b}.{t}", _ATOMS, _LABELS, _TLDS),
        st.builds(lambda a, b: f" {a}@{b} ", _ATOMS, _LABELS),
        st.text(max_size=40),
    )
)
def test_the_fast_path_agrees_with_email_validator(address: str) -> None:
    """Whatever normalise_email accepts, email-validator accepts with the same normal form,
    and whatever email-validator rejects, normalise_email rejects."""
    expected = _slow(address)
    try:
        got: str | None = normalise_email(address)
    except InvalidIdentity:
        got = None
    assert got == expected, address
