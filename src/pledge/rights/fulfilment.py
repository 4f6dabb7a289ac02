"""Fulfilment: what each request type does, as the seeds promise, and the letter that says so.

`start` moves a verified request into progress (and, for a rectification, restricts
processing while accuracy is checked); `fulfil` does the work and completes or denies it;
`deny` refuses with reasons and the right to complain.
"""

from __future__ import annotations

import json
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.audit import service as audit
from pledge.consent import privacy_state
from pledge.consent import service as consent
from pledge.consent.models import ConsentMethod
from pledge.core.clock import utcnow
from pledge.core.errors import Conflict, InvalidInput, SubjectErased
from pledge.purposes import service as purposes
from pledge.purposes.models import LawfulBasis
from pledge.rights import bundle, downloads, immediate, letters, transitions
from pledge.rights import service as rights
from pledge.rights.models import Recipient, RequestState, RequestType, RightsRequest
from pledge.subjects import erasure, reading, retention
from pledge.subjects import service as subjects
from pledge.subjects.models import STANDARD_CLASS, SubjectStatus
from pledge.subjects.service import FieldInput
from pledge.webhooks import service as webhooks

S = RequestState
T = RequestType


@dataclass
class StaffInput:
    """What staff decide while fulfilling."""

    approve: bool = True  # rectification: the proposed values are accurate
    holds: dict[str, str] = field(default_factory=dict)  # erasure: class → why it is kept
    purposes: list[str] = field(default_factory=list)  # objection / withdrawal: which purposes
    compelling_grounds: dict[str, str] = field(default_factory=dict)  # objection overrides
    note: str = ""  # automated decision: the human review's outcome; a denial's reason
    transfer_url: str = ""  # portability: the other organisation's endpoint


@dataclass(frozen=True)
class Result:
    state: str
    outcome: str
    kept: list[str] = field(default_factory=list)
    download_url: str | None = None


def start(ctx: TenantContext, request: RightsRequest) -> RightsRequest:
    if RequestState(request.state) is not S.VERIFIED:
        raise Conflict("only a verified request can be started")
    transitions.lock(ctx, request)
    hold_person(ctx, request)  # a correction restricts the person: before the entry
    transitions.transition(ctx, request, S.IN_PROGRESS, "started")
    restrict_for_checking(ctx, request)
    if request.type == T.AUTOMATED_DECISION.value:
        rights.update_private(ctx, request, review="pending")  # a human-review task
    return request


def deny(ctx: TenantContext, request: RightsRequest, reason_code: str, reason: str) -> Result:
    if len(reason.strip()) < 10:
        raise InvalidInput(
            "explain the refusal: the reasons are sent to the requester (GDPR Art. 12(4))"
        )
    transitions.lock(ctx, request)  # a second answer at once finds the first
    told = reason.strip()
    if _end_accuracy_restriction(ctx, request):
        told = f"{told.rstrip('.')}. {ACCURACY_RESTRICTION_LIFTED}"
    request.outcome_code = reason_code[:40]
    transitions.transition(ctx, request, S.DENIED, "denied", {"reason": reason_code[:40]})
    letters.send(ctx, request, "denied", reason=told)
    return Result(S.DENIED.value, reason.strip())


def _complete(
    ctx: TenantContext,
    request: RightsRequest,
    outcome: str,
    code: str,
    *,
    audited: dict[str, Any] | None = None,
    **letter: Any,
) -> Result:
    """`audited`: what the fulfilment entry adds (counts, never personal data)."""
    request.outcome_code = code
    # The transition, the letter and the fulfilment, audited in this order, in one append.
    entries: list[audit.PendingEntry] = []
    transitions.transition(
        ctx, request, S.COMPLETED, "completed", {"outcome": code}, pending=entries
    )
    letters.send_pending(ctx, request, "completed", entries, outcome=outcome, **letter)
    entries.append(transitions.fulfilled_entry(request, audited))
    audit.record_many(ctx, entries)
    return Result(S.COMPLETED.value, outcome, letter.get("kept", []), letter.get("download_url"))


