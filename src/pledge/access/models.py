from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from pledge.core.db import ID, Base, JSONType, UTCDateTime
from pledge.core.ids import new_id


class User(Base):
    """Tenant staff. The e-mail is personal data too: encrypted, found by its blind index."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "email_index"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    email_index: Mapped[bytes] = mapped_column(LargeBinary(32))
    email_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    totp_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The last accepted TOTP time step: a code is good once (RFC 6238 §5.2).
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ApiKey(Base):
    """A tenant's API key. The secret is shown once and stored as a SHA-256 digest: it is 256
    random bits, so a slow password hash would add latency to every call and no security."""

    __tablename__ = "api_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    secret_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    scopes: Mapped[list[str]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LoginSession(Base):
    """A page session. The cookie carries tenant id, session id and a secret; the secret is
    stored as a digest so a copy of the table cannot be replayed."""

    __tablename__ = "login_sessions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ID)
    secret_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    # True until the second factor is given, when the tenant or the user requires one.
    needs_second_factor: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IdempotentCall(Base):
    """The answer to an API call sent with an `Idempotency-Key`, kept for a day: a client
    that sends the call again (its connection dropped before the answer came) gets the same
    answer, and nothing is done twice. The key is stored as a keyed digest of the key, the
    API key that sent it and the route; the answer sealed under a tenant key."""

    __tablename__ = "idempotent_calls"
    __table_args__ = (Index("ix_idempotent_calls_expiry", "tenant_id", "expires_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    key_digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    body_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    answer_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StaffInvitation(Base):
    """An invitation to join a tenant's staff with a role, good once and for 72 hours.

    The link's secret is shown once to whoever invited and stored as a SHA-256 digest (256
    random bits, as API keys'); the invitee's e-mail is sealed and blind-indexed as a user's.
    `user_id` is the account the invitation became. Who invited — a user, an API key, or
    neither (the operator, from the CLI) — is kept: the link is refused once they could no
    longer grant the role (disabled, demoted, revoked)."""

    __tablename__ = "staff_invitations"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "invited_by_user_id"],
            ["users.tenant_id", "users.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "invited_by_key_id"],
            ["api_keys.tenant_id", "api_keys.id"],
            ondelete="CASCADE",
        ),
        Index("ix_staff_invitations_email", "tenant_id", "email_index"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    email_index: Mapped[bytes] = mapped_column(LargeBinary(32))
    email_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    role: Mapped[str] = mapped_column(String(32))
    secret_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Set when a newer invitation to the same address replaces this one, or when revoked.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
    invited_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
    invited_by_key_id: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
