from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from pledge.core.db import ID, Base, UTCDateTime


class BrowserSignal(Base):
    """The signals of a browser not (yet) tied to a subject, by its consent-id cookie. The
    cookie value is kept only as a keyed hash; the row carries no personal value."""

    __tablename__ = "browser_signals"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    browser_index: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    gpc: Mapped[bool] = mapped_column(Boolean, default=False)
    dnt: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    subject_id: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