def fulfil(ctx: TenantContext, request: RightsRequest, data: StaffInput | None = None) -> Result:
    staff = data or StaffInput()
    # Locked before any work: a second fulfilment at once waits, then finds it answered
    # (Conflict) — not a second bundle, letter or webhook.
    transitions.lock(ctx, request)
    hold_person(ctx, request)
    state = RequestState(request.state)
    if state is S.VERIFIED:
        start(ctx, request)
    elif state is not S.IN_PROGRESS:
        raise Conflict(f"a request that is {state.value.replace('_', ' ')} cannot be fulfilled")
    rtype = RequestType(request.type)
    subject = (
        None if request.subject_id is None else subjects.get_subject_row(ctx, request.subject_id)
    )
    if subject is None or subject.status == SubjectStatus.ERASED.value:
        # Erased since a correction started: its ground ends with it all the same (a ground
        # left behind would name a request nobody lifts it from).
        _end_accuracy_restriction(ctx, request)
        return _complete(ctx, request, *immediate.NO_DATA)
    # `subject` stays referenced while the handler runs: the session holds unchanged rows
    # weakly, and a handler reading it again would load it again.
    return HANDLERS[rtype](ctx, request, subject.id, staff)


# The types whose answer writes the person's row (an erasure, a restriction and the one while
# a correction is checked, an opt-out of sale, a limit) or a row referring to it (a consent
# withdrawn, an objection, a field corrected).
WRITES_PERSON = frozenset(
    {
        T.ERASURE,
        T.RECTIFICATION,
        T.RESTRICTION,
        T.OBJECTION,
        T.OPT_OUT_SALE,
        T.LIMIT_SENSITIVE,
        T.WITHDRAW_CONSENT,
    }
)


def hold_person(ctx: TenantContext, request: RightsRequest) -> None:
    """The person a request of theirs is about to write, held (`privacy_state.hold_person`)
    after the request and before the step's first audit entry: the lock order on PostgreSQL
    is the tenant row, request rows, the person's row, then the audit chain's head. A
    change of the privacy state holds the person, then audits; a step that audited first
    (the request started, its answer) and then wrote the person waited for that change as
    it waited for the step (a deadlock)."""
    if request.subject_id is not None and RequestType(request.type) in WRITES_PERSON:
        privacy_state.hold_person(ctx, request.subject_id)


# ---------------------------------------------------------------------------------------------
# Per type


def _access(
    ctx: TenantContext, request: RightsRequest, subject_id: uuid.UUID, staff: StaffInput
) -> Result:
    content = bundle.build(ctx, subject_id, request.jurisdiction, reference=request.reference)
    artifact = letters.store_artifact(
        ctx,
        request,
        kind="bundle",
        name=f"your-data-{request.reference}.zip",
        media_type="application/zip",
        content=content,
    )
    link = downloads.create(ctx, request, artifact)
    return _complete(
        ctx,
        request,
        "Your data, and what we do with it, is in the file linked below (JSON, CSV and a "
        "readable page).",
        "bundle_ready",
        download_url=link.url,
        download_expires=link.expires_at,
    )


def _access_categories(
    ctx: TenantContext, request: RightsRequest, subject_id: uuid.UUID, staff: StaffInput
) -> Result:
    record = reading.export_subject(ctx, subject_id)
    info = bundle.art15_information(ctx, subject_id, record, request.jurisdiction)
    lines = ["Categories of personal information we hold about you:"]
    lines += [f"  - {c['label']}" for c in info["categories"]]
    lines += ["Where it comes from: " + ", ".join(s.replace("_", " ") for s in info["sources"])]
    lines += ["Why we use it:"] + [
        f"  - {p['purpose']} ({p['lawful_basis']})" for p in info["purposes"]
    ]
    lines += [
        "Who receives it: "
        + (", ".join(r["name"] for r in info["recipients"]) or "no one outside us")
    ]
    return _complete(ctx, request, "\n".join(lines), "categories_sent")


