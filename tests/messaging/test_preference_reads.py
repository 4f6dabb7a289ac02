"""Reading a subject's preferences is a read of their data: audited wherever it happens (the
API, the CLI, the person's own preference center), as the consent timeline is."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from typer.testing import CliRunner

from pledge.audit.models import AuditEntry
from pledge.cli.main import app
from pledge.preferences import links
from pledge.runtime import Runtime
from tests.conftest import api_client, make_api_token
from tests.messaging.conftest import anonymous, subscribe


def _views(runtime: Runtime, subject_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    with runtime.sessions() as s:
        entries = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.event == "subject.viewed", AuditEntry.subject_id == subject_id)
            .order_by(AuditEntry.seq)
        ).all()
        return [(e.actor_kind, dict(e.details)) for e in entries]


def test_every_read_of_the_preferences_is_audited(
    runtime: Runtime, clik_tenant: str, cli_env: dict[str, str]
) -> None:
    sid = subscribe(runtime, clik_tenant, "reader@example.com")
    assert _views(runtime, sid) == []
    seen = {"part": "preferences", "topics": 6, "consents": 1}

    api = api_client(runtime, make_api_token(runtime, clik_tenant))
    r = api.get(f"/api/v1/subjects/{sid}/preferences")
    assert r.status_code == 200 and len(r.json()["topics"]) == 6
    assert [d for _, d in _views(runtime, sid)] == [seen]

    shown = CliRunner().invoke(
        app, ["preferences", "show", "-t", clik_tenant, "--email", "reader@example.com"]
    )
    assert shown.exit_code == 0 and "Consents in force: newsletter" in shown.output, shown.output
    assert [d for _, d in _views(runtime, sid)] == [seen, seen]

    with runtime.tenant_context(clik_tenant) as ctx:
        url = links.preference_link(ctx, sid)
    path = url[url.index("/p/") :]
    page = anonymous(runtime).get(path, headers={"Accept": "text/html"})
    assert page.status_code == 200 and "The Clik newsletter" in page.text
    views = _views(runtime, sid)
    assert [d for _, d in views] == [seen, seen, seen]
    # The reader of each: an API key, an operator, the person through their own link.
    assert len({kind for kind, _ in views}) == 3
