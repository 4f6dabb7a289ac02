"""Audit event types: a fixed, stable enum. Values are stored; never rename one."""

from __future__ import annotations

from enum import StrEnum


class AuditEvent(StrEnum):
    TENANT_CREATED = "tenant.created"
    USER_CREATED = "user.created"
    USER_LOGIN = "user.login"
    USER_LOGIN_FAILED = "user.login_failed"
    USER_LOGOUT = "user.logout"
    USER_TOTP_ENABLED = "user.totp_enabled"
    USER_PASSWORD_CHANGED = "user.password_changed"  # noqa: S105 - an event name
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    SUBJECT_CREATED = "subject.created"
    SUBJECT_VIEWED = "subject.viewed"
    SUBJECTS_LISTED = "subjects.listed"
    SUBJECT_FIELD_RECTIFIED = "subject.field_rectified"
    SUBJECT_EXPORTED = "subject.exported"
    SUBJECT_ERASED = "subject.erased"
    SUBJECTS_IMPORTED = "subjects.imported"
    INTERACTION_ADDED = "interaction.added"
    AUDIT_VERIFIED = "audit.verified"
