"""The rights-request pages: the privacy center (public, per tenant) and the console's queue,
request page and SLA chart — through the real app, on both databases."""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select

from pledge.access.permissions import Role
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent import intake
from pledge.core.clock import frozen
from pledge.mail import reading as mail_reading
from pledge.presets import clik
from pledge.rights import fulfilment, transitions, verification
from pledge.rights import service as rights
from pledge.rights.models import RequestArtifact, RequestState, VerificationChallenge
from pledge.rights.public import TYPES
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.subjects import reading
from pledge.subjects import service as subjects
from pledge.subjects.identity import IdentityKind
from pledge.subjects.service import FieldInput
from pledge.web.app import create_app
from tests.conftest import login, make_tenant, make_user

EMAIL = "paula.pages@example.com"
STRANGER = "nobody.known@example.com"
STAFF = "officer@acme.example"
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
HTML = {"accept": "text/html"}


@pytest.fixture
def person(runtime: Runtime, tenant: str) -> str:
    """Clik's purposes and a customer who bought something (phone and name on file)."""
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
        intake.collect(
            ctx,
            "purchase",
            [
                FieldInput("email", EMAIL),
                FieldInput("first_name", "Paula", "user.name.first"),
                FieldInput("phone", "+447700900123"),
            ],
        )
    return tenant


class Visitor:
    """A browser without a session: the privacy center's CSRF cookie only."""

    def __init__(self, runtime: Runtime, slug: str = "acme") -> None:
        self.client = TestClient(create_app(runtime), raise_server_exceptions=False)
        self.client.headers.update(HTML)
        self.slug = slug
        self.client.get(f"/p/{slug}/requests")
        self.csrf = self.client.cookies["pledge_csrf"]

    def get(self, path: str) -> Response:
        return self.client.get(path)

    def post(
        self,
        path: str,
        data: Mapping[str, object] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        *,
        csrf: bool = True,
    ) -> Response:
        form: dict[str, object] = dict(data or {})
        if csrf:
            form["csrf_token"] = self.csrf
        return self.client.post(path, data=form, files=files, follow_redirects=False)

    def ask(
        self,
        rtype: str,
        email: str = EMAIL,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        **fields: object,
    ) -> Response:
        data: dict[str, object] = {"type": rtype, "email": email, "name": "Paula", **fields}
        # Always multipart, as the browser sends the form (it has a file input).
        empty = {"proof": ("", b"", "application/octet-stream")}
        return self.post(f"/p/{self.slug}/requests", data, files or empty)


def staff_client(
    runtime: Runtime, slug: str = "acme", role: Role = Role.PRIVACY_OFFICER
) -> tuple[TestClient, str]:
    make_user(runtime, slug, STAFF, role)
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    client.headers.update(HTML)
    return client, login(client, slug, STAFF)


def letters_to(runtime: Runtime, tenant: str, address: str) -> list[str]:
    """The texts of the letters in the outbox for `address`, oldest first — read as the
    person would read their mail."""
    with runtime.tenant_context(tenant) as ctx:
        views = [
            mail_reading.read_message(ctx, m.id) for m in mail_reading.list_messages(ctx, limit=500)
        ]
    return [v.letter.text for v in reversed(views) if v.letter and v.letter.to == address]


def link_in(text: str, marker: str) -> str:
    """The path of the first link after `marker` in a letter."""
    url = re.search(re.escape(marker) + r"\s*(\S+)", text)
    assert url, text
    return urlsplit(url.group(1)).path


def verification_mail(runtime: Runtime, tenant: str, address: str = EMAIL) -> tuple[str, str]:
    """(code, link path) of the latest verification e-mail."""
    text = [t for t in letters_to(runtime, tenant, address) if "enter this code" in t][-1]
    code = text.split("enter this code: ")[1][:6]
    return code, link_in(text, "or open this link:")


def status_link(runtime: Runtime, tenant: str, address: str = EMAIL) -> str:
    text = [t for t in letters_to(runtime, tenant, address) if "Follow your request" in t][-1]
    return link_in(text, "read our letters about it, here:")


def reference_in(page: str) -> str:
    found = re.search(r"R-[0-9A-F]{8}", page)
    assert found, page
    return found.group(0)


def the_request(runtime: Runtime, tenant: str, reference: str) -> tuple[str, str]:
    """(id, state) of the request with this reference."""
    with runtime.tenant_context(tenant) as ctx:
        found = rights.get_by_reference(ctx, reference)
        return str(found.id), found.state


def verified_access_request(runtime: Runtime, tenant: str, jurisdiction: str = "EU") -> str:
    with runtime.tenant_context(tenant) as ctx:
        request = rights.submit(ctx, RequestInput("access", Requester(EMAIL), jurisdiction))
        challenge = verification.begin(ctx, request)
        assert challenge is not None
        outcome = verification.confirm(
            ctx, request, code=challenge.code, data_points={"phone": "+447700900123"}
        )
        assert outcome.verified
        return str(request.id)


# ---------------------------------------------------------------------------------------------
# The privacy center: asking