def _portability(
    ctx: TenantContext, request: RightsRequest, subject_id: uuid.UUID, staff: StaffInput
) -> Result:
    law = PORTABILITY_CONDITIONS.get(request.jurisdiction)
    provided_only = law is not None or request.jurisdiction in PROVIDED_ONLY
    data = (
        bundle.portable_data(ctx, subject_id)
        if law is not None
        else _portable_copy(ctx, subject_id, provided_only=provided_only)
    )
    if not data["fields"]:
        return deny(ctx, request, "not_portable", _not_portable(law, provided_only))
    content = json.dumps(data, ensure_ascii=False, indent=1).encode()
    artifact = letters.store_artifact(
        ctx,
        request,
        kind="bundle",
        name=f"portable-{request.reference}.json",
        media_type="application/json",
        content=content,
    )
    transferred = ""
    if staff.transfer_url:
        downloads.transfer(ctx, request, staff.transfer_url, data)
        # Queued: sent after the commit, retried for a day; a failure for good is on the
        # request's timeline (`workflow.delivery_failed`), not known when this is written.
        transferred = " We are also sending it, signed, to the organisation you named."
    link = downloads.create(ctx, request, artifact)
    return _complete(
        ctx,
        request,
        f"The data {'you provided to us' if provided_only else 'we hold about you'} is in "
        f"the file linked below, in a machine-readable format.{transferred}",
        "portable_ready",
        download_url=link.url,
        download_expires=link.expires_at,
    )


# Where the right covers only what the person provided, on their consent or a contract
# (seed 004: "collected from you based on consent or for the reason of entering into a
# contract"): the law that says so, quoted in a refusal.
PORTABILITY_CONDITIONS = {
    "EU": "GDPR Art. 20(1)(a)",
    "UK": "UK GDPR Art. 20(1)(a)",
    "CH": "nFADP Art. 28",
}
# Elsewhere portability is the access right's copy in a portable format, whatever the lawful
# basis (LAW.md; Colorado CPA 6-1-1306(1)(e), Connecticut, California 1798.130): all the
# personal data held — in Virginia (59.1-577 A 4) and Utah (13-61-201(3)) what the
# consumer "previously provided".
PROVIDED_ONLY = frozenset({"US-VA", "US-UT"})


def _portable_copy(
    ctx: TenantContext, subject_id: uuid.UUID, *, provided_only: bool
) -> dict[str, Any]:
    """The person's data for a portability request with no lawful-basis condition: every
    field held, or (`provided_only`) those the person gave (source "direct")."""
    view = reading.read_subject(ctx, subject_id, audited=False)
    fields = [f for f in view.fields if not provided_only or f.source == "direct"]
    return {
        "format": "pledge-portable-v1",
        "fields": [{"name": f.name, "value": f.value, "category": f.category} for f in fields],
    }


def _not_portable(law: str | None, provided_only: bool) -> str:
    """Why nothing is portable, told to the requester in the law that applies to them."""
    if not provided_only:  # the right covers all that is held: there is none
        return "we hold no personal data about you."
    if law is not None:
        return (
            "the data we hold about you is held on our legitimate interests, not on your "
            "consent or a contract with you, and is not covered by the right to data "
            f"portability ({law}). You may ask for a copy of it with an access request."
        )
    return (
        "we hold no personal data you provided to us, which is what the right to a portable "
        "copy covers. You may ask for a copy of what we hold with an access request."
    )


def _recipients(ctx: TenantContext) -> list[tuple[uuid.UUID, str]]:
    return [
        (r.id, r.webhook_url)
        for r in ctx.session.scalars(
            for_tenant(select(Recipient), Recipient, ctx.tenant_id).where(
                Recipient.active.is_(True)
            )
        )
        if r.webhook_url
    ]


def _identities(ctx: TenantContext, subject_id: uuid.UUID) -> dict[str, str]:
    view = reading.read_subject(ctx, subject_id, audited=False)
    return {
        name: value for name in ("email", "phone", "external_id") if (value := view.value(name))
    }


