"""Abuse limits on the public forms: per client address on every privacy-center and
preference-center post (`pledge.web.throttle`), and per e-mail address on new privacy-center
requests — a stranger must not make Pledge mail-bomb someone's inbox or flood the queue."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.clock import frozen, utcnow
from pledge.mail import reading as mail_reading
from pledge.rights import fulfilment, public, status_links, workflow
from pledge.rights import service as rights
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.web.app import create_app
from tests.conftest import api_client, make_api_token, make_tenant, until_done_or_blocked
from tests.rights.test_pages import person, verified_access_request

__all__ = ["person"]  # the fixture, shared

VICTIM = "victim@example.com"
HTML = {"accept": "text/html"}
RECENT = "Several requests for this e-mail address were received in the last 24 hours"


class Visitor:
    """A browser on the privacy center, from its own address, on an app of its own (as
    another server process would be)."""

    def __init__(self, runtime: Runtime, address: str = "203.0.113.7", **settings: Any) -> None:
        rt = replace(runtime, settings=runtime.settings.model_copy(update=settings))
        self.client = TestClient(
            create_app(rt), raise_server_exceptions=False, client=(address, 50000)
        )
        self.client.headers.update(HTML)
        self.client.get("/p/acme/requests")
        self.csrf = self.client.cookies["pledge_csrf"]

    def post(self, path: str, data: dict[str, Any]) -> Response:
        return self.client.post(
            path, data={**data, "csrf_token": self.csrf}, follow_redirects=False
        )

    def ask(self, email: str = VICTIM, slug: str = "acme", rtype: str = "access") -> Response:
        return self.post(f"/p/{slug}/requests", {"type": rtype, "email": email, "name": "V"})


def letters_to(runtime: Runtime, tenant: str, address: str) -> int:
    with runtime.tenant_context(tenant) as ctx:
        views = [
            mail_reading.read_message(ctx, m.id) for m in mail_reading.list_messages(ctx, limit=500)
        ]
    return sum(1 for v in views if v.letter and v.letter.to == address)


def requests_in(runtime: Runtime, tenant: str) -> int:
    with runtime.tenant_context(tenant) as ctx:
        return len(rights.queue(ctx, rights.QueueFilter(open_only=False)))


def test_one_address_gets_at_most_five_requests_a_day(runtime: Runtime, tenant: str) -> None:
    for n in range(5):  # from five different addresses: the count is the e-mail address's
        assert Visitor(runtime, f"198.51.100.{n}").ask().status_code == 200
    assert requests_in(runtime, "acme") == 5
    mailed = letters_to(runtime, "acme", VICTIM)
    assert mailed == 10  # an acknowledgement and a code each
    refused = Visitor(runtime, "192.0.2.1").ask(VICTIM.upper())  # the address as normalised
    assert refused.status_code == 429
    assert RECENT in refused.text and "follow the link in the e-mail we sent" in refused.text
    assert "Traceback" not in refused.text and "dashboard" not in refused.text.lower()
    # Not taken: no request, no letter — whichever right it asks for.
    opt_out = Visitor(runtime, "192.0.2.2").ask(rtype="opt_out_sale")
    assert opt_out.status_code == 429
    assert requests_in(runtime, "acme") == 5
    assert letters_to(runtime, "acme", VICTIM) == mailed
    # Someone else's address is taken; the count is the tenant's own.
    assert Visitor(runtime).ask("someone.else@example.com").status_code == 200
    make_tenant(runtime, "other")
    assert Visitor(runtime).ask(slug="other").status_code == 200
    # A day later the address may ask again.
    with frozen(utcnow() + timedelta(hours=24, minutes=1)):
        assert Visitor(runtime).ask().status_code == 200
    assert requests_in(runtime, "acme") == 7


def test_the_message_names_the_privacy_contact(runtime: Runtime) -> None:
    make_tenant(runtime, "acme", privacy_contact="privacy@acme.example")
    visitor = Visitor(runtime, requests_per_address_per_day=1)
    assert visitor.ask().status_code == 200
    refused = visitor.ask()
    assert refused.status_code == 429 and "write to privacy@acme.example" in refused.text


def test_authenticated_channels_are_not_limited(runtime: Runtime, tenant: str) -> None:
    """Staff, the API and agents' batches answer for what they send: their requests are
    neither limited nor counted against the privacy center's."""
    client = api_client(runtime, make_api_token(runtime, tenant))
    for _ in range(6):
        r = client.post("/api/v1/requests", json={"type": "access", "requester": {"email": VICTIM}})
        assert r.status_code == 201
    assert Visitor(runtime).ask().status_code == 200
    assert requests_in(runtime, "acme") == 7


def test_the_limit_can_be_switched_off(runtime: Runtime, tenant: str) -> None:
    visitor = Visitor(runtime, requests_per_address_per_day=0)
    for _ in range(6):
        assert visitor.ask().status_code == 200


