"""The public preference center: reached by a signed, expiring link; honours GPC; saves only
with the page's CSRF token."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import select

from pledge.consent import service as consent
from pledge.consent.models import ConsentRecord
from pledge.core.clock import frozen, utcnow
from pledge.gate import service as gate
from pledge.gate.service import Reason
from pledge.preferences import links
from pledge.preferences import service as preferences
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from tests.conftest import make_tenant
from tests.messaging.conftest import BASE_URL, anonymous, follow_status, person, subscribe


def _link(runtime: Runtime, tenant: str, subject_id: uuid.UUID) -> str:
    with runtime.tenant_context(tenant) as ctx:
        return links.preference_link(ctx, subject_id)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _csrf(page_html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page_html)
    assert found
    return found.group(1)


def _open(client: TestClient, url: str, **headers: str) -> str:
    r = client.get(_path(url), headers={"Accept": "text/html", **headers})
    assert r.status_code == 200, r.text
    return r.text


def test_the_link_is_signed_for_one_tenant_and_subject(runtime: Runtime, clik_tenant: str) -> None:
    sid = subscribe(runtime, clik_tenant, "ann@example.com")
    url = _link(runtime, clik_tenant, sid)
    assert url.startswith(f"{BASE_URL}/p/{clik_tenant}/preferences?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert set(query) == {"s", "e", "sig"} and query["s"] == str(sid)
    client = anonymous(runtime)
    page = _open(client, url)
    assert "Your preferences" in page and "The Clik newsletter" in page

    other = subscribe(runtime, clik_tenant, "bob@example.com")
    make_tenant(runtime, "other")
    bad = {
        "another subject": {**query, "s": str(other)},
        "forged signature": {
            **query,
            "sig": query["sig"][:-2] + ("BB" if query["sig"].endswith("AA") else "AA"),
        },
        "later expiry": {**query, "e": str(int(query["e"]) + 3600)},
        "no signature": {"s": query["s"], "e": query["e"]},
    }
    for name, params in bad.items():
        r = client.get(f"/p/{clik_tenant}/preferences?{urlencode(params)}")
        assert r.status_code == 404, name
    # The same link under another tenant's slug, or a slug that exists nowhere.
    for slug in ("other", "nobody"):
        r = client.get(f"/p/{slug}/preferences?{urlencode(query)}", headers={"Accept": "text/html"})
        assert r.status_code == 404 and "not valid or has expired" in r.text


def test_the_link_expires(runtime: Runtime, clik_tenant: str) -> None:
    sid = subscribe(runtime, clik_tenant, "cid@example.com")
    url = _link(runtime, clik_tenant, sid)
    client = anonymous(runtime)
    with frozen(utcnow() + links.LINK_LIFETIME + timedelta(minutes=1)):
        assert client.get(_path(url)).status_code == 404
    with frozen(utcnow() + timedelta(days=300)):
        assert client.get(_path(url)).status_code == 200


def test_an_erased_subject_has_no_preference_center(runtime: Runtime, clik_tenant: str) -> None:
    sid = subscribe(runtime, clik_tenant, "dot@example.com")
    url = _link(runtime, clik_tenant, sid)
    with runtime.tenant_context(clik_tenant) as ctx:
        from pledge.subjects import erasure

        erasure.erase_subject(ctx, sid)
    assert anonymous(runtime).get(_path(url)).status_code == 404


def test_switching_a_topic_off_and_saving(runtime: Runtime, clik_tenant: str) -> None:
    sid = follow_status(runtime, clik_tenant, "eli@example.com")
    url = _link(runtime, clik_tenant, sid)
    client = anonymous(runtime)
    page = _open(client, url)
    assert re.search(r'id="topic-email-status"[^>]*checked', page)
    # Everything that was on, minus status updates: what a person leaves ticked.
    on = re.findall(r'name="topic" value="([^"]+)"\s+checked', page)
    assert "email:status" in on
    form = {"csrf_token": _csrf(page), "topic": [v for v in on if v != "email:status"]}
    r = client.post(_path(url), data=form, follow_redirects=False)
    assert r.status_code == 303
    saved = client.get(r.headers["location"], headers={"Accept": "text/html"}).text
    assert "Your preferences are saved" in saved
    assert not re.search(r'id="topic-email-status"[^>]*checked', saved)
    with runtime.tenant_context(clik_tenant) as ctx:
        assert gate.may(ctx, sid, "status-updates", "email", topic="status").reasons == [
            Reason.TOPIC_OPT_OUT
        ]
        assert [o.source for o in preferences.opt_outs(ctx, sid)] == ["preference_center"]


def test_saving_needs_the_page_csrf_token(runtime: Runtime, clik_tenant: str) -> None:
    sid = follow_status(runtime, clik_tenant, "fox@example.com")
    url = _link(runtime, clik_tenant, sid)
    client = anonymous(runtime)
    _open(client, url)
    r = client.post(_path(url), data={"topic": []})
    assert r.status_code == 403
    with runtime.tenant_context(clik_tenant) as ctx:
        assert gate.may(ctx, sid, "status-updates", "email", topic="status").allowed


def test_ticking_a_consent_topic_gives_that_consent_with_its_wording(
    runtime: Runtime, clik_tenant: str
) -> None:
    sid = follow_status(runtime, clik_tenant, "gus@example.com")
    url = _link(runtime, clik_tenant, sid)
    client = anonymous(runtime)
    page = _open(client, url)
    assert "Yes, send me the Clik newsletter by e-mail" in page  # the wording, next to the box
    on = re.findall(r'name="topic" value="([^"]+)"\s+checked', page)
    assert "email:newsletter" not in on
    r = client.post(
        _path(url), data={"csrf_token": _csrf(page), "topic": [*on, "email:newsletter"]}
    )
    assert r.status_code == 200
    with runtime.tenant_context(clik_tenant) as ctx:
        assert gate.may(ctx, sid, "newsletter", "email", topic="newsletter").allowed
        grant = ctx.session.scalars(
            select(ConsentRecord).where(ConsentRecord.subject_id == sid)
        ).one()
        assert (grant.action, grant.method) == ("grant", "preference_center")
        assert grant.wording_sha256 is not None


def test_one_click_withdrawal_of_a_consent(runtime: Runtime, clik_tenant: str) -> None:
    sid = subscribe(runtime, clik_tenant, "hep@example.com")
    url = _link(runtime, clik_tenant, sid)
    client = anonymous(runtime)
    page = _open(client, url)
    assert "Consents you have given" in page and "Withdraw consent: The Clik newsletter" in page
    withdraw = urlsplit(url)._replace(path=f"/p/{clik_tenant}/preferences/withdraw")
    r = client.post(
        _path(withdraw.geturl()), data={"csrf_token": _csrf(page), "purpose": "newsletter"}
    )
    assert r.status_code == 200 and "Your consent is withdrawn" in r.text
    assert "You have no consent in force" in r.text
    with runtime.tenant_context(clik_tenant) as ctx:
        assert gate.may(ctx, sid, "newsletter", "email").reasons == [Reason.CONSENT_WITHDRAWN]
        methods = [
            r.method
            for r in ctx.session.scalars(
                select(ConsentRecord).where(ConsentRecord.action == "withdraw")
            )
        ]
        assert methods == ["preference_center"]


def test_all_marketing_off_keeps_service_messages(runtime: Runtime, clik_tenant: str) -> None:
    sid = subscribe(runtime, clik_tenant, "ivy@example.com")
    with runtime.tenant_context(clik_tenant) as ctx:
        consent.add_relationship(ctx, sid, "provide-service")
        consent.add_relationship(ctx, sid, "product-marketing")
    url = _link(runtime, clik_tenant, sid)
    client = anonymous(runtime)
    page = _open(client, url)
    on = re.findall(r'name="topic" value="([^"]+)"\s+checked', page)
    form = {"csrf_token": _csrf(page), "topic": on, "all_marketing_off": "1"}
    assert client.post(_path(url), data=form).status_code == 200
    with runtime.tenant_context(clik_tenant) as ctx:
        view = preferences.preference_view(ctx, sid)
        assert view.all_marketing_off
        assert Reason.MARKETING_OPT_OUT in gate.may(ctx, sid, "newsletter", "email").reasons
        assert Reason.MARKETING_OPT_OUT in gate.may(ctx, sid, "product-marketing", "post").reasons
        assert gate.may(ctx, sid, "provide-service", "email", topic="account").allowed
        assert gate.may(ctx, sid, "status-updates", "email").reasons == [Reason.NO_BASIS]
    # Turning the switch off again restores nothing the form showed as off.
    page = _open(client, url)
    assert re.search(r'id="all-marketing"[^>]*checked', page)
    on = re.findall(r'name="topic" value="([^"]+)"\s+checked', page)
    assert "email:product-news" not in on
    assert client.post(_path(url), data={"csrf_token": _csrf(page), "topic": on}).status_code == 200
    with runtime.tenant_context(clik_tenant) as ctx:
        view = preferences.preference_view(ctx, sid)
        assert not any(view.marketing_off.values())
        assert not gate.may(ctx, sid, "product-marketing", "email", topic="product-news").allowed


def test_gpc_is_honoured_and_shown(runtime: Runtime, clik_tenant: str) -> None:
    sid = subscribe(runtime, clik_tenant, "joe@example.com")
    url = _link(runtime, clik_tenant, sid)
    client = anonymous(runtime)
    page = _open(client, url, **{"Sec-GPC": "1"})
    assert "Global Privacy Control signal. We honour it" in page
    assert re.search(r'id="sale-opt-out"[^>]*checked', page)
    with runtime.tenant_context(clik_tenant) as ctx:
        subject = subjects.get_subject_row(ctx, sid)
        assert subject.sale_opt_out_at is not None and subject.sale_opt_out_source == "gpc"
    # Without the signal the page says nothing about it; the opt-out stays.
    page = _open(client, url)
    assert "Global Privacy Control" not in page
    assert re.search(r'id="sale-opt-out"[^>]*checked', page)


def test_an_explicit_choice_beats_gpc(runtime: Runtime, clik_tenant: str) -> None:
    sid = subscribe(runtime, clik_tenant, "kim@example.com")
    url = _link(runtime, clik_tenant, sid)
    client = anonymous(runtime)
    page = _open(client, url, **{"Sec-GPC": "1"})
    on = re.findall(r'name="topic" value="([^"]+)"\s+checked', page)
    # The person unticks "Do not sell or share" themselves, with GPC still on.
    r = client.post(
        _path(url), data={"csrf_token": _csrf(page), "topic": on}, headers={"Sec-GPC": "1"}
    )
    assert r.status_code == 200 and "your own choice takes precedence" in r.text
    with runtime.tenant_context(clik_tenant) as ctx:
        subject = subjects.get_subject_row(ctx, sid)
        assert subject.sale_opt_out_at is None
        assert subject.sale_opt_out_source == "explicit_opt_in"


def test_sale_opt_out_switch(runtime: Runtime, clik_tenant: str) -> None:
    with runtime.tenant_context(clik_tenant) as ctx:
        sid = subjects.create_subject(ctx, person("lou@example.com"))
    url = _link(runtime, clik_tenant, sid)
    client = anonymous(runtime)
    page = _open(client, url)
    assert "Do not sell or share my personal information" in page
    assert (
        client.post(_path(url), data={"csrf_token": _csrf(page), "sale_opt_out": "1"}).status_code
        == 200
    )
    with runtime.tenant_context(clik_tenant) as ctx:
        subject = subjects.get_subject_row(ctx, sid)
        assert subject.sale_opt_out_source == "preference_center"