def test_choose_a_right_then_its_form(runtime: Runtime, person: str) -> None:
    v = Visitor(runtime)
    r = v.get("/p/acme/requests")
    assert r.status_code == 200 and "no-store" in r.headers["cache-control"]
    for label, line in TYPES.values():
        assert label in r.text and line in r.text
    assert r.text.count('type="radio"') == 11
    for rtype in TYPES:
        r = v.get(f"/p/acme/requests?type={rtype}")
        assert r.status_code == 200 and "Send request" in r.text, rtype
        assert 'name="csrf_token"' in r.text and 'enctype="multipart/form-data"' in r.text
    assert 'name="proof"' in v.get("/p/acme/requests?type=rectification").text
    assert 'name="proof"' not in v.get("/p/acme/requests?type=erasure").text
    objection = v.get("/p/acme/requests?type=objection").text
    assert "Information on our products and services" in objection  # marketing, objectable
    assert "Supply and support the services purchased" not in objection  # a contract
    assert "The Clik newsletter" in v.get("/p/acme/requests?type=withdraw_consent").text
    r = v.get("/p/acme/requests?type=nonsense")
    assert r.status_code == 200 and "Choose one of the requests below" in r.text
    r = v.get("/p/no-such-tenant/requests")
    assert r.status_code == 404 and "Not found" in r.text
    assert "dashboard" not in r.text.lower()


def test_the_same_answer_for_a_known_and_an_unknown_address(runtime: Runtime, person: str) -> None:
    v = Visitor(runtime)
    known = v.ask("access")
    unknown = v.ask("access", email=STRANGER)
    assert known.status_code == unknown.status_code == 200
    assert "Check your e-mail" in known.text
    ref_known, ref_unknown = reference_in(known.text), reference_in(unknown.text)
    assert known.text.replace(ref_known, "R-X") == unknown.text.replace(ref_unknown, "R-X")
    assert "Paula" not in known.text.replace('value="Paula"', "")
    # Both got an acknowledgement and a code, each at their own address.
    for address in (EMAIL, STRANGER):
        texts = letters_to(runtime, "acme", address)
        assert any("We received your access" in t for t in texts)
        assert any("enter this code" in t for t in texts)
    assert the_request(runtime, "acme", ref_known)[1] == "awaiting_verification"


def test_a_post_without_the_csrf_token_is_refused(runtime: Runtime, person: str) -> None:
    v = Visitor(runtime)
    r = v.post("/p/acme/requests", {"type": "access", "email": EMAIL}, csrf=False)
    assert r.status_code == 403
    r = v.post("/p/acme/requests/confirm", {"reference": "R-00000000", "code": "1"}, csrf=False)
    assert r.status_code == 403
    with runtime.tenant_context("acme") as ctx:
        assert rights.queue(ctx) == []


def test_bad_input_is_told_on_the_form_and_nothing_is_written(
    runtime: Runtime, person: str
) -> None:
    v = Visitor(runtime)
    r = v.ask("access", email="not an address")
    assert r.status_code == 422 and "e-mail address is not valid" in r.text
    assert 'role="alert"' in r.text and "not an address" in r.text  # the form keeps the values
    r = v.ask("rectification")
    assert r.status_code == 422 and "which detail is wrong" in r.text
    r = v.ask(
        "rectification",
        field=["first_name"],
        value=["Pauline"],
        files={"proof": ("proof.txt", b"just text", "application/pdf")},
    )
    assert r.status_code == 422 and "PDF, PNG or JPEG" in r.text
    big = PDF + b"0" * (5 * 1024 * 1024)
    r = v.ask(
        "rectification",
        field=["first_name"],
        value=["Pauline"],
        files={"proof": ("big.pdf", big, "application/pdf")},
    )
    assert r.status_code == 422 and "larger than 5 MB" in r.text
    photo = PDF + b"0" * (9 * 1024 * 1024)  # above the API's 4 MB: the form still says why
    r = v.ask(
        "rectification",
        field=["first_name"],
        value=["Pauline"],
        files={"proof": ("photo.pdf", photo, "application/pdf")},
    )
    assert r.status_code == 422 and "larger than 5 MB" in r.text
    huge = PDF + b"0" * (21 * 1024 * 1024)  # past what the form takes at all (20 MB)
    r = v.ask(
        "rectification",
        field=["first_name"],
        value=["Pauline"],
        files={"proof": ("huge.pdf", huge, "application/pdf")},
    )
    assert r.status_code == 413
    r = v.ask("objection", purpose=["no-such-purpose"])
    assert r.status_code == 422 and "choose purposes from the list" in r.text.lower()
    r = v.ask("nonsense")
    assert r.status_code == 422
    with runtime.tenant_context("acme") as ctx:
        assert rights.queue(ctx, rights.QueueFilter(open_only=False)) == []
        assert mail_reading.list_messages(ctx) == []


def test_a_rectification_keeps_its_proof_sealed(runtime: Runtime, person: str) -> None:
    v = Visitor(runtime)
    r = v.ask(
        "rectification",
        field=["first_name", "last_name"],
        value=["Pauline", "Page"],
        files={"proof": ("id.pdf", PDF, "application/pdf")},
    )
    assert r.status_code == 200, r.text
    request_id, _ = the_request(runtime, "acme", reference_in(r.text))
    with runtime.tenant_context("acme") as ctx:
        request = rights.get_request(ctx, request_id)
        details = rights.private_part(ctx, request)["details"]
        assert details["proposed"] == {"first_name": "Pauline", "last_name": "Page"}
        from pledge.rights import letters

        [proof] = letters.list_artifacts(ctx, request, kinds=("proof",))
        assert proof.media_type == "application/pdf" and proof.name.endswith(".pdf")
        assert letters.open_artifact(ctx, request, proof) == PDF
        assert PDF not in proof.sealed