def _rectification(
    ctx: TenantContext, request: RightsRequest, subject_id: uuid.UUID, staff: StaffInput
) -> Result:
    proposed: dict[str, str] = dict(
        rights.private_part(ctx, request).get("details", {}).get("proposed", {})
    )
    if not proposed:
        raise InvalidInput("this rectification request proposes no values")
    if not staff.approve:
        return deny(
            ctx,
            request,
            "not_accurate",
            staff.note or "the proof given does not show the proposed values are accurate",
        )
    current = {f.name: f for f in reading.read_subject(ctx, subject_id, audited=False).fields}
    # Before the correction: recipients know the person by what they were sent until now.
    identities = _identities(ctx, subject_id)
    for name, value in proposed.items():
        held = current.get(name)
        subjects.rectify_field(
            ctx,
            subject_id,
            FieldInput(
                name,
                value,
                held.category if held else None,
                "direct",
                held.retention_class if held else STANDARD_CLASS,
            ),
        )
    lifted = _end_accuracy_restriction(ctx, request)
    # GDPR Art. 19: tell every recipient — whom it is about as they hold it (the old
    # identifiers), and an identifier corrected, its new value.
    corrected = {
        name: value
        for name, value in _identities(ctx, subject_id).items()
        if identities.get(name) != value
    }
    webhooks.notify(
        ctx,
        "subject.rectified",
        {
            "subject": identities,
            "corrected_identities": corrected,
            "fields": sorted(proposed),
            "request": request.reference,
        },
        _recipients(ctx),
        request_id=request.id,
    )
    return _complete(
        ctx,
        request,
        f"We corrected: {', '.join(sorted(proposed))}. We are telling the organisations we "
        "share your data with." + (f" {ACCURACY_RESTRICTION_LIFTED}" if lifted else ""),
        "rectified",
    )


def erasure_holds(ctx: TenantContext, staff: StaffInput) -> dict[str, str]:
    """Retention classes kept: those the tenant declares exempt from erasure (a legal duty,
    e.g. billing records for 7 years — seed 001 §12) and those staff hold for this case
    (a legal claim — seed 004; a transaction in progress — seed 000)."""
    holds = erasure.exempt_classes(ctx)
    unknown = [c for c in staff.holds if c not in subjects.retention_classes(ctx)]
    if unknown:
        raise InvalidInput(f"unknown retention class {unknown[0][:40]!r}")
    for name, reason in staff.holds.items():
        if len(reason.strip()) < 10:
            raise InvalidInput(f"say why the {name} data is kept (it is told to the requester)")
        holds[name] = reason.strip()
    return holds


def _erasure(
    ctx: TenantContext, request: RightsRequest, subject_id: uuid.UUID, staff: StaffInput
) -> Result:
    holds = erasure_holds(ctx, staff)
    identities = _identities(ctx, subject_id)  # before the keys are gone
    # Reached here first to be counted in the answer (`erase_subject` reaches it again on
    # its own, for every other way in, and finds nothing left). Only by the first erasure,
    # as there: after it, what is under the tenant's key is written since (its answer).
    first = subjects.get_subject_row(ctx, subject_id).erased_at is None
    reached = letters.reach_erasure(ctx, subject_id) if first else letters.Reached()
    result = erasure.erase_subject(ctx, subject_id, keep_classes=list(holds))
    # A class with a period says for how long: the worker erases it then (`subjects.retention`).
    until = retention.kept_until(ctx, subject_id, result.kept_classes)
    periods = retention.class_periods(ctx.settings.retention_classes)
    kept = [
        f"{cls}: {reason}"
        + (
            f" (kept for {periods[cls]}, then erased on {until[cls].strftime('%d %B %Y')})"
            if cls in until
            else ""
        )
        for cls, reason in sorted(holds.items())
        if cls in result.kept_classes
    ]
    # What was re-sealed is gone with the standard key (unless that class is held).
    files = reached.files_deleted + (
        reached.files_sealed if STANDARD_CLASS in result.shredded_classes else 0
    )
    webhooks.notify(
        ctx,
        "subject.erasure_requested",
        # What the law or staff keep, whether or not this vault holds any of it: a recipient
        # (a payment provider) may hold the invoices the person has none of here.
        {"subject": identities, "request": request.reference, "kept_classes": sorted(holds)},
        _recipients(ctx),
        request_id=request.id,
    )
    outcome = "We erased your personal data" + (
        " except what the law requires us to keep, listed below." if kept else "."
    )
    if files:
        items = "letter or file" if files == 1 else "letters and files"
        outcome += (
            f" This includes {files} {items} kept with your requests to us from before they "
            "were matched to your records (our letters, a proof of identity you sent)."
        )
    return _complete(
        ctx,
        request,
        outcome + " We are telling the organisations we share your data with.",
        "erased",
        audited={"request_letters_erased": files},
        kept=kept,
    )


