from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from pledge.core.db import ID, Base, JSONType, UTCDateTime


class AuditEntry(Base):
    """One link of a tenant's chain. `mac` = HMAC(tenant audit key, prev_mac ‖ canonical
    content); the content references subjects by id and never holds a personal value."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_subject", "tenant_id", "subject_id", "seq"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    event: Mapped[str] = mapped_column(String(64))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # No foreign key: the trail outlives every row it talks about.
    subject_id: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType)
    prev_mac: Mapped[bytes] = mapped_column(LargeBinary(32))
    mac: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditHead(Base):
    """The chain's last link per tenant. Appends lock this row, so links are strictly ordered,
    and `verify` compares the chain's end with it to catch entries cut from the end. It lives
    in the data store, so a cut can rewind it too: the keystore's checkpoint
    (`AuditCheckpoint`) catches that, up to the last checkpoint taken."""

    __tablename__ = "audit_heads"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger)
    mac: Mapped[bytes] = mapped_column(LargeBinary(32))
