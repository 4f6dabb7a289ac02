"""What a preset (or an operator) started can be completed: a recipient gets its transfer
mechanism, a webhook URL for the GDPR Art. 19 notices, or is retired; the tenant's privacy
contact can be changed after `tenant create`. Each change is checked as the first setting
was, and audited from old to new."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pledge.access.permissions import Scope
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent import intake
from pledge.consent.intake import ConsentChoice
from pledge.consent.models import ConsentRecord
from pledge.core.clock import utcnow
from pledge.core.db import transaction
from pledge.core.errors import InvalidInput, NotFound
from pledge.mail import reading as mail_reading
from pledge.presets import clik, create_tenant
from pledge.rights import bundle, recipients, workflow
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput
from pledge.tenants import service as tenants
from pledge.webhooks import service as webhooks
from tests.cli.test_cli import run
from tests.conftest import api_client, make_api_token, make_tenant
from tests.rights.test_api_and_webhooks import EMAIL, Receiver, _code

NO_RECORD: dict[str, Any] = {"fields": [], "interactions": []}


def _answer(runtime: Runtime, tenant: str) -> dict[str, Any]:
    """What an access answer tells of the processing (GDPR Art. 15(1) and (2))."""
    with runtime.tenant_context(tenant) as ctx:
        email = f"someone-{uuid.uuid4().hex[:8]}@example.com"
        sid = subjects.create_subject(ctx, [FieldInput("email", email)])
        return bundle.art15_information(ctx, sid, NO_RECORD, "EU")


def _changes(runtime: Runtime, tenant: str, event: AuditEvent) -> list[dict[str, Any]]:
    with runtime.tenant_context(tenant) as ctx:
        return [e.details for e in audit.list_entries(ctx, limit=200) if e.event == event.value]


@pytest.fixture
def receivers(private_targets: None) -> Iterator[tuple[Receiver, Receiver]]:
    first, second = Receiver(), Receiver()
    yield first, second
    first.close()
    second.close()


@pytest.fixture
def clik_shop(runtime: Runtime) -> str:
    """A tenant from seed 000's practice (its US recipients have no webhook) with a person."""
    make_tenant(runtime, "acme")
    with runtime.tenant_context("acme") as ctx:
        clik(ctx)
        intake.collect(
            ctx,
            "purchase",
            [FieldInput("email", EMAIL), FieldInput("first_name", "Wanda", "user.name.first")],
        )
    return "acme"


def _erase_through_the_api(runtime: Runtime, client: TestClient, tenant: str) -> None:
    r = client.post(
        "/api/v1/requests",
        json={"type": "erasure", "requester": {"email": EMAIL}, "jurisdiction": "UK"},
    )
    assert r.status_code == 201, r.text
    request_id = r.json()["id"]
    r = client.post(
        f"/api/v1/requests/{request_id}/verify",
        json={"code": _code(runtime, tenant), "data_points": {"first_name": "WANDA"}},
    )
    assert r.json()["state"] == "verified", r.text
    r = client.post(f"/api/v1/requests/{request_id}/fulfil", json={})
    assert r.json()["state"] == "completed", r.text


def test_a_presets_recipient_gets_its_mechanism_and_the_access_answer_names_it(
    runtime: Runtime,
) -> None:
    """Seed 001's preset records no mechanism for its US providers (the Privacy Shield is
    gone): once the tenant records the clauses it uses, the access answer names them."""
    with transaction(runtime.sessions) as session:
        create_tenant(session, runtime.keystore, "onecrm", slug="crm", name="CRM Ltd")
    told = {t["recipients"][0]: t["safeguard"] for t in _answer(runtime, "crm")["transfers"]}
    assert told["Google Analytics"] == "no safeguard recorded"
    with runtime.tenant_context("crm") as ctx:
        changed, secret = recipients.update_recipient(
            ctx, "google-analytics", transfer_mechanism="standard_contractual_clauses"
        )
        assert secret is None and recipients.transfer_warning(ctx, changed) is None
    transfers = _answer(runtime, "crm")["transfers"]
    assert {
        "country": "US",
        "recipients": ["Google Analytics"],
        "mechanism": "standard_contractual_clauses",
        "safeguard": "standard contractual clauses",
    } in transfers
    assert _changes(runtime, "crm", AuditEvent.RECIPIENT_CHANGED) == [
        {
            "recipient_id": str(changed.id),
            "slug": "google-analytics",
            "changed": {"transfer_mechanism": [None, "standard_contractual_clauses"]},
            "new_secret": False,
        }
    ]


