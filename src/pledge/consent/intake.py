"""Intake through a collection point: the subject, the purposes the point collects for, the
consents the person gave there, and the signals their browser sent — in one transaction,
all or nothing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from pledge.access.context import TenantContext
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent import privacy_state
from pledge.consent import service as consent
from pledge.consent.models import ConsentAction
from pledge.consent.service import NO_SIGNALS, ConsentInput, Signals
from pledge.core.clock import utcnow
from pledge.core.errors import InvalidInput
from pledge.notices import service as notices
from pledge.purposes import service as purposes
from pledge.purposes.models import LawfulBasis
from pledge.signals import service as signals_service
from pledge.subjects import reading
from pledge.subjects import service as subjects
from pledge.subjects.identity import IDENTITY_FIELDS, IdentityKind


@dataclass(frozen=True)
class ConsentChoice:
    """One consent checkbox of a form, as the person left it."""

    purpose: str
    checked: bool
    prechecked: bool = False


@dataclass(frozen=True)
class Collected:
    subject_id: uuid.UUID
    created: bool
    relationships: list[str]
    consents: list[str]
    signal_effects: list[str]


def _existing_subject(
    ctx: TenantContext, fields: Sequence[subjects.FieldInput]
) -> uuid.UUID | None:
    by_name = {f.name: f.value for f in fields}
    for kind, (name, _category) in IDENTITY_FIELDS.items():
        if name in by_name:
            found = reading.find_subject_id(ctx, IdentityKind(kind), by_name[name])
            if found is not None:
                return found
    return None


def _add_missing_fields(
    ctx: TenantContext, subject_id: uuid.UUID, fields: Sequence[subjects.FieldInput]
) -> None:
    """Add to a known person's record what it lacks; never change what it holds. A form is
    public: anyone who knows someone's address can submit it, and their name or phone must
    not replace the person's own (a correction is a rectification, GDPR Art. 16, checked).

    For the same reason a date of birth added here marks nobody a child: a stranger's child's
    date would stop a known adult's consented mail, or under `erase_on_discovery` erase their
    whole record, with no check. It is stored as any added field; staff or the API (who are
    authenticated) mark the person by rectifying it. A new person's date is read at the
    door (`subjects.create_subject`)."""
    held = {f.name for f in reading.read_subject(ctx, subject_id, audited=False).fields}
    for item in fields:
        if item.name not in held:
            subjects.rectify_field(ctx, subject_id, item, marks_child=False)


def collect(
    ctx: TenantContext,
    point_slug: str,
    fields: Sequence[subjects.FieldInput],
    choices: Sequence[ConsentChoice] = (),
    signals: Signals = NO_SIGNALS,
    *,
    method: str = "web_form",
    language: str = "en",
) -> Collected:
    point = purposes.get_collection_point(ctx, point_slug)
    collects = {
        p.slug: (p, wording) for p, wording in purposes.collection_point_purposes(ctx, point)
    }
    for choice in choices:
        purpose, _ = collects.get(choice.purpose, (None, None))
        if purpose is None:
            raise InvalidInput(
                f"collection point {point.slug!r} does not collect for {choice.purpose[:60]!r}"
            )
        if purpose.lawful_basis != LawfulBasis.CONSENT.value:
            raise InvalidInput(
                f"purpose {purpose.slug!r} is not based on consent: it has no checkbox"
            )
        if choice.prechecked:
            # Refuse the whole submission: nothing half-written (seed 000, recital 32).
            raise InvalidInput(
                f"the consent box for {purpose.slug!r} was pre-checked: that is not consent"
            )
    existing = _existing_subject(ctx, fields)
    if existing is None:
        try:
            subject_id = subjects.create_subject(ctx, fields)
        except subjects.SubjectExists as exc:
            # The same person submitted at once (a double click): the other submission
            # created them meanwhile; this one finds them.
            existing = exc.subject_id
    if existing is not None:
        subject_id = existing
        # Held before the first entry (`privacy_state.hold_person`): what follows audits a
        # field added, a relationship or a consent, then writes the person's row (GPC's
        # opt-out of sale), and the lock order on PostgreSQL is the person's row, then the
        # audit chain's head — a correction writing the row and then auditing waited for
        # this intake as it waited for the correction (a deadlock). A new person is this
        # transaction's own: nobody else sees them before the commit.
        privacy_state.hold_person(ctx, subject_id)
        _add_missing_fields(ctx, subject_id, fields)
    relationships: list[str] = []
    given: list[str] = []
    for slug, (purpose, _wording) in collects.items():
        if purpose.lawful_basis != LawfulBasis.CONSENT.value:
            consent.add_relationship(ctx, subject_id, slug, collection_point=point)
            relationships.append(slug)
    for choice in choices:
        if not choice.checked:
            continue  # an unticked box is no consent: nothing to record
        purpose, wording_notice = collects[choice.purpose]
        version = notices.current_version(ctx, wording_notice, language) if wording_notice else None
        if version is None:
            raise InvalidInput(f"no consent wording in force for {purpose.slug!r}")
        consent.record_consent(
            ctx,
            subject_id,
            ConsentInput(purpose.slug, ConsentAction.GRANT.value, method, version.id, point.slug),
            signals,
        )
        given.append(purpose.slug)
    effects = signals_service.apply_to_subject(ctx, subject_id, signals)
    audit.record(
        ctx,
        AuditEvent.SUBJECT_COLLECTED,
        subject_id=subject_id,
        details={
            "collection_point": point.slug,
            "created": existing is None,
            "relationships": relationships,
            "consents": given,
            "at": utcnow().isoformat(),
        },
    )
    return Collected(subject_id, existing is None, relationships, given, effects)
