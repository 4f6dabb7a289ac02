"""Permissions are declared here, not sprinkled: one enum of scopes, one table of roles."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    SUBJECTS_READ = "subjects:read"
    SUBJECTS_WRITE = "subjects:write"
    SUBJECTS_ERASE = "subjects:erase"
    SUBJECTS_EXPORT = "subjects:export"
    AUDIT_READ = "audit:read"
    USERS_MANAGE = "users:manage"
    APIKEYS_MANAGE = "apikeys:manage"
    PURPOSES_READ = "purposes:read"  # purposes, collection points, topics
    PURPOSES_WRITE = "purposes:write"
    NOTICES_READ = "notices:read"
    NOTICES_WRITE = "notices:write"
    CONSENT_READ = "consent:read"  # ledger, relationships, objections, privacy state
    CONSENT_WRITE = "consent:write"
    GATE_CHECK = "gate:check"
    PREFERENCES_READ = "preferences:read"  # preferences, suppression list
    PREFERENCES_WRITE = "preferences:write"
    CAMPAIGNS_SEND = "campaigns:send"
    REPORTS_READ = "reports:read"
    REQUESTS_READ = "requests:read"  # rights requests
    REQUESTS_WRITE = "requests:write"
    WEBHOOKS_MANAGE = "webhooks:manage"  # webhook endpoints, recipients
    # The bodies of messages in the outbox: they hold what was sent to people — download,
    # verification and status links, codes — so reading one is acting as its addressee.
    MAIL_READ = "mail:read"


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    PRIVACY_OFFICER = "privacy_officer"
    AGENT = "agent"
    VIEWER = "viewer"


ALL_SCOPES: frozenset[Scope] = frozenset(Scope)

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.OWNER: ALL_SCOPES,
    Role.ADMIN: ALL_SCOPES,
    # Everything but managing staff and keys.
    Role.PRIVACY_OFFICER: ALL_SCOPES - {Scope.USERS_MANAGE, Scope.APIKEYS_MANAGE},
    # Support staff work with contacts and record what people tell them (a consent given on
    # the phone, an opt-out) but cannot erase, export or change the configuration.
    Role.AGENT: frozenset(
        {
            Scope.SUBJECTS_READ,
            Scope.SUBJECTS_WRITE,
            Scope.PURPOSES_READ,
            Scope.NOTICES_READ,
            Scope.CONSENT_READ,
            Scope.CONSENT_WRITE,
            Scope.GATE_CHECK,
            Scope.PREFERENCES_READ,
            Scope.PREFERENCES_WRITE,
            Scope.REQUESTS_READ,
            Scope.REQUESTS_WRITE,
        }
    ),
    Role.VIEWER: frozenset(
        {
            Scope.SUBJECTS_READ,
            Scope.PURPOSES_READ,
            Scope.NOTICES_READ,
            Scope.CONSENT_READ,
            Scope.PREFERENCES_READ,
        }
    ),
}


def parse_scopes(values: list[str]) -> frozenset[Scope]:
    """Parse scope names; `*` means every scope. Raises ValueError naming the unknown one."""
    out: set[Scope] = set()
    for raw in values:
        for part in raw.replace(",", " ").split():
            if part == "*":
                out |= ALL_SCOPES
                continue
            try:
                out.add(Scope(part))
            except ValueError:
                known = ", ".join(s.value for s in Scope)
                raise ValueError(f"unknown scope {part!r} (known: {known})") from None
    return frozenset(out)
