"""API shapes of notices and their versions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from pledge.core.validation import AwareInstantIn
from pledge.notices.models import NoticeKind
from pledge.notices.service import MAX_TEXT
from pledge.purposes.schemas import SLUG


class NoticeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=SLUG, examples=["newsletter-consent"])
    kind: NoticeKind = Field(
        description="privacy_notice: the policy; consent_wording: the words by a checkbox"
    )
    title: str = Field(min_length=1, max_length=200)


class VersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT, description="The exact text shown")
    language: str = Field(default="en", max_length=16, examples=["en", "en-GB"])
    effective_at: AwareInstantIn | None = Field(
        default=None, description="When it takes effect (default: now)"
    )
    summary: str = Field(default="", max_length=5000, description="What changed")
    material: StrictBool = Field(
        default=False,
        description="A material change: announced to the people it affects, before it applies "
        "when `effective_at` is in the future, else at the next worker cycle",
    )


class VersionSummary(BaseModel):
    id: str
    version: int
    language: str
    sha256: str = Field(description="SHA-256 of the exact UTF-8 text")
    effective_at: datetime
    summary: str
    material: bool
    created_at: datetime
    in_force: bool = Field(description="The version in force now for its language")


class VersionOut(VersionSummary):
    notice: str
    kind: str
    text: str


class NoticeOut(BaseModel):
    id: str
    slug: str
    kind: str
    title: str
    created_at: datetime
    languages: list[str]
    versions: list[VersionSummary] = Field(description="Every version, by language then number")


DiffOp = Literal["same", "added", "removed"]
DIFF_OPS: dict[str, DiffOp] = {" ": "same", "+": "added", "-": "removed"}


class DiffLine(BaseModel):
    op: DiffOp
    text: str


class DiffOut(BaseModel):
    notice: str
    from_version: VersionSummary
    to_version: VersionSummary
    added: int
    removed: int
    lines: list[DiffLine]