def _restriction(
    ctx: TenantContext, request: RightsRequest, subject_id: uuid.UUID, staff: StaffInput
) -> Result:
    privacy_state.add_restriction_ground(
        ctx, subject_id, privacy_state.request_ground(request.id), "requested"
    )
    return _complete(
        ctx,
        request,
        "We now only store your data and do not use it otherwise. We will tell you "
        "before we lift the restriction.",
        RESTRICTED,
    )


# A person is restricted (one flag, which the gate reads) while any of their grounds holds
# (`privacy_state.add_restriction_ground`): a restriction they asked for (GDPR Art. 18(1)(b)-(d);
# from its fulfilment until staff lift it from the request), a correction being checked
# (Art. 18(1)(a); while that rectification is in progress or paused), or one set through the
# privacy-state API (staff or a connected system, for a ground of their own; lifted there).
# Ending one ground lifts the flag only when no other holds.
RESTRICTED = "restricted"
RESTRICTION_LIFTED = "restriction_lifted"


def restrict_for_checking(ctx: TenantContext, request: RightsRequest) -> None:
    """A correction is being checked (started, or reopened by an appeal): GDPR Art.
    18(1)(a), the data is restricted meanwhile (seed 004)."""
    if request.type != T.RECTIFICATION.value or request.subject_id is None:
        return
    # Erased since it was made: nothing left to restrict (`fulfil` answers that no data is
    # held; refusing here kept the request from being started, or its appeal granted).
    with suppress(SubjectErased):
        privacy_state.add_restriction_ground(
            ctx, request.subject_id, privacy_state.accuracy_ground(request.id), "accuracy_contested"
        )


# GDPR Art. 18(3): a person whose data was restricted is told before it is lifted — in the
# answer to the correction, which leaves with the lift (the same transaction).
ACCURACY_RESTRICTION_LIFTED = "The restriction of your data while we checked it is lifted."


def _end_accuracy_restriction(ctx: TenantContext, request: RightsRequest) -> bool:
    """A correction is decided or dropped: the restriction for checking it ends; the person
    stays restricted on any other ground. Whether it was lifted (for the letter to say)."""
    if request.type != T.RECTIFICATION.value or request.subject_id is None:
        return False
    return privacy_state.remove_restriction_ground(
        ctx, request.subject_id, privacy_state.accuracy_ground(request.id), "accuracy_checked"
    )


def withdraw(ctx: TenantContext, request: RightsRequest) -> RightsRequest:
    """The requester withdrew the request (staff record it): a correction being checked no
    longer restricts the person's data."""
    transitions.lock(ctx, request)
    hold_person(ctx, request)  # before the entry, as the ground ends after it
    transitions.transition(ctx, request, S.WITHDRAWN, "withdrawn")
    _end_accuracy_restriction(ctx, request)
    return request


def _objection(
    ctx: TenantContext, request: RightsRequest, subject_id: uuid.UUID, staff: StaffInput
) -> Result:
    asked = staff.purposes or list(
        rights.private_part(ctx, request).get("details", {}).get("purposes", [])
    )
    objectable = {
        LawfulBasis.LEGITIMATE_INTEREST.value,
        LawfulBasis.PUBLIC_INTEREST.value,
        LawfulBasis.OFFICIAL_AUTHORITY.value,
    }
    if not asked:
        asked = [
            p.slug
            for p in bundle.purposes_applying(ctx, subject_id)
            if p.lawful_basis in objectable or p.is_marketing
        ]
    stopped, continued = [], []
    for slug in asked:
        purpose = purposes.get_purpose(ctx, slug)
        consent.record_objection(ctx, subject_id, slug)
        grounds = staff.compelling_grounds.get(slug, "")
        if grounds and not purpose.is_marketing:
            consent.override_objection(ctx, subject_id, slug, grounds)
            continued.append(f"{purpose.name}: {grounds}")
        else:
            stopped.append(purpose.name)
    lines = ["We stopped: " + (", ".join(stopped) or "nothing")]
    if continued:
        lines.append("We continue, for compelling legitimate grounds:")
        lines += [f"  - {c}" for c in continued]
    return _complete(ctx, request, "\n".join(lines), "objection_recorded")


