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
    Role.PRIVACY_OFFICER: frozenset(
        {
            Scope.SUBJECTS_READ,
            Scope.SUBJECTS_WRITE,
            Scope.SUBJECTS_ERASE,
            Scope.SUBJECTS_EXPORT,
            Scope.AUDIT_READ,
        }
    ),
    # Support staff work with contacts but cannot erase or bulk-export them.
    Role.AGENT: frozenset({Scope.SUBJECTS_READ, Scope.SUBJECTS_WRITE}),
    Role.VIEWER: frozenset({Scope.SUBJECTS_READ}),
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