def test_objection_and_withdrawal_name_purposes(runtime: Runtime, person: str) -> None:
    v = Visitor(runtime)
    r = v.ask("objection", purpose=["product-marketing"], note="no more offers please")
    assert r.status_code == 200 and "<h1>Done</h1>" in r.text
    request_id, state = the_request(runtime, "acme", reference_in(r.text))
    assert state == "completed"  # direct marketing only: stopped at once, no verification
    with runtime.tenant_context("acme") as ctx:
        details = rights.private_part(ctx, rights.get_request(ctx, request_id))["details"]
    assert details == {"purposes": ["product-marketing"], "note": "no more offers please"}


def test_a_mixed_objection_says_the_marketing_stopped_and_the_rest_waits(
    runtime: Runtime, person: str
) -> None:
    v = Visitor(runtime)
    for address in (EMAIL, STRANGER):  # the same page: whether we know the address is not said
        r = v.ask("objection", email=address, purpose=["status-updates", "product-marketing"])
        assert r.status_code == 200 and "<h1>Check your e-mail</h1>" in r.text
        assert "Direct marketing to this address stops now" in r.text
        assert "Nothing else happens until you confirm" in r.text
    r = v.ask("objection", purpose=["status-updates"])
    assert "Direct marketing" not in r.text and "Nothing happens until you confirm" in r.text


def test_an_opt_out_is_done_at_once_for_anyone(runtime: Runtime, person: str) -> None:
    v = Visitor(runtime)
    for address in (EMAIL, STRANGER):
        r = v.ask("opt_out_sale", email=address, jurisdiction="US-CA")
        assert r.status_code == 200 and "<h1>Done</h1>" in r.text
        assert "until you confirm" not in r.text  # nothing to confirm: it is done
        assert the_request(runtime, "acme", reference_in(r.text))[1] == "completed"
    with runtime.tenant_context("acme") as ctx:
        sid = reading.find_subject_id(ctx, IdentityKind.EMAIL, EMAIL)
        assert sid is not None
        assert subjects.get_subject_row(ctx, sid).sale_opt_out_at is not None


# ---------------------------------------------------------------------------------------------
# Confirming


def test_opening_the_link_changes_nothing_the_button_verifies(
    runtime: Runtime, person: str
) -> None:
    v = Visitor(runtime)
    reference = reference_in(v.ask("access").text)
    code, link = verification_mail(runtime, "acme")
    assert link.startswith("/p/acme/requests/verify/")
    for _ in range(2):  # a link scanner, then the person
        r = v.get(link)
        assert r.status_code == 200 and "Confirm my request" in r.text
        assert "Give at least 1 of these details" in r.text
    assert the_request(runtime, "acme", reference)[1] == "awaiting_verification"
    with runtime.tenant_context("acme") as ctx:
        [challenge] = ctx.session.scalars(select(VerificationChallenge)).all()
        assert challenge.attempts == 0  # looking is not trying

    r = v.post(link, {})
    assert r.status_code == 422 and "Give at least 1" in r.text
    r = v.post(link, {"phone": "07700 900999"})
    assert r.status_code == 422 and "do not match" in r.text
    r = v.post(link, {"phone": "07700 900123"})
    assert r.status_code == 200 and "Request confirmed" in r.text, r.text
    assert the_request(runtime, "acme", reference)[1] == "verified"
    r = v.get(link)
    assert r.status_code == 200 and "does not need confirming" in r.text
    r = v.post(link, {"phone": "07700 900123"})
    assert "does not need confirming" in r.text
    assert code  # the code was not needed: the link stands for it


def test_the_code_form_counts_wrong_codes(runtime: Runtime, person: str) -> None:
    v = Visitor(runtime)
    page = v.ask("erasure").text
    reference = reference_in(page)
    assert 'name="code"' in page and f'value="{reference}"' in page  # the form is right there
    code, _link = verification_mail(runtime, "acme")
    wrong = "000000" if code != "000000" else "111111"
    r = v.post("/p/acme/requests/confirm", {"reference": reference, "code": wrong})
    assert r.status_code == 422 and "Give at least 1" in r.text  # asked before the code
    form = {"reference": reference, "code": wrong, "first_name": "paula"}
    r = v.post("/p/acme/requests/confirm", form)
    assert r.status_code == 422 and "That code or link is not right" in r.text
    with runtime.tenant_context("acme") as ctx:
        assert ctx.session.scalars(select(VerificationChallenge)).one().attempts == 1
    r = v.post("/p/acme/requests/confirm", {**form, "reference": "R-00000000"})
    assert r.status_code == 404 and "No request with that reference" in r.text
    r = v.post("/p/acme/requests/confirm", {**form, "code": code, "reference": reference.lower()})
    assert r.status_code == 200 and "Request confirmed" in r.text
    assert the_request(runtime, "acme", reference)[1] == "verified"
    # The code form, reached from the choice page, knows what a reference needs.
    r = v.get(f"/p/acme/requests/confirm?reference={reference}")
    assert r.status_code == 200 and "Details we hold about you" in r.text  # no longer waiting


