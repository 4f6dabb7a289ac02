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
