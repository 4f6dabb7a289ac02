"""Jurisdictions a tenant operates in. Codes are stable: they key the deadline rules later."""

from __future__ import annotations

from enum import StrEnum


class Jurisdiction(StrEnum):
    EU = "EU"  # GDPR
    UK = "UK"  # UK GDPR / DPA 2018
    CH = "CH"  # nFADP
    AU = "AU"  # Privacy Act 1988 (APPs)
    US_CA = "US-CA"  # CCPA/CPRA
    US_VA = "US-VA"  # VCDPA
    US_CO = "US-CO"  # CPA
    US_CT = "US-CT"  # CTDPA
    US_UT = "US-UT"  # UCPA


# The countries (ISO 3166-1 alpha-2) of a tenant's region, for telling transfers (GDPR Art.
# 15(2), Art. 44–49): data going to a recipient in a country outside the set is a transfer.
EU_MEMBER_STATES = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "GR", "DE", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
    }
)  # fmt: skip
# GDPR applies across the EEA (the EEA Agreement takes it in): Iceland, Liechtenstein and
# Norway are no third countries for an EU tenant.
EEA = EU_MEMBER_STATES | {"IS", "LI", "NO"}
REGION_COUNTRIES: dict[str, frozenset[str]] = {
    "EU": EEA,
    "EEA": EEA,
    # The UK only: Jersey, Guernsey and the Isle of Man are Crown Dependencies with their own
    # data protection laws, outside UK GDPR — data sent there is a transfer (one the UK's
    # adequacy regulations cover, recorded as such on the recipient).
    "UK": frozenset({"GB"}),
    # Switzerland only: Liechtenstein is in the EEA, not under the nFADP (the Federal
    # Council's list of adequate countries names it).
    "CH": frozenset({"CH"}),
    "US": frozenset({"US"}),
    "AU": frozenset({"AU"}),
}
# Codes written for a country outside ISO 3166-1: the EU's own "EL" for Greece, "UK".
COUNTRY_ALIASES = {"EL": "GR", "UK": "GB"}


def country_code(code: str) -> str:
    """`code` as ISO 3166-1 alpha-2, upper-case ("uk" → "GB")."""
    code = code.strip().upper()
    return COUNTRY_ALIASES.get(code, code)


def countries_of_region(region: str) -> frozenset[str]:
    """The countries of a tenant's (hosting) region: a named region ("EU", "UK", …; one with a
    state after a hyphen, "US-CA", is its country's), or a two-letter country code. An
    unknown region has none: every recipient is then told as a transfer — telling too much
    rather than hiding one."""
    name = region.strip().upper()
    known = REGION_COUNTRIES.get(name) or REGION_COUNTRIES.get(name.split("-", 1)[0])
    if known is not None:
        return known
    if len(name) == 2 and name.isalpha():
        return frozenset({country_code(name)})
    return frozenset()


def is_transfer(region: str, country: str) -> bool:
    """Whether data sent to a recipient in `country` leaves the tenant's `region`."""
    return country_code(country) not in countries_of_region(region)