def test_california_specific_pieces_need_three_points_and_a_declaration(
    runtime: Runtime, person: str
) -> None:
    v = Visitor(runtime)
    page = v.ask("access", jurisdiction="US-CA").text
    assert "Give at least 2 of these details" in page and "penalty of perjury" in page
    reference = reference_in(page)
    code, _ = verification_mail(runtime, "acme")
    form = {"reference": reference, "code": code, "phone": "07700900123", "first_name": "Paula"}
    r = v.post("/p/acme/requests/confirm", form)
    assert r.status_code == 422 and "Tick the declaration" in r.text
    r = v.get(f"/p/acme/requests/confirm?reference={reference}")
    assert "Give at least 2" in r.text and 'name="declaration"' in r.text
    r = v.post("/p/acme/requests/confirm", {**form, "declaration": "yes"})
    assert r.status_code == 200 and "Request confirmed" in r.text
    with runtime.tenant_context("acme") as ctx:
        found = rights.get_by_reference(ctx, reference)
        assert found.verification_level == "email+2+declaration"


# ---------------------------------------------------------------------------------------------
# Following the request; downloads


def test_the_status_link_shows_state_due_date_and_letters(runtime: Runtime, person: str) -> None:
    v = Visitor(runtime)
    reference = reference_in(v.ask("access").text)
    link = status_link(runtime, "acme")
    r = v.get(link)
    assert r.status_code == 200 and "no-store" in r.headers["cache-control"]
    assert reference in r.text and "Waiting for you to confirm it" in r.text
    assert "We will answer by" in r.text and "We received your access" in r.text
    assert "enter this code" not in r.text  # the verification letter stays in the mailbox
    with runtime.tenant_context("acme") as ctx:
        entries = audit.list_entries(ctx, limit=200)
        assert any(
            e.event == AuditEvent.SUBJECT_VIEWED.value and e.details.get("part") == "letters"
            for e in entries
        )
    request_id, secret = link.rsplit("/", 1)[1].split(".", 1)
    for forged in (
        link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"),
        link.replace(request_id, uuid.uuid4().hex),
        link.rsplit("/", 1)[0] + "/garbage",
        link.rsplit("/", 1)[0] + "/abc.\u00b2.x",  # "²" is a digit to str.isdigit, not to int
    ):
        r = v.get(forged)
        assert r.status_code == 404, forged
        assert v.post(forged + "/appeal", {}).status_code == 404, forged
    assert secret


def test_an_appeal_from_the_status_page(runtime: Runtime, person: str) -> None:
    v = Visitor(runtime)
    reference = reference_in(v.ask("access", jurisdiction="US-CO").text)
    request_id, _ = the_request(runtime, "acme", reference)
    with runtime.tenant_context("acme") as ctx:
        request = rights.get_request(ctx, request_id)
        fulfilment.deny(ctx, request, "identity_not_verified", "we could not confirm it was you")
    link = status_link(runtime, "acme")
    r = v.get(link)
    assert "Refused" in r.text and "Appeal our answer" in r.text
    assert "we could not confirm it was you" in r.text
    r = v.post(link + "/appeal", {})
    assert r.status_code == 303 and r.headers["location"].endswith("?appealed=1")
    r = v.get(r.headers["location"])
    assert "We received your appeal" in r.text and "Appeal decided by" in r.text
    assert "Appeal our answer" not in r.text
    assert the_request(runtime, "acme", reference)[1] == "appealed"
    # EU: no appeal inside the company (a complaint to the authority instead).
    reference = reference_in(v.ask("access", jurisdiction="EU").text)
    with runtime.tenant_context("acme") as ctx:
        request = rights.get_by_reference(ctx, reference)
        fulfilment.deny(ctx, request, "identity_not_verified", "we could not confirm it was you")
    r = v.get(status_link(runtime, "acme"))
    assert "Appeal our answer" not in r.text
    r = v.post(status_link(runtime, "acme") + "/appeal", {})
    assert r.status_code == 422 and "grants no appeal" in r.text


def test_a_download_works_once_and_a_look_does_not_use_it(runtime: Runtime, person: str) -> None:
    request_id = verified_access_request(runtime, "acme")
    with runtime.tenant_context("acme") as ctx:
        result = fulfilment.fulfil(ctx, rights.get_request(ctx, request_id))
    assert result.download_url
    completed = [t for t in letters_to(runtime, "acme", EMAIL) if "Download your data" in t][-1]
    link = urlsplit(re.findall(r"https?://\S+/downloads/\S+", completed)[0]).path
    v = Visitor(runtime)
    for _ in range(2):
        r = v.get(link)
        assert r.status_code == 200 and "Download your data" in r.text
    r = v.post(link, {}, csrf=False)
    assert r.status_code == 403
    r = v.post(link, {})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["content-disposition"].startswith("attachment; filename=")
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        assert "your-data.json" in archive.namelist()
    r = v.post(link, {})
    assert r.status_code == 410 and "used already" in r.text
    r = v.get(link)
    assert r.status_code == 410 and "used already" in r.text
    r = v.get(link[:-4] + "xxxx")
    assert r.status_code == 404


