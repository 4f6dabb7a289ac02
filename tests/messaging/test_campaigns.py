"""Campaigns through the gate: the audience is what the gate allows, every message carries its
own RFC 8058 link, and an unsubscribe from one send keeps the person out of the next."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import select
from typer.testing import CliRunner

import pledge.cli.common as cli_common
from pledge.audit.models import AuditEntry
from pledge.cli.main import app
from pledge.gate import service as gate
from pledge.gate.service import Reason
from pledge.mail.backends import MemoryBackend
from pledge.preferences import service as preferences
from pledge.runtime import Runtime
from tests.conftest import api_client, login, make_api_token, make_user
from tests.messaging.conftest import (
    anonymous,
    follow_status,
    header,
    subscribe,
    unsubscribe_url,
)

NEWSLETTER = {
    "name": "Newsletter, March",
    "purpose": "newsletter",
    "channel": "email",
    "topic": "newsletter",
    "subject_line": "{first_name}, news from Clik",
    "body": "Hello {first_name},\n\nthe March news.\n\nUnsubscribe: {unsubscribe_url}\n",
}


def _client(runtime: Runtime, tenant: str) -> TestClient:
    return api_client(runtime, make_api_token(runtime, tenant))


def _send(client: TestClient, **changes: str) -> dict[str, object]:
    r = client.post("/api/v1/campaigns", json={**NEWSLETTER, **changes})
    assert r.status_code == 201, r.text
    campaign_id = r.json()["id"]
    r = client.post(f"/api/v1/campaigns/{campaign_id}/send")
    assert r.status_code == 200, r.text
    result: dict[str, object] = r.json()
    return result


def test_send_unsubscribe_send_again(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    ada = subscribe(runtime, clik_tenant, "ada@example.com", "Ada")
    subscribe(runtime, clik_tenant, "bob@example.com", "Bob")
    follow_status(runtime, clik_tenant, "cyd@example.com")  # no newsletter consent
    client = _client(runtime, clik_tenant)

    first = _send(client)
    assert (first["sent"], first["denied"], first["candidates"]) == (2, 1, 3)
    assert sorted(str(m["To"]) for m in mailbox.sent) == ["ada@example.com", "bob@example.com"]
    to_ada = next(m for m in mailbox.sent if m["To"] == "ada@example.com")
    assert to_ada["Subject"] == "Ada, news from Clik"
    assert header(to_ada, "List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    url = unsubscribe_url(to_ada)
    body = to_ada.get_content()
    assert body.startswith("Hello Ada,") and body.count(url) == 2  # the template's and the footer
    assert "/p/" + clik_tenant + "/preferences?" in body

    # Ada's mail provider: the one-click POST, no cookies, no redirect.
    r = anonymous(runtime).post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert r.status_code == 200

    mailbox.sent.clear()
    second = _send(client, name="Newsletter, April")
    assert (second["sent"], second["denied"]) == (1, 2)
    assert [m["To"] for m in mailbox.sent] == ["bob@example.com"]
    with runtime.tenant_context(clik_tenant) as ctx:
        decision = gate.may(ctx, ada, "newsletter", "email", topic="newsletter")
        assert decision.reasons == [Reason.CONSENT_WITHDRAWN]


def test_one_audit_entry_with_counts_and_the_audience_digest(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    subscribe(runtime, clik_tenant, "dee@example.com")
    result = _send(_client(runtime, clik_tenant))
    with runtime.sessions() as s:
        sent = s.scalars(select(AuditEntry).where(AuditEntry.event == "campaign.sent")).all()
        built = s.scalars(select(AuditEntry).where(AuditEntry.event == "gate.audience_built")).one()
        queued = s.scalars(select(AuditEntry).where(AuditEntry.event == "mail.queued")).all()
    assert len(sent) == 1 and queued == []
    details = sent[0].details
    assert details["digest"] == built.details["digest"] == result["digest"]
    assert (details["sent"], details["denied"], details["topic"]) == (1, 0, "newsletter")
    assert "dee@example.com" not in str(details)


def test_a_campaign_is_sent_once(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    subscribe(runtime, clik_tenant, "eva@example.com")
    client = _client(runtime, clik_tenant)
    campaign_id = client.post("/api/v1/campaigns", json=NEWSLETTER).json()["id"]
    assert client.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 200
    again = client.post(f"/api/v1/campaigns/{campaign_id}/send")
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    assert len(mailbox.sent) == 1
    one = client.get(f"/api/v1/campaigns/{campaign_id}").json()
    assert (one["status"], one["sent_count"], one["denied_count"]) == ("sent", 1, 0)
    assert [c["id"] for c in client.get("/api/v1/campaigns").json()] == [campaign_id]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"body": "Hi {first_name.__class__}"}, "unknown placeholder"),
        ({"body": "Hi {email}"}, "unknown placeholder"),
        ({"body": "Hi {"}, "literal brace"),
        ({"subject_line": "{unsubscribe_url}"}, "unknown placeholder"),
        ({"topic": "status"}, "belongs to another purpose"),
        ({"channel": "sms"}, "sent by e-mail"),
        ({"topic": "nope"}, "no such topic"),
    ],
)
def test_bad_campaigns_are_refused(
    runtime: Runtime, clik_tenant: str, changes: dict[str, str], message: str
) -> None:
    r = _client(runtime, clik_tenant).post("/api/v1/campaigns", json={**NEWSLETTER, **changes})
    assert r.status_code in (404, 422) and message in r.json()["detail"], r.text


def test_service_topics_reach_people_who_stopped_marketing(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    """Seed 001 §5.3: after an opt-out of commercial e-mail, business-essential messages go on."""
    fay = follow_status(runtime, clik_tenant, "fay@example.com")
    with runtime.tenant_context(clik_tenant) as ctx:
        preferences.opt_out(ctx, fay, "email", "*", "api")
    status = {
        **NEWSLETTER,
        "name": "Incident report",
        "purpose": "status-updates",
        "topic": "status",
        "subject_line": "Service restored",
        "body": "All systems are running again.",
    }
    result = _send(_client(runtime, clik_tenant), **status)
    assert result["sent"] == 1 and [m["To"] for m in mailbox.sent] == ["fay@example.com"]


def test_cli_create_send_list(
    runtime: Runtime, clik_tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    subscribe(runtime, clik_tenant, "gil@example.com")
    body = tmp_path / "body.txt"
    body.write_text("Hello {first_name}. {unsubscribe_url}\n")
    runner = CliRunner()
    created = runner.invoke(
        app,
        [
            "campaign", "create", "-t", clik_tenant, "--name", "CLI [/b]",
            "--purpose", "newsletter", "--topic", "newsletter",
            "--subject-line", "News", "--body", str(body),
        ],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    campaign_id = re.search(r"Campaign (\S+) created", created.output).group(1)  # type: ignore[union-attr]
    sent = runner.invoke(app, ["campaign", "send", "-t", clik_tenant, campaign_id])
    assert sent.exit_code == 0 and "1 sent, 0 not allowed" in sent.output, sent.output
    listed = runner.invoke(app, ["campaign", "list", "-t", clik_tenant])
    # The name is shown as given: brackets are not read as console markup.
    assert listed.exit_code == 0 and "CLI [/b]" in listed.output and "sent" in listed.output
    again = runner.invoke(app, ["campaign", "send", "-t", clik_tenant, campaign_id])
    assert again.exit_code == 1 and "already sent" in again.output


def test_cli_send_shows_the_messages_leaving_on_a_terminal(
    runtime: Runtime,
    clik_tenant: str,
    cli_env: dict[str, str],
    mailbox: MemoryBackend,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readers = [f"reader{n}@example.com" for n in range(3)]
    for address in readers:
        subscribe(runtime, clik_tenant, address)
    body = tmp_path / "body.txt"
    body.write_text("Hello {first_name}. {unsubscribe_url}\n")
    runner = CliRunner()
    created = runner.invoke(
        app,
        [
            "campaign", "create", "-t", clik_tenant, "--name", "Big",
            "--purpose", "newsletter", "--topic", "newsletter",
            "--subject-line", "News", "--body", str(body),
        ],
    )  # fmt: skip
    campaign_id = re.search(r"Campaign (\S+) created", created.output).group(1)  # type: ignore[union-attr]
    mailbox.sent.clear()
    screen = io.StringIO()
    monkeypatch.setattr(cli_common, "console", Console(file=screen, force_terminal=True))
    sent = runner.invoke(app, ["campaign", "send", "-t", clik_tenant, campaign_id])
    assert sent.exit_code == 0 and "3 sent, 0 not allowed" in sent.output, sent.output
    assert sorted(str(m["To"]) for m in mailbox.sent) == readers
    drawn = screen.getvalue()  # the bar, counting the messages handed to the relay
    assert "Sending" in drawn and "3/3" in drawn and "Sending" not in sent.output


def test_campaign_pages_create_and_send(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    subscribe(runtime, clik_tenant, "hal@example.com")
    subscribe(runtime, clik_tenant, "ivy@example.com")
    make_user(runtime, clik_tenant, "owner@clik.example")
    client = TestClient(api_client(runtime).app, raise_server_exceptions=False)
    csrf = login(client, clik_tenant, "owner@clik.example")
    form = client.get("/campaigns/new")
    assert form.status_code == 200 and 'name="topic"' in form.text
    bad = client.post(
        "/campaigns",
        data={**NEWSLETTER, "body": "Hi {email}", "csrf_token": csrf},
    )
    assert bad.status_code == 422 and "unknown placeholder" in bad.text
    r = client.post("/campaigns", data={**NEWSLETTER, "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    detail = client.get(r.headers["location"])
    assert "The gate allows <strong>2</strong> of 2 subjects" in detail.text
    assert "Send to 2 people" in detail.text
    sent = client.post(r.headers["location"] + "/send", data={"csrf_token": csrf})
    assert sent.status_code == 200
    assert re.search(r"<strong>2</strong> sent", sent.text) and len(mailbox.sent) == 2
    listing = client.get("/campaigns")
    assert "Newsletter, March" in listing.text