def test_one_client_address_is_limited_on_every_public_form(runtime: Runtime, tenant: str) -> None:
    visitor = Visitor(runtime, public_form_rate="4/10 minutes")
    assert visitor.ask().status_code == 200
    assert visitor.post("/p/acme/requests/confirm", {"reference": "R-00000000"}).status_code == 404
    assert visitor.post("/p/acme/requests/verify/" + "x" * 43, {}).status_code == 404
    assert visitor.post("/p/acme/preferences?s=a&e=b&sig=c", {}).status_code == 404
    # The fifth post: refused before anything is looked up, with when to come back.
    for path, data in (
        ("/p/acme/requests", {"type": "access", "email": "new@example.com"}),
        ("/p/acme/requests/confirm", {"reference": "R-00000000"}),
        ("/p/acme/requests/verify/" + "x" * 43, {}),
        ("/p/acme/preferences?s=a&e=b&sig=c", {}),
        ("/p/acme/preferences/withdraw?s=a&e=b&sig=c", {"purpose": "news"}),
    ):
        r = visitor.post(path, data)
        assert r.status_code == 429, path
        assert 1 <= int(r.headers["Retry-After"]) <= 600
        assert "Too many forms sent from your network" in r.text
        assert "Traceback" not in r.text
    assert requests_in(runtime, "acme") == 1
    assert letters_to(runtime, "acme", "new@example.com") == 0
    # Another address is not held back.
    assert Visitor(runtime, "198.51.100.1").ask("new@example.com").status_code == 200


def test_one_click_unsubscribe_is_not_limited(runtime: Runtime, tenant: str) -> None:
    """Mail providers send RFC 8058 unsubscribes for all their users from a few addresses:
    a per-address limit would refuse people's unsubscribes."""
    visitor = Visitor(runtime, public_form_rate="1/10 minutes")
    for _ in range(3):
        r = visitor.client.post("/u/" + "x" * 43, data={"List-Unsubscribe": "One-Click"})
        assert r.status_code == 404


def _over_the_limit(runtime: Runtime) -> Visitor:
    """A visitor that has used up its one form in the window."""
    visitor = Visitor(runtime, public_form_rate="1/10 minutes")
    assert visitor.post("/p/acme/requests/confirm", {"reference": "R-00000000"}).status_code == 404
    return visitor


def _refused(r: Response) -> None:
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 600
    assert "Too many forms sent from your network" in r.text


def test_an_appeal_past_the_limit_is_refused_and_not_recorded(
    runtime: Runtime, person: str
) -> None:
    with runtime.tenant_context(person) as ctx:
        made = rights.submit(ctx, RequestInput("access", Requester(VICTIM), "US-CO"))
        fulfilment.deny(ctx, made, "identity_not_verified", "we could not confirm it was you")
        appeal = f"/p/acme/requests/status/{status_links.status_token(ctx, made)}/appeal"
        request_id = made.id
    _refused(_over_the_limit(runtime).post(appeal, {}))
    with runtime.tenant_context(person) as ctx:
        made = rights.get_request(ctx, request_id)
        assert (made.state, made.appeal_received_at) == ("denied", None)
    # The link still works for a visitor within the limit: nothing was used up.
    r = Visitor(runtime, "198.51.100.1").post(appeal, {})
    assert r.status_code == 303 and r.headers["location"].endswith("?appealed=1")


def test_a_download_past_the_limit_is_refused_and_the_link_kept(
    runtime: Runtime, person: str
) -> None:
    request_id = verified_access_request(runtime, person)
    with runtime.tenant_context(person) as ctx:
        url = fulfilment.fulfil(ctx, rights.get_request(ctx, request_id)).download_url
    assert url
    link = urlsplit(url).path
    _refused(_over_the_limit(runtime).post(link, {}))

    def downloads() -> int:
        with runtime.tenant_context(person) as ctx:
            entries = audit.list_entries(ctx, limit=500)
        return sum(1 for e in entries if e.event == AuditEvent.RIGHTS_DOWNLOAD.value)

    assert downloads() == 0
    r = Visitor(runtime, "198.51.100.1").post(link, {})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert downloads() == 1


def test_two_requests_for_one_address_at_once_are_counted_one_after_the_other(
    runtime: Runtime, tenant: str
) -> None:
    """PostgreSQL: the second waits for the first's count and insert, then counts it."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: a second writer waits for the first's transaction (BEGIN IMMEDIATE)")
    second = Visitor(runtime, "198.51.100.9", requests_per_address_per_day=1)
    answers: list[Response] = []
    with runtime.tenant_context(tenant) as ctx:
        # The first, as the form takes it: counted, then received; not yet committed.
        public._refuse_if_many_recent(ctx, VICTIM, 1)
        workflow.receive(ctx, RequestInput("access", Requester(VICTIM), "EU", "privacy_center"))
        other = threading.Thread(target=lambda: answers.append(second.ask()))
        other.start()
        until_done_or_blocked(runtime, other, "the second request")
    other.join()
    assert answers[0].status_code == 429 and RECENT in answers[0].text
    assert requests_in(runtime, tenant) == 1
