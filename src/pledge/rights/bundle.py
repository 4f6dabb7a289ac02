"""The access bundle: every field and interaction of the subject, plus the information GDPR
Art. 15(1)–(2) requires (purposes, lawful bases, categories, sources, recipients, retention,
transfers, consent history, rights) — as JSON (machine-readable), CSV and a readable HTML
page, zipped."""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from datetime import datetime
from typing import Any

from sqlalchemy import select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.consent import service as consent
from pledge.consent.models import ConsentState, SubjectPurpose
from pledge.purposes.models import LawfulBasis, Purpose
from pledge.rights import clock
from pledge.rights.models import Recipient
from pledge.subjects import service as subjects
from pledge.subjects.categories import describe
from pledge.web.templating import templates

# ZIP entries get a fixed time: the same data gives the same bundle.
_ZIP_TIME = (2000, 1, 1, 0, 0, 0)
# zlib level: 1 deflates a large bundle at several times the speed of 6 for a few per cent
# more bytes (its text is repetitive: the same keys and categories on every line).
ZIP_LEVEL = 1


def purposes_applying(ctx: TenantContext, subject_id: uuid.UUID) -> list[Purpose]:
    """The purposes the subject's data is used for: consents in force and relationships in
    force, plus legal obligations (which apply to everyone held)."""
    granted = set(
        ctx.session.scalars(
            for_tenant(select(ConsentState.purpose_id), ConsentState, ctx.tenant_id).where(
                ConsentState.subject_id == subject_id, ConsentState.granted.is_(True)
            )
        )
    )
    related = set(
        ctx.session.scalars(
            for_tenant(select(SubjectPurpose.purpose_id), SubjectPurpose, ctx.tenant_id).where(
                SubjectPurpose.subject_id == subject_id, SubjectPurpose.until.is_(None)
            )
        )
    )
    everyone = {LawfulBasis.LEGAL_OBLIGATION.value, LawfulBasis.VITAL_INTEREST.value}
    return [
        p
        for p in ctx.session.scalars(
            for_tenant(select(Purpose), Purpose, ctx.tenant_id)
            .where(Purpose.archived_at.is_(None))
            .order_by(Purpose.slug)
        )
        if p.id in granted or p.id in related or p.lawful_basis in everyone
    ]


def art15_information(
    ctx: TenantContext, subject_id: uuid.UUID, record: dict[str, Any], jurisdiction: str
) -> dict[str, Any]:
    recipients = list(
        ctx.session.scalars(
            for_tenant(select(Recipient), Recipient, ctx.tenant_id).where(
                Recipient.active.is_(True)
            )
        )
    )
    categories = sorted(
        {f["category"] for f in record["fields"]} | {i["category"] for i in record["interactions"]}
    )
    rule = clock.rule_for(jurisdiction, "access")
    return {
        "controller": {"name": ctx.tenant.name, "contact": ctx.tenant.privacy_contact or None},
        "purposes": [
            {
                "purpose": p.name,
                "lawful_basis": p.lawful_basis,
                "legitimate_interest": p.legitimate_interest_note,
                "categories": p.data_categories,
            }
            for p in purposes_applying(ctx, subject_id)
        ],
        "categories": [
            {"category": c, "label": describe(c).label, "sensitive": describe(c).sensitive}
            for c in categories
        ],
        "sources": sorted(
            {f["source"] for f in record["fields"]} | {i["source"] for i in record["interactions"]}
        ),
        "recipients": [{"name": r.name, "kind": r.kind, "country": r.country} for r in recipients],
        "transfers": sorted(
            {r.country for r in recipients if r.country and r.country != ctx.tenant.region[:2]}
        ),
        "retention": {
            name: cls.get("description", name) for name, cls in ctx.tenant.retention_classes.items()
        }
        | {"standard": "kept while needed for the purposes listed, then erased"},
        "consent_history": [
            {
                "at": e.record.recorded_at.isoformat(),
                "purpose": e.purpose.name,
                "action": e.record.action,
                "method": e.record.method,
                "wording": e.wording.text if e.wording else None,
                "wording_sha256": e.record.wording_sha256,
            }
            for e in consent.timeline(ctx, subject_id)
        ],
        "rights": "You may ask for rectification, erasure or restriction, object, ask for "
        "portability and withdraw consent at any time. "
        f"You may complain to {rule.complaint}.",
    }


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8")


def build(ctx: TenantContext, subject_id: uuid.UUID, jurisdiction: str, *, reference: str) -> bytes:
    """The zipped bundle. Reading the subject is audited (subject.exported)."""
    record = subjects.export_subject(ctx, subject_id)
    info = art15_information(ctx, subject_id, record, jurisdiction)
    document = {
        "reference": reference,
        "generated_at": datetime.now().astimezone().isoformat(),
        "data": record,
        "about_the_processing": info,
    }
    fields_csv = _csv(
        [["name", "value", "category", "source", "retention_class", "updated_at"]]
        + [
            [
                f["name"],
                f["value"],
                f["category"],
                f["source"],
                f["retention_class"],
                f["updated_at"],
            ]
            for f in record["fields"]
        ]
    )
    # Each payload as JSON text once, for the CSV and the page (C encoder: no indent).
    contents = [
        json.dumps(i["payload"], ensure_ascii=False) if i["payload"] is not None else None
        for i in record["interactions"]
    ]
    interactions_csv = _csv(
        [["occurred_at", "kind", "category", "source", "retention_class", "content"]]
        + [
            [
                i["occurred_at"],
                i["kind"],
                i["category"],
                i["source"],
                i["retention_class"],
                content or "",
            ]
            for i, content in zip(record["interactions"], contents, strict=True)
        ]
    )
    html = (
        templates.env.get_template("letters/bundle.html")
        .render(
            tenant=ctx.tenant,
            reference=reference,
            record=record,
            rows=zip(record["interactions"], contents, strict=True),
            info=info,
            describe=describe,
        )
        .encode()
    )
    # The JSON file is for machines: compact, one line (an indented dump goes through the
    # pure-Python encoder — most of a large bundle's time); the HTML page is for reading.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in (
            ("your-data.json", json.dumps(document, ensure_ascii=False).encode()),
            ("fields.csv", fields_csv),
            ("interactions.csv", interactions_csv),
            ("your-data.html", html),
        ):
            # A ZipInfo carries its own compression (stored unless told): deflate each entry.
            archive.writestr(
                zipfile.ZipInfo(name, _ZIP_TIME),
                content,
                compress_type=zipfile.ZIP_DEFLATED,
                compresslevel=ZIP_LEVEL,
            )
    return buffer.getvalue()


def portable_data(ctx: TenantContext, subject_id: uuid.UUID) -> dict[str, Any]:
    """GDPR Art. 20 (seed 004): only what the person provided, held on consent or contract.
    A field counts when the person gave it (source "direct") and a consent or contract
    purpose that applies to them uses its category."""
    bases = {LawfulBasis.CONSENT.value, LawfulBasis.CONTRACT.value}
    covered = [
        c
        for p in purposes_applying(ctx, subject_id)
        if p.lawful_basis in bases
        for c in p.data_categories
    ]
    view = subjects.read_subject(ctx, subject_id, audited=False)

    def on_basis(category: str) -> bool:
        return any(category == c or category.startswith(c + ".") for c in covered)

    fields = [f for f in view.fields if f.source == "direct" and on_basis(f.category)]
    return {
        "format": "pledge-portable-v1",
        "fields": [{"name": f.name, "value": f.value, "category": f.category} for f in fields],
    }
