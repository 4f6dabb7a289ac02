"""The privacy notice in force, public: the page every consent receipt's `policyUrl` names."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import select

from pledge.consent import intake
from pledge.consent.models import ConsentRecord
from pledge.notices import service as notices
from pledge.presets import CLIK_PRIVACY_NOTICE, clik
from pledge.runtime import Runtime
from pledge.subjects.service import FieldInput
from pledge.web.app import create_app

HTML = {"accept": "text/html"}


def test_the_receipts_policy_url_shows_the_notice_in_force(runtime: Runtime, tenant: str) -> None:
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
        intake.collect(
            ctx,
            "newsletter",
            [FieldInput("email", "ada@example.com")],
            [intake.ConsentChoice("newsletter", True)],
        )
        token = ctx.session.scalars(select(ConsentRecord.receipt_jws)).one()
    assert token is not None
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    client = TestClient(create_app(runtime), headers=HTML)
    page = client.get(urlsplit(claims["policyUrl"]).path)
    assert page.status_code == 200
    first_line = CLIK_PRIVACY_NOTICE.splitlines()[0]
    assert first_line in page.text and "Version 1" in page.text
    assert notices.text_hash(CLIK_PRIVACY_NOTICE) in page.text

    # A new version in force replaces it; the receipt's link now shows what is in force.
    with runtime.tenant_context(tenant) as ctx:
        notices.publish_version(ctx, "privacy", text="Clik Limited privacy notice, version two.")
    page = client.get(f"/p/{tenant}/privacy")
    assert "version two" in page.text and "Version 2" in page.text

    assert client.get("/p/no-such-tenant/privacy").status_code == 404
    withdraw = urlsplit(claims["services"][0]["purposes"][0]["termination"].split(": ")[1])
    assert client.get(f"{withdraw.path}?{withdraw.query}").status_code == 200
