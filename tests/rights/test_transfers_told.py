"""The access answer tells transfers out of the tenant's region and their safeguards (GDPR
Art. 15(1)(c) and 15(2)): a recipient in a country of the region is no transfer; one outside
it is, told with the mechanism recorded for it — or that none is recorded."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.errors import InvalidInput
from pledge.rights import bundle, recipients
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput
from pledge.tenants.jurisdictions import EEA, countries_of_region
from tests.cli.test_cli import run
from tests.conftest import api_client, make_api_token, make_tenant

NO_RECORD: dict[str, list[object]] = {"fields": [], "interactions": []}


def test_regions_are_the_countries_their_law_covers() -> None:
    # GDPR applies across the EEA: the 27 member states and Iceland, Liechtenstein, Norway.
    assert len(EEA) == 30
    assert {"NL", "DE", "IE", "GR", "IS", "LI", "NO"} <= countries_of_region("EU")
    assert not {"GB", "CH", "US", "JE"} & countries_of_region("EU")
    assert countries_of_region("EEA") == countries_of_region("eu")
    assert "GB" in countries_of_region("UK") and "IE" not in countries_of_region("UK")
    assert countries_of_region("CH") == {"CH"}
    assert countries_of_region("US") == countries_of_region("US-CA") == {"US"}
    assert countries_of_region("AU") == {"AU"}
    assert countries_of_region("nz") == {"NZ"}  # a country code: that country
    assert countries_of_region("somewhere") == frozenset()  # unknown: everything is told


def test_a_server_in_the_tenants_own_region_is_no_transfer(runtime: Runtime) -> None:
    """Seed 001 §14: "EU customers' databases will be hosted in 1CRM's EU datacenter located
    in the Netherlands" — no transfer for an EU customer; the US is one, told with its
    safeguard."""
    make_tenant(runtime, "onecrm", region="EU")
    with runtime.tenant_context("onecrm") as ctx:
        recipients.add_recipient(
            ctx,
            slug="eu-dc",
            name="EU datacenter",
            kind="sub_processor",
            country="NL",
            webhook_url=None,
        )
        recipients.add_recipient(
            ctx,
            slug="google",
            name="Google Applications",
            kind="sub_processor",
            country="US",
            webhook_url=None,
            transfer_mechanism="standard_contractual_clauses",
        )
        sid = subjects.create_subject(ctx, [FieldInput("email", "user@example.com")])
        info = bundle.art15_information(ctx, sid, NO_RECORD, "EU")
    assert info["transfers"] == [
        {
            "country": "US",
            "recipients": ["Google Applications"],
            "mechanism": "standard_contractual_clauses",
            "safeguard": "standard contractual clauses",
        }
    ]


def test_a_uk_tenants_gb_recipient_is_no_transfer_its_irish_one_is(runtime: Runtime) -> None:
    make_tenant(runtime, "clik", region="UK", jurisdictions=["UK"])
    with runtime.tenant_context("clik") as ctx:
        recipients.add_recipient(
            ctx, slug="mailer", name="Mailer", kind="sub_processor", country="GB", webhook_url=None
        )
        recipients.add_recipient(
            ctx,
            slug="helpdesk",
            name="Helpdesk",
            kind="sub_processor",
            country="IE",
            webhook_url=None,
            transfer_mechanism="adequacy_decision",
        )
        sid = subjects.create_subject(ctx, [FieldInput("email", "user@example.com")])
        info = bundle.art15_information(ctx, sid, NO_RECORD, "UK")
    assert [(t["country"], t["recipients"], t["safeguard"]) for t in info["transfers"]] == [
        ("IE", ["Helpdesk"], "an adequacy decision")
    ]


def test_a_transfer_without_a_safeguard_says_none_is_recorded(runtime: Runtime) -> None:
    """Adding a recipient outside the region with no mechanism still works; the person is
    told no safeguard is recorded (in the JSON and on the page), and staff see a warning."""
    make_tenant(runtime, "acme", region="EU")
    with runtime.tenant_context("acme") as ctx:
        for slug, name in (("crm", "US CRM"), ("ads", "US Ads")):
            recipients.add_recipient(
                ctx, slug=slug, name=name, kind="recipient", country="US", webhook_url=None
            )
        recipients.add_recipient(
            ctx,
            slug="cloud",
            name="US Cloud",
            kind="sub_processor",
            country="US",
            webhook_url=None,
            transfer_mechanism="binding_corporate_rules",
        )
        sid = subjects.create_subject(ctx, [FieldInput("email", "user@example.com")])
        content = bundle.build(ctx, sid, "EU", reference="R-T")
        warnings = {
            r.slug: recipients.transfer_warning(ctx, r) for r in recipients.list_recipients(ctx)
        }
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        doc = json.loads(archive.read("your-data.json"))
        page = archive.read("your-data.html").decode()
    transfers = doc["about_the_processing"]["transfers"]
    assert [(t["country"], t["recipients"], t["safeguard"]) for t in transfers] == [
        ("US", ["US Cloud"], "binding corporate rules"),
        ("US", ["US Ads", "US CRM"], "no safeguard recorded"),
    ]
    assert "US Ads, US CRM (US): no safeguard recorded" in page
    assert "US Cloud (US): binding corporate rules" in page
    assert warnings["cloud"] is None
    assert warnings["crm"] == "a transfer to US (outside EU) with no safeguard recorded"


def test_an_unknown_mechanism_is_refused(runtime: Runtime) -> None:
    make_tenant(runtime, "acme")
    with runtime.tenant_context("acme") as ctx, pytest.raises(InvalidInput, match="adequacy"):
        recipients.add_recipient(
            ctx,
            slug="crm",
            name="CRM",
            kind="recipient",
            country="US",
            webhook_url=None,
            transfer_mechanism="a handshake",
        )
    with runtime.tenant_context("acme") as ctx:
        assert recipients.list_recipients(ctx) == []


def test_adding_a_recipient_is_audited_with_where_the_data_goes(runtime: Runtime) -> None:
    """A new recipient changes what every access answer and letter says: the audit trail
    tells who added it, where it is and under which safeguard."""
    make_tenant(runtime, "acme")
    with runtime.tenant_context("acme") as ctx:
        added, _secret = recipients.add_recipient(
            ctx,
            slug="crm",
            name="CRM Inc.",
            kind="sub_processor",
            country="us",
            webhook_url=None,
            transfer_mechanism="standard_contractual_clauses",
        )
    with runtime.tenant_context("acme") as ctx:
        entries = [
            e.details
            for e in audit.list_entries(ctx, limit=50)
            if e.event == AuditEvent.RECIPIENT_ADDED.value
        ]
    assert entries == [
        {
            "recipient_id": str(added.id),
            "slug": "crm",
            "kind": "sub_processor",
            "country": "US",
            "transfer_mechanism": "standard_contractual_clauses",
            "webhook": False,
        }
    ]


def test_the_api_sets_validates_and_warns_of_the_mechanism(runtime: Runtime) -> None:
    make_tenant(runtime, "acme", region="EU")
    api = api_client(runtime, make_api_token(runtime, "acme"))
    r = api.post(
        "/api/v1/recipients",
        json={"slug": "crm", "name": "CRM", "country": "US", "transfer_mechanism": "uk_idta"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["transfer_mechanism"] == "uk_idta" and r.json()["warning"] is None
    r = api.post(
        "/api/v1/recipients",
        json={"slug": "ads", "name": "Ads", "country": "US", "transfer_mechanism": "trust us"},
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    r = api.post("/api/v1/recipients", json={"slug": "ads", "name": "Ads", "country": "US"})
    assert r.status_code == 201
    assert r.json()["transfer_mechanism"] is None
    assert "no safeguard recorded" in r.json()["warning"]
    r = api.post("/api/v1/recipients", json={"slug": "dc", "name": "DC", "country": "NL"})
    assert r.json()["warning"] is None  # in the region: no transfer
    listed = {x["slug"]: x for x in api.get("/api/v1/recipients").json()}
    assert listed["crm"]["transfer_mechanism"] == "uk_idta"
    assert listed["crm"]["warning"] is None
    assert "no safeguard recorded" in listed["ads"]["warning"]
    assert listed["dc"]["warning"] is None


def test_the_cli_sets_validates_and_warns_of_the_mechanism(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    make_tenant(runtime, "acme", region="EU")
    add = ("rights", "add-recipient", "-t", "acme")
    code, out = run(*add, "crm", "--name", "CRM", "--country", "US", "--transfer-mechanism", "x")
    assert code == 1 and "transfer mechanism is one of" in out, out
    code, out = run(
        *add, "crm", "--name", "CRM", "--country", "US", "--transfer-mechanism", "adequacy_decision"
    )
    assert code == 0 and "crm" in out, out
    code, out = run(*add, "ads", "--name", "Ads", "--country", "US", "--kind", "sub_processor")
    assert code == 0 and "with no safeguard recorded" in out, out
    code, out = run("rights", "recipients", "-t", "acme")
    assert code == 0, out
    assert "adequacy_decision" in out
    assert "a transfer to US (outside EU) with no safeguard recorded" in out
    with runtime.tenant_context("acme") as ctx:
        mechanisms = {r.slug: r.transfer_mechanism for r in recipients.list_recipients(ctx)}
    assert mechanisms == {"ads": None, "crm": "adequacy_decision"}