def test_a_new_webhook_url_gets_the_erasure_notice_signed_with_its_new_secret(
    runtime: Runtime, clik_shop: str, receivers: tuple[Receiver, Receiver]
) -> None:
    old, new = receivers
    client = api_client(runtime, make_api_token(runtime, clik_shop))
    r = client.patch("/api/v1/recipients/hubspot", json={"webhook_url": old.url})
    assert r.status_code == 200, r.text
    old_secret = r.json()["secret"]
    assert old_secret.startswith("whsec_") and r.json()["webhook_url"] == old.url
    r = client.patch("/api/v1/recipients/hubspot", json={"webhook_url": new.url})
    assert r.status_code == 200, r.text
    new_secret = r.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    # Shown once: the list never shows it.
    listed = {x["slug"]: x for x in client.get("/api/v1/recipients").json()}
    assert listed["hubspot"]["secret"] is None and listed["hubspot"]["webhook_url"] == new.url

    _erase_through_the_api(runtime, client, clik_shop)
    assert old.received == []
    (hit,) = new.received
    assert hit["headers"]["Pledge-Event"] == "subject.erasure_requested"
    assert json.loads(hit["body"])["data"]["subject"]["email"] == EMAIL
    now = int(utcnow().timestamp())
    signature = hit["headers"]["Pledge-Signature"]
    assert webhooks.verify_signature(new_secret, signature, hit["body"], now=now)
    assert not webhooks.verify_signature(old_secret, signature, hit["body"], now=now)
    entries = _changes(runtime, clik_shop, AuditEvent.RECIPIENT_CHANGED)
    assert [e["changed"] for e in entries] == [
        {"webhook": [None, "127.0.0.1"]},
        {"webhook": ["127.0.0.1", "127.0.0.1"]},
    ]
    assert [e["new_secret"] for e in entries] == [True, True]


def test_a_deactivated_recipient_is_not_told_nor_notified(
    runtime: Runtime, clik_shop: str, receivers: tuple[Receiver, Receiver]
) -> None:
    hook, _ = receivers
    with runtime.tenant_context(clik_shop) as ctx:
        recipients.update_recipient(ctx, "zendesk", webhook_url=hook.url)
    named = [r["name"] for r in _answer(runtime, clik_shop)["recipients"]]
    assert "Zendesk (support live chat)" in named
    with runtime.tenant_context(clik_shop) as ctx:
        retired, _ = recipients.update_recipient(ctx, "zendesk", active=False)
        assert not retired.active and retired.webhook_url == hook.url
    info = _answer(runtime, clik_shop)
    assert "Zendesk (support live chat)" not in [r["name"] for r in info["recipients"]]
    assert all("Zendesk (support live chat)" not in t["recipients"] for t in info["transfers"])
    assert "HubSpot (live chat and CRM)" in [r["name"] for r in info["recipients"]]

    client = api_client(runtime, make_api_token(runtime, clik_shop))
    _erase_through_the_api(runtime, client, clik_shop)
    assert hook.received == []
    assert _changes(runtime, clik_shop, AuditEvent.RECIPIENT_CHANGED)[-1]["changed"] == {
        "active": [True, False]
    }
    # Active again: told again.
    with runtime.tenant_context(clik_shop) as ctx:
        recipients.update_recipient(ctx, "zendesk", active=True)
    named = [r["name"] for r in _answer(runtime, clik_shop)["recipients"]]
    assert "Zendesk (support live chat)" in named


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "  "}, "name is required"),
        ({"name": "x" * 201}, "longer than 200"),
        ({"transfer_mechanism": "a handshake"}, "transfer mechanism is one of"),
        ({"webhook_url": "ftp://crm.example/hook"}, "must start with https://"),
        ({"webhook_url": "https://localhost/hook"}, "public internet"),
        ({"webhook_url": "https://crm.example/" + "x" * 500}, "longer than 500"),
    ],
)
def test_bad_input_is_refused_and_nothing_changes(
    runtime: Runtime, change: dict[str, Any], message: str
) -> None:
    make_tenant(runtime, "acme")
    with runtime.tenant_context("acme") as ctx:
        recipients.add_recipient(
            ctx, slug="crm", name="CRM", kind="recipient", country="US", webhook_url=None
        )
    with runtime.tenant_context("acme") as ctx, pytest.raises(InvalidInput, match=message):
        # A good change beside the bad one is not made either.
        recipients.update_recipient(ctx, "crm", **{"active": False, "name": "New CRM", **change})
    with runtime.tenant_context("acme") as ctx:
        (kept,) = recipients.list_recipients(ctx)
        assert (kept.name, kept.transfer_mechanism, kept.webhook_url, kept.active) == (
            "CRM",
            None,
            None,
            True,
        )
        with pytest.raises(NotFound):
            recipients.update_recipient(ctx, "no-such-crm", name="X")
    assert _changes(runtime, "acme", AuditEvent.RECIPIENT_CHANGED) == []