def test_links_and_references_of_one_tenant_do_nothing_under_another(
    runtime: Runtime, person: str
) -> None:
    make_tenant(runtime, "other")
    v = Visitor(runtime)
    reference = reference_in(v.ask("access").text)
    code, verify_link = verification_mail(runtime, "acme")
    status = status_link(runtime, "acme")
    done_id = verified_access_request(runtime, "acme")
    with runtime.tenant_context("acme") as ctx:
        result = fulfilment.fulfil(ctx, rights.get_request(ctx, done_id))
    assert result.download_url
    download = urlsplit(result.download_url).path

    o = Visitor(runtime, "other")
    for path in (verify_link, status, download):
        foreign = path.replace("/p/acme/", "/p/other/")
        assert o.get(foreign).status_code == 404, foreign
        if path != status:
            assert o.post(foreign, {"phone": "07700900123"}).status_code == 404, foreign
    assert o.post(status.replace("/p/acme/", "/p/other/") + "/appeal", {}).status_code == 404
    r = o.post(
        "/p/other/requests/confirm", {"reference": reference, "code": code, "phone": "07700900123"}
    )
    assert r.status_code == 404
    # Nothing moved in tenant A: still waiting, the download still there.
    assert the_request(runtime, "acme", reference)[1] == "awaiting_verification"
    assert v.get(download).status_code == 200


# ---------------------------------------------------------------------------------------------
# The console: the queue


def _received(runtime: Runtime, at: datetime, rtype: str, jurisdiction: str) -> str:
    with frozen(at), runtime.tenant_context("acme") as ctx:
        return str(rights.submit(ctx, RequestInput(rtype, Requester(EMAIL), jurisdiction)).id)


def test_the_queue_most_urgent_first_with_due_dates_in_words(runtime: Runtime, person: str) -> None:
    now = datetime.now(UTC)
    later = _received(runtime, now, "erasure", "EU")  # due in about a month
    overdue = _received(runtime, now - timedelta(days=40), "access", "EU")
    soon = _received(runtime, now - timedelta(days=40), "access", "US-CA")  # 45 days: 5 left
    with runtime.tenant_context("acme") as ctx:
        transitions.transition(
            ctx, rights.get_request(ctx, later), RequestState.WITHDRAWN, "withdrawn"
        )
    kept_open = _received(runtime, now, "restriction", "UK")
    client, _csrf = staff_client(runtime)
    with frozen(now):  # "Due in 5 days" counts from the test's today, even across midnight
        r = client.get("/requests")
    assert r.status_code == 200
    rows = re.findall(r'<a href="/requests/([0-9a-f-]{36})">', r.text)
    assert rows == [overdue, soon, kept_open]  # the withdrawn one is closed
    assert re.search(r'class="due due-overdue">[^<]*Overdue by \d+ days', r.text)
    assert re.search(r'class="due due-soon">[^<]*Due in 5 days', r.text)
    assert re.search(r'class="due due-later">[^<]*Due in \d+ days', r.text)
    assert "3 requests open" in r.text

    r = client.get("/requests?state=withdrawn")
    assert re.findall(r'<a href="/requests/([0-9a-f-]{36})">', r.text) == [later]
    r = client.get("/requests?type=restriction")
    assert re.findall(r'<a href="/requests/([0-9a-f-]{36})">', r.text) == [kept_open]
    r = client.get("/requests?type=access&state=&mine=")
    assert re.findall(r'<a href="/requests/([0-9a-f-]{36})">', r.text) == [overdue, soon]
    r = client.get("/requests?state=bogus&type=bogus")
    assert r.status_code == 200 and "3 requests open" in r.text