def _opt_out_sale(
    ctx: TenantContext, request: RightsRequest, subject_id: uuid.UUID, staff: StaffInput
) -> Result:
    privacy_state.set_sale_opt_out(ctx, subject_id, True, immediate.SOURCE)
    return _complete(ctx, request, *immediate.OUTCOMES[T.OPT_OUT_SALE])


def _limit_sensitive(
    ctx: TenantContext, request: RightsRequest, subject_id: uuid.UUID, staff: StaffInput
) -> Result:
    privacy_state.set_limit_sensitive(ctx, subject_id, True, immediate.SOURCE)
    return _complete(ctx, request, *immediate.OUTCOMES[T.LIMIT_SENSITIVE])


def _withdraw(
    ctx: TenantContext, request: RightsRequest, subject_id: uuid.UUID, staff: StaffInput
) -> Result:
    asked = staff.purposes or list(
        rights.private_part(ctx, request).get("details", {}).get("purposes", [])
    )
    method = (
        ConsentMethod.EMAIL_LINK.value
        if request.channel == "privacy_center"
        else ConsentMethod.API.value
    )
    if asked:
        for slug in asked:
            consent.record_consent(ctx, subject_id, consent.ConsentInput(slug, "withdraw", method))
        done = asked
    else:
        done = [r.purpose_id.hex for r in consent.withdraw_all(ctx, subject_id, method)]
    return _complete(
        ctx,
        request,
        f"We recorded the withdrawal of your consent ({len(done)} purpose(s)). It does not "
        "affect what we did before, on your consent.",
        "consent_withdrawn",
    )


def _automated(
    ctx: TenantContext, request: RightsRequest, subject_id: uuid.UUID, staff: StaffInput
) -> Result:
    if len(staff.note.strip()) < 10:
        raise InvalidInput("record the outcome of the human review (it is sent to the requester)")
    rights.update_private(ctx, request, review="done")
    return _complete(
        ctx,
        request,
        f"A member of our staff reviewed the decision: {staff.note.strip()}",
        "human_reviewed",
    )


HANDLERS = {
    T.ACCESS: _access,
    T.ACCESS_CATEGORIES: _access_categories,
    T.PORTABILITY: _portability,
    T.RECTIFICATION: _rectification,
    T.ERASURE: _erasure,
    T.RESTRICTION: _restriction,
    T.OBJECTION: _objection,
    T.OPT_OUT_SALE: _opt_out_sale,
    T.LIMIT_SENSITIVE: _limit_sensitive,
    T.WITHDRAW_CONSENT: _withdraw,
    T.AUTOMATED_DECISION: _automated,
}


def lift_restriction(ctx: TenantContext, request: RightsRequest, reason: str) -> None:
    """GDPR Art. 18(3): tell the person before a restriction they asked for is lifted, then
    end it (the data stays restricted on any other ground: a correction of theirs being
    checked, one set through the privacy-state API). In force is what the person's grounds
    say, whatever the request's outcome since (an appeal refused keeps it in force). The
    request is held first, as every action on it holds it (`transitions.hold`): answering it
    again after an appeal holds it, then locks the person, and a lift that locked the person
    first waited for that answer as it waited for the lift (a deadlock on PostgreSQL)."""
    transitions.hold(ctx, request)
    ground = privacy_state.request_ground(request.id)
    if (
        request.type != T.RESTRICTION.value
        or request.subject_id is None
        # Locked: a second lift at once waits, then finds it lifted (one letter, one event).
        or ground not in privacy_state.held_restriction_grounds(ctx, request.subject_id)
    ):
        raise Conflict("only a restriction in force can be lifted")
    if len(reason.strip()) < 10:
        raise InvalidInput("say why the restriction is lifted: the letter tells the person")
    letters.send(ctx, request, "restriction_lifting", reason=reason.strip(), lift_on=utcnow())
    request.outcome_code = RESTRICTION_LIFTED
    transitions.record_event(ctx, request, RESTRICTION_LIFTED, {"reason": "lifted"})
    privacy_state.remove_restriction_ground(ctx, request.subject_id, ground, "lifted")
