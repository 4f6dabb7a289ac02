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
    # Lawfulness and consent
    PURPOSE_CHANGED = "purpose.changed"
    COLLECTION_POINT_CHANGED = "collection_point.changed"
    NOTICE_PUBLISHED = "notice.published"
    NOTICE_ANNOUNCED = "notice.announced"
    SUBJECT_COLLECTED = "subject.collected"
    CONSENT_GRANTED = "consent.granted"
    CONSENT_WITHDRAWN = "consent.withdrawn"
    CONSENT_RECEIPT_VERIFIED = "consent.receipt_verified"
    RELATIONSHIP_CHANGED = "relationship.changed"
    OBJECTION_RECORDED = "objection.recorded"
    OBJECTION_OVERRIDDEN = "objection.overridden"
    PRIVACY_STATE_CHANGED = "privacy_state.changed"
    SIGNAL_RECEIVED = "signal.received"
    GATE_CHECKED = "gate.checked"
    AUDIENCE_BUILT = "gate.audience_built"
    PREFERENCE_CHANGED = "preference.changed"
    UNSUBSCRIBED = "preference.unsubscribed"
    SUPPRESSION_ADDED = "suppression.added"
    CAMPAIGN_SENT = "campaign.sent"
    MAIL_QUEUED = "mail.queued"
    HYGIENE_REPORTED = "hygiene.reported"