def test_only_what_is_given_changes_and_removing_the_url_drops_the_secret(
    runtime: Runtime,
) -> None:
    make_tenant(runtime, "acme")
    with runtime.tenant_context("acme") as ctx:
        added, _ = recipients.add_recipient(
            ctx,
            slug="crm",
            name="CRM",
            kind="recipient",
            country="US",
            webhook_url="https://crm.example/hook",
            transfer_mechanism="uk_idta",
        )
    with runtime.tenant_context("acme") as ctx:
        renamed, secret = recipients.update_recipient(ctx, "crm", name="CRM Inc.")
        assert secret is None
        assert (renamed.name, renamed.transfer_mechanism, renamed.webhook_url) == (
            "CRM Inc.",
            "uk_idta",
            "https://crm.example/hook",
        )
        assert renamed.secret_sealed is not None
        # The same values again: nothing to record.
        recipients.update_recipient(
            ctx, "crm", name="CRM Inc.", webhook_url="https://crm.example/hook", active=True
        )
    with runtime.tenant_context("acme") as ctx:
        dropped, secret = recipients.update_recipient(
            ctx, "crm", webhook_url=None, transfer_mechanism=None
        )
        assert secret is None
        assert (dropped.webhook_url, dropped.secret_sealed, dropped.transfer_mechanism) == (
            None,
            None,
            None,
        )
    assert _changes(runtime, "acme", AuditEvent.RECIPIENT_CHANGED) == [
        {
            "recipient_id": str(added.id),
            "slug": "crm",
            "changed": {"name": ["CRM", "CRM Inc."]},
            "new_secret": False,
        },
        {
            "recipient_id": str(added.id),
            "slug": "crm",
            "changed": {"transfer_mechanism": ["uk_idta", None], "webhook": ["crm.example", None]},
            "new_secret": False,
        },
    ]


