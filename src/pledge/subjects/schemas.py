"""API shapes of the subject vault."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from pledge.core.validation import InstantIn
from pledge.subjects.models import STANDARD_CLASS, DataSource, InteractionKind


class FieldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, examples=["first_name"])
    value: str = Field(min_length=1, max_length=10_000)
    category: str | None = Field(
        default=None,
        max_length=120,
        description="Fides data category; optional for email, phone, external_id",
    )
    source: DataSource = DataSource.DIRECT
    retention_class: str = Field(default=STANDARD_CLASS, max_length=40)


class SubjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fields: list[FieldIn] = Field(min_length=1, max_length=200)


class FieldUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(min_length=1, max_length=10_000)
    category: str | None = Field(default=None, max_length=120)
    source: DataSource = DataSource.DIRECT
    retention_class: str = Field(default=STANDARD_CLASS, max_length=40)


class FieldOut(BaseModel):
    name: str
    value: str
    category: str
    source: str
    retention_class: str
    updated_at: datetime


class SubjectOut(BaseModel):
    id: str
    status: str
    created_at: datetime
    updated_at: datetime
    erased_at: datetime | None
    fields: list[FieldOut]


class SubjectSummary(BaseModel):
    id: str
    status: str
    created_at: datetime
    updated_at: datetime


class SubjectPage(BaseModel):
    items: list[SubjectSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null at the end"
    )


class SubjectSearch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    external_id: str | None = Field(default=None, max_length=200)


class SubjectCreated(BaseModel):
    id: str


class InteractionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: InteractionKind
    occurred_at: InstantIn
    category: str = Field(max_length=120, examples=["user.content.private"])
    source: DataSource = DataSource.DIRECT
    retention_class: str = Field(default=STANDARD_CLASS, max_length=40)
    payload: dict[str, Any]


class InteractionOut(BaseModel):
    id: str
    kind: str
    occurred_at: datetime
    category: str
    source: str
    retention_class: str
    payload: dict[str, Any] | None


class ExportedField(BaseModel):
    name: str
    value: str
    category: str
    source: str
    retention_class: str
    updated_at: str  # ISO 8601


class ExportedInteraction(BaseModel):
    id: str
    kind: str
    occurred_at: str  # ISO 8601
    category: str
    source: str
    retention_class: str
    payload: dict[str, Any] | None


class SubjectExport(BaseModel):
    """The subject's whole record, decrypted."""

    subject_id: str
    status: str
    created_at: str  # ISO 8601
    updated_at: str
    fields: list[ExportedField]
    interactions: list[ExportedInteraction]


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep_classes: list[str] = Field(
        default_factory=list,
        description="Retention classes kept under a legal duty (their data survives the erasure)",
    )
    erase_exempt: StrictBool = Field(
        default=False,
        description="Also erase the retention classes the tenant keeps on every erasure "
        "(exempt_on_erasure): their legal period is over. Without it they are kept",
    )


class ErasureOut(BaseModel):
    subject_id: str
    status: str
    shredded_classes: list[str]
    kept_classes: list[str]
    records_deleted: int
    interactions_deleted: int
