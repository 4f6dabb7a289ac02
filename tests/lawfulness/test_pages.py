"""The lawfulness pages over HTTP: forms that keep what was typed and say what is wrong, CSRF,
roles, and 404 for what does not exist."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from pledge.access.permissions import Role
from pledge.purposes import service as purposes
from pledge.runtime import Runtime
from pledge.web.app import create_app
from tests.conftest import login, make_user

HTML = {"accept": "text/html"}


@pytest.fixture
def browser(runtime: Runtime, clik_tenant: str) -> tuple[TestClient, str]:
    make_user(runtime, clik_tenant, "owner@acme.example", Role.OWNER)
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    csrf = login(client, clik_tenant, "owner@acme.example")
    return client, csrf


def test_collection_point_pages_create_and_edit(
    runtime: Runtime, browser: tuple[TestClient, str]
) -> None:
    client, csrf = browser
    listing = client.get("/collection-points")
    assert listing.status_code == 200
    assert "Live chat on the product page (HubSpot)" in listing.text
    assert "Product information consent v1" in listing.text
    form = client.get("/collection-points/new")
    assert (
        'name="wording:newsletter"' in form.text
        and "Consent wording for The Clik newsletter" in form.text
    )

    # A consent purpose without words to show: refused, and the form keeps the input.
    with runtime.tenant_context("acme") as ctx:
        purposes.create_purpose(
            ctx,
            purposes.PurposeInput(slug="offers", name="Offers", lawful_basis="Consent"),
        )
    data = {
        "csrf_token": csrf,
        "slug": "fair",
        "name": "Trade fair stand",
        "kind": "trade_show",
        "purposes": ["record-keeping", "offers"],
    }
    r = client.post("/collection-points", data=data)
    assert r.status_code == 422
    assert "give the consent wording shown" in r.text and "Trade fair stand" in r.text
    r = client.post(
        "/collection-points",
        data={**data, "wording:offers": "newsletter-consent"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/collection-points?notice=point-saved"
    with runtime.tenant_context("acme") as ctx:
        point = purposes.get_collection_point(ctx, "fair")
        links = {p.slug: w for p, w in purposes.collection_point_purposes(ctx, point)}
        assert set(links) == {"offers", "record-keeping"}
    r = client.post("/collection-points", data={**data, "wording:offers": "newsletter-consent"})
    assert r.status_code == 422 and "already exists" in r.text

    edit = client.get("/collection-points/fair")
    assert edit.status_code == 200 and 'value="newsletter-consent" selected' in edit.text
    r = client.post(
        "/collection-points/fair",
        data={
            "csrf_token": csrf,
            "name": "Fair",
            "kind": "trade_show",
            "purposes": "record-keeping",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert client.get("/collection-points/nope", headers=HTML).status_code == 404


def test_notice_pages_create_publish_and_refuse_bad_input(
    browser: tuple[TestClient, str],
) -> None:
    client, csrf = browser
    r = client.post(
        "/notices",
        data={"csrf_token": csrf, "slug": "cookies", "kind": "privacy_notice", "title": "Cookies"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/notices/cookies?notice=created"
    assert "No version published yet." in client.get("/notices/cookies").text
    r = client.post(
        "/notices",
        data={"csrf_token": csrf, "slug": "cookies", "kind": "privacy_notice", "title": "Again"},
    )
    assert r.status_code == 422 and "already exists" in r.text and 'value="Again"' in r.text

    bad = {"csrf_token": csrf, "text": "We use cookies.", "language": "en", "effective_at": "soon"}
    r = client.post("/notices/cookies/versions", data=bad)
    assert r.status_code == 422 and "Takes effect" in r.text and "We use cookies." in r.text
    ok = {**bad, "effective_at": "2020-01-01T10:00"}
    r = client.post("/notices/cookies/versions", data=ok, follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/notices/cookies")
    assert "in force" in page.text and "2020-01-01 10:00 UTC" in page.text
    r = client.get("/notices/cookies/diff", headers=HTML)
    assert r.status_code == 404 and "no version before version 1" in r.text
    assert client.get("/notices/cookies/versions/1").status_code == 200
    assert client.get("/notices/cookies/versions/2", headers=HTML).status_code == 404
    listing = client.get("/notices")
    assert "Cookies" in listing.text and "v1 (en)" in listing.text


def test_forms_need_the_csrf_token_and_the_right_role(
    runtime: Runtime, browser: tuple[TestClient, str]
) -> None:
    client, _csrf = browser
    r = client.post("/purposes", data={"slug": "x", "name": "X"}, headers=HTML)
    assert r.status_code == 403
    make_user(runtime, "acme", "viewer@acme.example", Role.VIEWER)
    viewer = TestClient(create_app(runtime), raise_server_exceptions=False)
    csrf = login(viewer, "acme", "viewer@acme.example")
    listing = viewer.get("/purposes")
    assert listing.status_code == 200 and "New purpose" not in listing.text
    form = viewer.get("/purposes/newsletter")
    assert form.status_code == 200 and "<fieldset disabled>" in form.text
    assert "Save purpose" not in form.text
    for path in ("/purposes/new", "/collection-points/new", "/notices/new", "/gate"):
        assert viewer.get(path, headers=HTML).status_code == 403, path
    r = viewer.post("/purposes/newsletter/archive", data={"csrf_token": csrf}, headers=HTML)
    assert r.status_code == 403
    assert viewer.get("/reports/lawful-basis", headers=HTML).status_code == 403
    # Signed out: the pages ask for a sign-in.
    anonymous = TestClient(create_app(runtime), raise_server_exceptions=False)
    r = anonymous.get("/notices", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/notices"