def test_assign_to_me_and_filter_on_it(runtime: Runtime, person: str) -> None:
    request_id = _received(runtime, datetime.now(UTC), "access", "EU")
    client, csrf = staff_client(runtime)
    assert "No requests match these filters" in client.get("/requests?mine=1").text
    r = client.post(
        f"/requests/{request_id}/assign",
        data={"csrf_token": csrf, "to": "me", "next": "/requests?type=access"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/requests?type=access"
    r = client.get("/requests?mine=1")
    assert request_id in r.text and f"Unassign {reference_of(runtime, request_id)}" in r.text
    # An outside address in `next` is ignored.
    r = client.post(
        f"/requests/{request_id}/assign",
        data={"csrf_token": csrf, "to": "nobody", "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert r.headers["location"] == f"/requests/{request_id}?done=assigned"
    assert request_id not in client.get("/requests?mine=1").text


def reference_of(runtime: Runtime, request_id: str) -> str:
    with runtime.tenant_context("acme") as ctx:
        return rights.get_request(ctx, request_id).reference


def test_the_console_refuses_a_post_without_the_token_and_a_role_without_requests(
    runtime: Runtime, person: str
) -> None:
    request_id = verified_access_request(runtime, "acme")
    client, _csrf = staff_client(runtime)
    r = client.post(f"/requests/{request_id}/start", data={}, follow_redirects=False)
    assert r.status_code == 403
    with runtime.tenant_context("acme") as ctx:
        assert rights.get_request(ctx, request_id).state == "verified"
    make_user(runtime, "acme", "viewer@acme.example", Role.VIEWER)
    viewer = TestClient(create_app(runtime), raise_server_exceptions=False)
    viewer.headers.update(HTML)
    login(viewer, "acme", "viewer@acme.example")
    for path in ("/requests", "/requests/sla", f"/requests/{request_id}"):
        assert viewer.get(path).status_code == 403, path
    anonymous = TestClient(create_app(runtime), raise_server_exceptions=False)
    r = anonymous.get("/requests", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


# ---------------------------------------------------------------------------------------------
# The console: one request and its actions


def test_the_request_page_shows_the_facts_and_audits_the_read(
    runtime: Runtime, person: str
) -> None:
    v = Visitor(runtime)
    reference = reference_in(v.ask("rectification", field=["first_name"], value=["Pauline"]).text)
    request_id, _ = the_request(runtime, "acme", reference)
    client, _csrf = staff_client(runtime)
    r = client.get(f"/requests/{request_id}")
    assert r.status_code == 200 and "no-store" in r.headers["cache-control"]
    text = r.text
    for fact in (
        reference,
        EMAIL,
        "Correction",
        "European Union",
        "privacy center",
        "Awaiting verification",
        "End of the first period",
        "Acknowledge by",
        "Days paused",
        "Pauline",
        "Verify with the code",
        "Refuse",
        "Mark as withdrawn",
        "Acknowledgement",
        "verification sent",
    ):
        assert fact in text, fact
    assert "Fulfil the request" not in text  # not verified yet
    assert "Extend by 2 months" in text
    with runtime.tenant_context("acme") as ctx:
        viewed = [
            e
            for e in audit.list_entries(ctx, limit=200)
            if e.event == AuditEvent.SUBJECT_VIEWED.value and e.details.get("part") == "requester"
        ]
    assert len(viewed) == 1 and viewed[0].details["request_id"] == request_id
    assert client.get(f"/requests/{uuid.uuid4()}").status_code == 404
    assert client.get("/requests/not-an-id").status_code == 404


def test_verify_start_extend_pause_resume_fulfil_from_the_page(
    runtime: Runtime, person: str
) -> None:
    with runtime.tenant_context("acme") as ctx:
        request = rights.submit(ctx, RequestInput("access", Requester(EMAIL), "EU", "staff"))
        challenge = verification.begin(ctx, request)
        assert challenge is not None
        request_id, code = str(request.id), challenge.code
    client, csrf = staff_client(runtime)

    def act(action: str, **form: str) -> Response:
        r = client.post(
            f"/requests/{request_id}/{action}",
            data={"csrf_token": csrf, **form},
            follow_redirects=False,
        )
        assert r.status_code == 303, (action, r.status_code, r.text)
        return client.get(r.headers["location"])

    wrong = "000000" if code != "000000" else "111111"
    page = act("verify", code=wrong, phone="07700900123")
    assert "did not match" in page.text and "Verify with the code" in page.text
    page = act("verify", code=code, phone="07700900123")
    assert "The request is verified." in page.text and 'role="status"' in page.text
    page = act("start")
    assert "In progress" in page.text and "Fulfil the request" in page.text
    page = act("extend", reason="the request covers ten years of support chats")
    assert "The deadline is extended" in page.text and "(extended)" in page.text
    assert "Extend by" not in page.text  # only once
    page = act("pause", code="clarification", reason="tell us which account you mean")
    assert "Paused" in page.text and "Resume work" in page.text
    page = act("resume")
    assert "In progress" in page.text
    page = act("fulfil")
    assert "The request is answered" in page.text and "Completed" in page.text
    texts = letters_to(runtime, "acme", EMAIL)
    assert any("We need more time" in t and "ten years of support chats" in t for t in texts)
    assert any("tell us which account you mean" in t for t in texts)
    assert any("Download your data" in t for t in texts)
    # The bundle: a file staff can download; a letter: a page staff can read.
    bundle = re.search(
        rf'href="(/requests/{request_id}/artifacts/[0-9a-f-]+)">your-data-', page.text
    )
    assert bundle
    r = client.get(bundle.group(1))
    assert (
        r.headers["content-type"] == "application/zip" and r.headers["cache-control"] == "no-store"
    )
    letter = re.search(
        rf'href="(/requests/{request_id}/artifacts/[0-9a-f-]+)">Completed<', page.text
    )
    assert letter
    r = client.get(letter.group(1))
    assert r.status_code == 200 and "We have completed your access" in r.text
    kinds = [
        "received",
        "verification_sent",
        "verified",
        "started",
        "extended",
        "paused",
        "resumed",
        "completed",
    ]
    with runtime.tenant_context("acme") as ctx:
        timeline = [e.kind for e in rights.timeline(ctx, rights.get_request(ctx, request_id))]
    assert timeline == kinds
    # Done: no more actions, and a repeated one is a clear conflict, not a 500.
    r = client.post(f"/requests/{request_id}/start", data={"csrf_token": csrf})
    assert r.status_code == 409 and "only a verified request can be started" in r.text


def test_fulfil_forms_per_type(runtime: Runtime, person: str) -> None:
    client, csrf = staff_client(runtime)

    def verified(rtype: str, **details: object) -> str:
        with runtime.tenant_context("acme") as ctx:
            request = rights.submit(
                ctx, RequestInput(rtype, Requester(EMAIL), "EU", details=dict(details))
            )
            challenge = verification.begin(ctx, request)
            if challenge is not None:
                assert verification.confirm(
                    ctx, request, code=challenge.code, data_points={"phone": "07700900123"}
                ).verified
            else:  # matched by the address given, as workflow.receive does
                request.subject_id = reading.find_subject_id(ctx, IdentityKind.EMAIL, EMAIL)
            return str(request.id)

    def post(request_id: str, action: str, **form: str) -> Response:
        return client.post(
            f"/requests/{request_id}/{action}",
            data={"csrf_token": csrf, **form},
            follow_redirects=False,
        )

    # Rectification: reject with a reason — a refusal letter.
    rid = verified("rectification", proposed={"first_name": "Pauline"})
    page = client.get(f"/requests/{rid}").text
    assert "Are the proposed values accurate?" in page
    r = post(rid, "fulfil", decision="reject", note="the document shows the name Paula")
    assert r.status_code == 303
    assert the_state(runtime, rid) == "denied"
    # Automated decision: the review's outcome is required.
    rid = verified("automated_decision")
    r = post(rid, "fulfil", note="")
    assert r.status_code == 422 and "human review" in r.text
    assert post(rid, "fulfil", note="we checked the score by hand; it stands").status_code == 303
    assert the_state(runtime, rid) == "completed"
    # Portability: a transfer only to https.
    rid = verified("portability")
    assert 'name="transfer_url"' in client.get(f"/requests/{rid}").text
    r = post(rid, "fulfil", transfer_url="ftp://elsewhere.example/in")
    assert r.status_code == 422 and "https" in r.text
    # Objection: grounds per legitimate-interest purpose (marketing cannot be kept).
    rid = verified("objection", purposes=["status-updates", "product-marketing"])
    page = client.get(f"/requests/{rid}").text
    assert "Grounds for Service status e-mails" in page
    assert "Grounds for Information on our products" not in page
    r = post(rid, "fulfil", **{"grounds:status-updates": "we must tell users of outages"})
    assert r.status_code == 303
    completed = letters_to(runtime, "acme", EMAIL)[-1]
    assert "We stopped: Information on our products and services" in completed
    assert "Service status e-mails: we must tell users of outages" in completed
    # Erasure: a hold with its reason (the last: it erases the person), on billing data she has.
    with runtime.tenant_context("acme") as ctx:
        sid = reading.find_subject_id(ctx, IdentityKind.EMAIL, EMAIL)
        assert sid is not None
        subjects.rectify_field(
            ctx, sid, FieldInput("invoice_ref", "INV-9", "user.financial", "direct", "billing")
        )
    rid = verified("erasure")
    page = client.get(f"/requests/{rid}").text
    assert "Why keep the billing data" in page
    r = post(rid, "fulfil", **{"hold:billing": "short"})
    assert r.status_code == 422 and "say why the billing data is kept" in r.text
    r = post(rid, "fulfil", **{"hold:billing": "an invoice is disputed in court"})
    assert r.status_code == 303
    assert "billing: an invoice is disputed in court" in letters_to(runtime, "acme", EMAIL)[-1]


def the_state(runtime: Runtime, request_id: str) -> str:
    with runtime.tenant_context("acme") as ctx:
        return rights.get_request(ctx, request_id).state


def test_deny_withdraw_appeal_and_decide_from_the_page(runtime: Runtime, person: str) -> None:
    client, csrf = staff_client(runtime)

    def post(request_id: str, action: str, **form: str) -> Response:
        return client.post(
            f"/requests/{request_id}/{action}",
            data={"csrf_token": csrf, **form},
            follow_redirects=False,
        )

    rid = _received(runtime, datetime.now(UTC), "access", "US-CO")
    r = post(rid, "deny", code="manifestly_unfounded", reason="too short")
    assert r.status_code == 422 and "explain the refusal" in r.text
    assert the_state(runtime, rid) == "received"
    assert (
        post(
            rid, "deny", code="manifestly_unfounded", reason="the same request, weekly"
        ).status_code
        == 303
    )
    page = client.get(f"/requests/{rid}").text
    assert "Record the appeal" in page
    assert post(rid, "appeal").status_code == 303
    page = client.get(f"/requests/{rid}").text
    assert "Decide the appeal" in page and "Appeal decided by" in page
    r = post(rid, "appeal-decision", decision="refuse", reason="")
    assert r.status_code == 422 and "reasons for refusing the appeal" in r.text
    r = post(rid, "appeal-decision", decision="maybe")
    assert r.status_code == 422
    assert (
        post(
            rid, "appeal-decision", decision="refuse", reason="it is still the same request"
        ).status_code
        == 303
    )
    assert the_state(runtime, rid) == "appeal_denied"
    assert "it is still the same request" in letters_to(runtime, "acme", EMAIL)[-1]

    rid = _received(runtime, datetime.now(UTC), "restriction", "EU")
    assert post(rid, "withdraw").status_code == 303
    assert the_state(runtime, rid) == "withdrawn"
    assert "Mark as withdrawn" not in client.get(f"/requests/{rid}").text
    r = post(rid, "extend", reason="a long and detailed reason")
    assert r.status_code == 409
    r = post(rid, "pause", reason="")
    assert r.status_code == 422


def test_an_artifact_of_another_request_is_not_found(runtime: Runtime, person: str) -> None:
    one = _received(runtime, datetime.now(UTC), "access", "EU")
    two = verified_access_request(runtime, "acme")
    with runtime.tenant_context("acme") as ctx:
        from pledge.rights import letters

        letters.send(ctx, rights.get_request(ctx, two), "extended", reason="a test letter here")
        artifact = ctx.session.scalars(
            select(RequestArtifact).where(RequestArtifact.request_id == uuid.UUID(two))
        ).first()
        assert artifact is not None
    client, _csrf = staff_client(runtime)
    assert client.get(f"/requests/{two}/artifacts/{artifact.id}").status_code == 200
    assert client.get(f"/requests/{one}/artifacts/{artifact.id}").status_code == 404


def test_the_sla_chart_and_its_table(runtime: Runtime, person: str) -> None:
    now = datetime.now(UTC)
    _received(runtime, now - timedelta(days=40), "access", "EU")  # overdue
    _received(runtime, now - timedelta(days=40), "access", "US-CA")  # due within the week
    with runtime.tenant_context("acme") as ctx:
        request = rights.submit(ctx, RequestInput("erasure", Requester(EMAIL), "EU"))
        verification.begin(ctx, request)
    client, _csrf = staff_client(runtime)
    r = client.get("/requests/sla")
    assert r.status_code == 200
    text = r.text
    assert re.search(r"<strong>3</strong> open", text)
    assert re.search(r"<strong>1</strong> due within 7 days", text)
    assert re.search(r"<strong>1</strong> overdue", text)
    assert '<span class="bar-label">Received</span>' in text
    assert 'class="bar bar-w-20"' in text and 'class="bar bar-w-10"' in text
    assert '<th scope="row">Awaiting verification</th><td>1</td>' in text
    assert 'style="' not in text  # the CSP forbids inline styles


def test_a_fee_is_offered_only_for_a_repetitive_request(runtime: Runtime, person: str) -> None:
    with runtime.tenant_context("acme") as ctx:
        made = [
            rights.submit(ctx, RequestInput("access", Requester(EMAIL), "US-CA")) for _ in range(3)
        ]
        second, third = str(made[1].id), str(made[2].id)
    client, csrf = staff_client(runtime)
    assert "Charge a fee" not in client.get(f"/requests/{second}").text
    page = client.get(f"/requests/{third}")
    assert "Charge a fee" in page.text and "decide whether to charge a fee" in page.text
    r = client.post(
        f"/requests/{third}/fee",
        data={"csrf_token": csrf, "amount": "15.00", "reason": "third access this year"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert "The fee is recorded." in page.text and "<dt>Fee</dt><dd>15.00</dd>" in page.text
    r = client.post(
        f"/requests/{second}/fee",
        data={"csrf_token": csrf, "amount": "15", "reason": "second access this year"},
    )
    assert r.status_code == 409 and "allows no fee" in r.text


def test_a_list_of_opt_outs_is_refused_whole_when_too_big_or_unreadable(
    runtime: Runtime, person: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pledge.rights import pages

    client, csrf = staff_client(runtime)
    form = {"csrf_token": csrf, "type": "opt_out_sale", "jurisdiction": "US-CA"}

    def post(content: bytes) -> Response:
        return client.post(
            "/requests/opt-outs", data=form, files={"file": ("l.csv", content, "text/csv")}
        )

    r = post(b"email\n\xff\xfe\n")
    assert r.status_code == 422 and "line 2: not UTF-8 text" in r.text
    monkeypatch.setattr(pages, "LIST_MAX_LINES", 2)
    r = post(b"email\na@example.com\nb@example.com\nnot-an-address\nd@example.com\n")
    assert r.status_code == 422 and "the list has more than 2 people here" in r.text
    assert "not valid" not in r.text  # refused for its length before its lines are checked
    r = client.post("/requests/opt-outs", data=form)  # no file chosen
    assert r.status_code == 422 and "choose the list&#39;s file" in r.text
    assert "<title>Error: Answer a list of opt-outs" in r.text
    r = client.post(
        "/requests/opt-outs",
        data={**form, "agent_name": "A", "agent_email": "agent@", "agent_permission": "P"},
        files={"file": ("l.csv", b"email\na@example.com\nb@example.com\n", "text/csv")},
    )
    assert r.text.count("the agent&#39;s e-mail address is not valid") == 1
    r = client.post(
        "/requests/opt-outs",
        data={**form, "agent_permission": "PS-1"},
        files={"file": ("l.csv", b"email\na@example.com\n", "text/csv")},
    )
    assert r.status_code == 422 and "name or e-mail with their signed permission" in r.text
    monkeypatch.setattr(pages, "LIST_MAX_BYTES", 10)
    r = post(b"email\na@example.com\n")
    assert r.status_code == 422 and "larger than" in r.text
    r = client.post("/requests/opt-outs", data={**form, "type": "erasure"}, files={
        "file": ("l.csv", b"email\na@example.com\n", "text/csv")})  # fmt: skip
    assert r.status_code == 422
    with runtime.tenant_context(person) as ctx:
        assert rights.queue(ctx, rights.QueueFilter(open_only=False)) == []
    # A viewer may read the queue but not answer a list.
    viewer = TestClient(create_app(runtime), raise_server_exceptions=False)
    viewer.headers.update(HTML)
    make_user(runtime, "acme", "viewer@acme.example", Role.VIEWER)
    login(viewer, "acme", "viewer@acme.example")
    assert viewer.get("/requests/opt-outs").status_code == 403
    assert "Answer a list of opt-outs" not in viewer.get("/requests").text


def test_an_answered_list_redirects_so_a_reload_does_not_send_it_again(
    runtime: Runtime, person: str
) -> None:
    client, csrf = staff_client(runtime)
    r = client.post(
        "/requests/opt-outs",
        data={"csrf_token": csrf, "type": "limit_sensitive", "jurisdiction": "US-CA"},
        files={"file": ("l.csv", f"email\n{EMAIL}\n".encode(), "text/csv")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(r.headers["location"])  # what the browser shows, and reloads
    shown = " ".join(page.text.split())
    assert "Answered 1 request</strong>: 1 applied to a subject on file" in shown
    assert "/requests?type=limit_sensitive&amp;state=completed" in page.text
    client.get(r.headers["location"])
    with runtime.tenant_context(person) as ctx:
        assert len(rights.queue(ctx, rights.QueueFilter(open_only=False))) == 1