def test_the_api_patches_a_recipient(runtime: Runtime) -> None:
    make_tenant(runtime, "acme", region="EU")
    api = api_client(runtime, make_api_token(runtime, "acme"))
    r = api.post("/api/v1/recipients", json={"slug": "crm", "name": "CRM", "country": "US"})
    assert r.status_code == 201 and "no safeguard recorded" in r.json()["warning"]
    r = api.patch("/api/v1/recipients/crm", json={"transfer_mechanism": "adequacy_decision"})
    assert r.status_code == 200, r.text
    assert r.json()["transfer_mechanism"] == "adequacy_decision"
    assert r.json()["warning"] is None and r.json()["name"] == "CRM" and r.json()["active"]
    for body in (
        {"transfer_mechanism": "trust us"},
        {"name": None},
        {"active": None},
        {"name": ""},
        {"webhook_url": "http://crm.example/hook"},
        {"kind": "sub_processor"},  # not something a change may give
    ):
        r = api.patch("/api/v1/recipients/crm", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = api.patch("/api/v1/recipients/nobody", json={"active": False})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    r = api.patch("/api/v1/recipients/crm", json={"active": False, "transfer_mechanism": None})
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False and r.json()["transfer_mechanism"] is None
    (listed,) = api.get("/api/v1/recipients").json()
    assert listed["active"] is False and listed["name"] == "CRM"
    # A key that may not manage recipients may not change one either.
    reader = api_client(runtime, make_api_token(runtime, "acme", frozenset({Scope.REQUESTS_READ})))
    assert reader.patch("/api/v1/recipients/crm", json={"active": True}).status_code == 403


def test_the_cli_changes_a_recipient(runtime: Runtime, cli_env: dict[str, str]) -> None:
    with transaction(runtime.sessions) as session:
        create_tenant(session, runtime.keystore, "onecrm", slug="crm", name="CRM Ltd")
    code, out = run("rights", "recipients", "-t", "crm")
    assert code == 0 and "google-analytics: a transfer to US" in out, out
    cmd = ("rights", "recipient-set", "-t", "crm", "google-analytics")
    code, out = run(*cmd, "--transfer-mechanism", "a handshake")
    assert code == 1 and "transfer mechanism is one of" in out, out
    code, out = run(*cmd, "--transfer-mechanism", "uk_idta", "--no-transfer-mechanism")
    assert code == 1 and "both given" in out, out
    code, out = run(
        *cmd,
        "--transfer-mechanism",
        "standard_contractual_clauses",
        "--webhook-url",
        "https://ga.example/hook",
        "--name",
        "Google Analytics 4",
    )
    assert code == 0, out
    assert "Webhook signing secret (shown once): whsec_" in out
    assert "Warning" not in out
    with runtime.tenant_context("crm") as ctx:
        ga = recipients.get_recipient(ctx, "google-analytics")
        assert (ga.name, ga.transfer_mechanism, ga.webhook_url) == (
            "Google Analytics 4",
            "standard_contractual_clauses",
            "https://ga.example/hook",
        )
    code, out = run(*cmd, "--no-webhook", "--no-transfer-mechanism", "--deactivate")
    assert code == 0 and "no webhook; inactive" in out, out
    code, out = run("rights", "recipients", "-t", "crm")
    assert code == 0 and "google-analytics: inactive" in out, out
    assert "google-analytics: a transfer" not in out
    code, out = run("rights", "recipient-set", "-t", "crm", "nobody", "--activate")
    assert code == 1 and "no recipient 'nobody'" in out, out
    with runtime.tenant_context("crm") as ctx:
        ga = recipients.get_recipient(ctx, "google-analytics")
        assert (ga.transfer_mechanism, ga.webhook_url, ga.active) == (None, None, False)


# ---------------------------------------------------------------------------------------------
# The tenant's privacy contact


def _letters(runtime: Runtime, tenant: str) -> list[str]:
    with runtime.tenant_context(tenant) as ctx:
        views = [mail_reading.read_message(ctx, m.id) for m in mail_reading.list_messages(ctx)]
    return [v.letter.text for v in views if v.letter is not None]


def _receipt_controller(runtime: Runtime, tenant: str, email: str) -> dict[str, Any]:
    with runtime.tenant_context(tenant) as ctx:
        intake.collect(
            ctx, "newsletter", [FieldInput("email", email)], [ConsentChoice("newsletter", True)]
        )
        token = ctx.session.scalars(
            select(ConsentRecord.receipt_jws).order_by(ConsentRecord.recorded_at.desc())
        ).first()
    assert token
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    (controller,) = claims["piiControllers"]
    return dict(controller)


def test_the_next_letter_and_receipt_name_the_new_privacy_contact(runtime: Runtime) -> None:
    make_tenant(runtime, "acme", privacy_contact="privacy@old.example")
    with runtime.tenant_context("acme") as ctx:
        clik(ctx)
    assert _receipt_controller(runtime, "acme", "a@example.com")["contact"] == (
        "privacy@old.example"
    )
    with runtime.tenant_context("acme") as ctx:
        assert tenants.set_privacy_contact(ctx, "  dpo@new.example ")
    with runtime.tenant_context("acme") as ctx:
        workflow.receive(ctx, RequestInput("access", Requester("b@example.com"), "UK"))
    (letter, *_) = [t for t in _letters(runtime, "acme") if "dpo@new.example" in t]
    assert "privacy@old.example" not in letter
    controller = _receipt_controller(runtime, "acme", "c@example.com")
    assert controller["contact"] == controller["email"] == "dpo@new.example"
    assert _changes(runtime, "acme", AuditEvent.TENANT_CONTACT_SET) == [
        {"old": "privacy@old.example", "new": "dpo@new.example"}
    ]


def test_a_privacy_contact_too_long_is_refused_and_the_old_one_kept(runtime: Runtime) -> None:
    make_tenant(runtime, "acme", privacy_contact="privacy@acme.example")
    with runtime.tenant_context("acme") as ctx, pytest.raises(InvalidInput, match="320"):
        tenants.set_privacy_contact(ctx, "p" * 321)
    with runtime.tenant_context("acme") as ctx:
        assert ctx.tenant.privacy_contact == "privacy@acme.example"
        assert not tenants.set_privacy_contact(ctx, "privacy@acme.example")  # the same: no entry
    assert _changes(runtime, "acme", AuditEvent.TENANT_CONTACT_SET) == []


def test_the_cli_shows_and_sets_the_privacy_contact(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    make_tenant(runtime, "acme")
    code, out = run("tenant", "contact", "-t", "acme")
    assert code == 0 and "Privacy contact of acme: (none)" in out, out
    code, out = run("tenant", "contact", "-t", "acme", "--set", "privacy@acme.example")
    assert code == 0 and "privacy@acme.example" in out and "Changed." in out, out
    code, out = run("tenant", "contact", "-t", "acme")
    assert code == 0 and "Privacy contact of acme: privacy@acme.example" in out, out
    code, out = run("tenant", "contact", "-t", "acme", "--set", "x" * 400)
    assert code == 1 and "longer than 320" in out, out
    with runtime.tenant_context("acme") as ctx:
        assert ctx.tenant.privacy_contact == "privacy@acme.example"
