"""Rights requests end to end through the services: intake, verification, the clock,
fulfilment of each type, letters — on both databases."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from pledge.consent import intake, privacy_state
from pledge.core.clock import frozen, utcnow
from pledge.core.errors import Conflict, InvalidInput, NotFound, TooManyAttempts
from pledge.gate import audience as gate_audience
from pledge.gate import service as gate
from pledge.mail import reading as mail_reading
from pledge.presets import clik
from pledge.rights import downloads, fulfilment, letters, transitions, verification, workflow
from pledge.rights import service as rights
from pledge.rights.fulfilment import StaffInput
from pledge.rights.models import RequestState, VerificationChallenge
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.subjects import erasure, reading
from pledge.subjects import service as subjects
from pledge.subjects.identity import IdentityKind
from pledge.subjects.service import FieldInput

EMAIL = "rita.requester@example.com"
PHONE = {"phone": "+447700900555"}  # a data point on file, for the requests that need one


@pytest.fixture
def person(runtime: Runtime, tenant: str) -> str:
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
        collected = intake.collect(
            ctx,
            "purchase",
            [
                FieldInput("email", EMAIL),
                FieldInput("first_name", "Rita", "user.name.first"),
                FieldInput("phone", "+447700900555"),
                FieldInput("invoice_ref", "INV-77", "user.financial", "direct", "billing"),
            ],
        )
        intake.collect(
            ctx,
            "newsletter",
            [FieldInput("email", EMAIL)],
            [intake.ConsentChoice("newsletter", True)],
        )
        subjects.add_interaction(
            ctx,
            collected.subject_id,
            kind="chat",
            occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
            category="user.content.private",
            payload={"transcript": "hello there"},
        )
        subjects.add_interaction(
            ctx,
            collected.subject_id,
            kind="note",
            occurred_at=datetime(2026, 2, 1, tzinfo=UTC),
            category="user.content.private",
            payload={"note": "<b>markup</b> & co"},
        )
    return tenant


def _submit(
    runtime: Runtime, tenant: str, rtype: str, jurisdiction: str = "EU", **details: object
) -> str:
    with runtime.tenant_context(tenant) as ctx:
        request = rights.submit(
            ctx, RequestInput(rtype, Requester(EMAIL, "Rita"), jurisdiction, details=dict(details))
        )
        challenge = verification.begin(ctx, request)
        return f"{request.id}|{challenge.code if challenge else ''}"


def _verify(runtime: Runtime, tenant: str, handle: str, **data: object) -> None:
    request_id, code = handle.split("|")
    with runtime.tenant_context(tenant) as ctx:
        outcome = verification.confirm(ctx, rights.get_request(ctx, request_id), code=code, **data)  # type: ignore[arg-type]
        assert outcome.verified, outcome.reason


def letter_text(runtime: Runtime, tenant: str, request_id: str, name: str) -> str:
    """The text of the request's last letter `name`, as kept with the request (and sent)."""
    with runtime.tenant_context(tenant) as ctx:
        request = rights.get_request(ctx, request_id)
        found = [
            a
            for a in letters.list_artifacts(ctx, request, kinds=("letter",))
            if a.name == f"{name}.txt"
        ]
        assert found, name
        content = letters.open_artifact(ctx, request, found[-1])
    assert content is not None
    return content.decode()


def test_access_request_bundle_download_once(runtime: Runtime, person: str) -> None:
    handle = _submit(runtime, person, "access")
    request_id = handle.split("|")[0]
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        assert request.state == "awaiting_verification"
        # GDPR: one month from receipt.
        from pledge.rights.clock import add_months

        assert rights.deadlines(ctx, request).due == add_months(request.received_at.date(), 1)
        wrong = verification.confirm(
            ctx,
            request,
            code="000000" if not handle.endswith("000000") else "111111",
            data_points={"phone": "+447700900555"},
        )
        assert not wrong.verified
    _verify(runtime, person, handle, data_points={"phone": "07700 900555"})
    with runtime.tenant_context(person) as ctx:
        result = fulfilment.fulfil(ctx, rights.get_request(ctx, request_id))
        assert result.state == "completed" and result.download_url
        token = result.download_url.rsplit("/", 1)[1]
    with runtime.tenant_context(person) as ctx:
        download = downloads.redeem(ctx, token)
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        names = set(archive.namelist())
        doc = json.loads(archive.read("your-data.json"))
        page = archive.read("your-data.html").decode()
        table = archive.read("interactions.csv").decode()
        compression = {i.filename: i.compress_type for i in archive.infolist()}
    assert names == {"your-data.json", "fields.csv", "interactions.csv", "your-data.html"}
    assert set(compression.values()) == {zipfile.ZIP_DEFLATED}
    # Each payload in the page (escaped as text) and in the CSV, as compact JSON.
    assert '<td>{"transcript":"hello there"}</td>' in page
    assert "<b>" not in page and "&lt;b&gt;markup&lt;/b&gt; &amp; co" in page
    assert '""transcript"":""hello there""' in table
    values = {f["name"]: f["value"] for f in doc["data"]["fields"]}
    assert values["email"] == EMAIL and values["invoice_ref"] == "INV-77"
    assert doc["data"]["interactions"][0]["payload"] == {"transcript": "hello there"}
    about = doc["about_the_processing"]
    assert {
        "purposes",
        "categories",
        "sources",
        "recipients",
        "retention",
        "transfers",
        "consent_history",
    } <= about.keys()
    assert any(p["lawful_basis"] == "Contract" for p in about["purposes"])
    assert about["consent_history"][0]["wording"].startswith("Yes, send me the Clik newsletter")
    with pytest.raises(Exception, match="used already"), runtime.tenant_context(person) as ctx:
        downloads.redeem(ctx, token)


def test_gdpr_erasure_keeps_billing_records_and_says_why(runtime: Runtime, person: str) -> None:
    with runtime.tenant_context(person) as ctx:
        ctx.tenant.retention_classes = {
            "billing": {
                "description": "Billing records, 7 years",
                "exempt_on_erasure": "tax law requires us to keep billing records for 7 years",
            }
        }
    handle = _submit(runtime, person, "erasure")
    _verify(runtime, person, handle, data_points={"first_name": "rita"})
    request_id = handle.split("|")[0]
    with runtime.tenant_context(person) as ctx:
        result = fulfilment.fulfil(ctx, rights.get_request(ctx, request_id))
        assert result.state == "completed"
        assert result.kept == ["billing: tax law requires us to keep billing records for 7 years"]
        request = rights.get_request(ctx, request_id)
        view = reading.read_subject(ctx, request.subject_id, audited=False)  # type: ignore[arg-type]
        assert [f.name for f in view.fields] == ["invoice_ref"]
        assert view.status == "partially_erased"
        letter = [m for m in mail_reading.list_messages(ctx) if m.kind == "rights_letter"]
        assert letter  # acknowledgement, verification… and the completion letter
    # The letter says what is kept and why, and where to complain (GDPR Art. 12(4), 77).
    text = letter_text(runtime, person, request_id, "completed")
    assert "We erased your personal data except what the law requires us to keep" in text
    assert (
        "Some of your data is kept, and why:\n"
        "  - billing: tax law requires us to keep billing records for 7 years"
    ) in text
    assert "supervisory authority" in text


def test_opt_out_needs_no_verification_and_applies_at_once(runtime: Runtime, person: str) -> None:
    handle = _submit(runtime, person, "opt_out_sale", "US-CA")
    request_id, code = handle.split("|")
    assert code == ""
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        assert request.state == "verified" and request.verification_level == "none"
        # Matched by the address given, without verifying: CCPA 11 CCR 7026(c).
        request.subject_id = reading.find_subject_id(ctx, IdentityKind.EMAIL, EMAIL)
        fulfilment.fulfil(ctx, request)
        assert subjects.get_subject_row(ctx, request.subject_id).sale_opt_out_at is not None  # type: ignore[arg-type]


def test_clik_portability_refused_for_legitimate_interest_data(
    runtime: Runtime, tenant: str
) -> None:
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
        # Someone who only contacted Clik: held on legitimate interests (record keeping).
        intake.collect(
            ctx,
            "contact-email",
            [FieldInput("email", EMAIL), FieldInput("first_name", "Rita", "user.name.first")],
        )
    handle = _submit(runtime, tenant, "portability", "UK")
    _verify(runtime, tenant, handle, data_points={"first_name": "Rita"})
    with runtime.tenant_context(tenant) as ctx:
        result = fulfilment.fulfil(ctx, rights.get_request(ctx, handle.split("|")[0]))
    assert result.state == "denied"
    assert "legitimate interests" in result.outcome and "Art. 20(1)(a)" in result.outcome
    # The letter gives the reasons, the authority and the courts (UK GDPR Art. 12(4)).
    text = letter_text(runtime, tenant, handle.split("|")[0], "denied")
    assert "because: the data we hold about you is held on our legitimate interests" in text
    assert "Art. 20(1)(a)" in text and "access request" in text
    assert "the Information Commissioner's Office (ico.org.uk)" in text
    assert "judicial remedy" in text
    assert "You may appeal" not in text  # the UK grants no appeal to the controller


def test_restriction_during_a_disputed_rectification_then_lifted(
    runtime: Runtime, person: str
) -> None:
    handle = _submit(runtime, person, "rectification", proposed={"first_name": "Margarita"})
    _verify(runtime, person, handle, data_points={"phone": "+447700900555"})
    request_id = handle.split("|")[0]
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        fulfilment.start(ctx, request)
        decision = gate.may(ctx, request.subject_id, "newsletter", "email")  # type: ignore[arg-type]
        assert "restricted" in [r.value for r in decision.reasons]
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        result = fulfilment.fulfil(ctx, request, StaffInput(approve=True))
        assert result.state == "completed"
        assert request.subject_id is not None
        assert (
            reading.read_subject(ctx, request.subject_id, audited=False).value("first_name")
            == "Margarita"
        )
        assert gate.may(ctx, request.subject_id, "newsletter", "email").allowed
    # GDPR Art. 18(3): the person is told the restriction is lifted, with the answer.
    text = letter_text(runtime, person, request_id, "completed")
    assert "We corrected: first_name." in text
    assert LIFTED in text


LIFTED = "The restriction of your data while we checked it is lifted."


def test_a_direct_marketing_objection_stops_the_next_audience(
    runtime: Runtime, person: str
) -> None:
    with runtime.tenant_context(person) as ctx:
        subject_id = reading.find_subject_id(ctx, IdentityKind.EMAIL, EMAIL)
        intake.collect(ctx, "product-interest", [FieldInput("email", EMAIL)])
        assert subject_id in gate_audience.audience(ctx, "product-marketing", "email").allowed
        # Seed 004, GDPR Art. 21(3): direct marketing stops, no questions — no verification,
        # matched by the address given, answered on receipt (nothing for staff to weigh).
        request = workflow.receive(
            ctx,
            RequestInput(
                "objection",
                Requester(EMAIL, "Rita"),
                "EU",
                details={"purposes": ["product-marketing"]},
            ),
        ).request
        assert request.subject_id == subject_id
        assert request.state == "completed"
        request_id = str(request.id)
    with runtime.tenant_context(person) as ctx:  # the next run, in a later transaction
        audience = gate_audience.audience(ctx, "product-marketing", "email")
        assert subject_id not in audience.allowed
        assert subject_id in gate_audience.audience(ctx, "newsletter", "email").allowed  # only that
    text = letter_text(runtime, person, request_id, "completed")
    assert "We stopped: Information on our products and services" in text
    assert "compelling" not in text


def test_colorado_access_answered_in_45_days_extended_once_appealed(
    runtime: Runtime, person: str
) -> None:
    received = datetime(2026, 1, 5, 9, tzinfo=UTC)
    with frozen(received):
        handle = _submit(runtime, person, "access", "US-CO")
    request_id = handle.split("|")[0]
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        assert request.due_on is not None and request.due_on.isoformat() == "2026-02-19"  # 45 days
    with frozen(received + timedelta(hours=2)):
        _verify(runtime, person, handle, data_points={"phone": "+447700900555"})
    with frozen(received + timedelta(days=40)), runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        workflow.extend(ctx, request, "the request covers many years of support chats")
        assert request.due_on is not None and request.due_on.isoformat() == "2026-04-05"  # 90 days
        with pytest.raises(Conflict, match="already extended"):
            workflow.extend(ctx, request, "again, because we can")
    # C.R.S. 6-1-1306(2): the requester is told of the extension, and why, in the 45 days.
    text = letter_text(runtime, person, request_id, "extended")
    assert "because: the request covers many years of support chats" in text
    assert "extend by 45 days" in text and "answer by 05 April 2026 at the latest" in text
    with frozen(received + timedelta(days=60)), runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        fulfilment.deny(
            ctx,
            request,
            "identity_doubt",
            "we could not match the account to the data points given",
        )
    # The refusal gives its reasons and how to appeal (C.R.S. 6-1-1306(3)).
    text = letter_text(runtime, person, request_id, "denied")
    assert "because: we could not match the account to the data points given" in text
    assert "You may appeal this decision" in text and "within 45 days" in text
    assert "the Colorado Attorney General" in text
    with frozen(received + timedelta(days=70)), runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        transitions.appeal(ctx, request)
        assert request.state == "appealed" and request.due_on is not None
        assert request.due_on.isoformat() == "2026-04-30"  # appeal: 45 days
    with frozen(received + timedelta(days=100)), runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        workflow.decide_appeal(
            ctx, request, grant=False, reason="the data points still do not match the account"
        )
        kinds = [e.kind for e in rights.timeline(ctx, request)]
    assert kinds == [
        "received",
        "verification_sent",
        "verified",
        "extended",
        "denied",
        "appealed",
        "appeal_denied",
    ]
    text = letter_text(runtime, person, request_id, "appeal_decision")
    assert "Our decision stands, because: the data points still do not match" in text
    assert "you may contact the Colorado Attorney General" in text


def test_transitions_outside_the_state_machine_are_refused(runtime: Runtime, person: str) -> None:
    handle = _submit(runtime, person, "access")
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, handle.split("|")[0])
        with pytest.raises(Conflict):
            transitions.transition(ctx, request, RequestState.COMPLETED, "completed")
        with pytest.raises(InvalidInput, match="grants no appeal"):
            transitions.appeal(ctx, request)


def test_unverified_requests_close_themselves(runtime: Runtime, person: str) -> None:
    handle = _submit(runtime, person, "erasure")
    with frozen(utcnow() + timedelta(days=31)), runtime.tenant_context(person) as ctx:
        closed = verification.close_unverified(ctx)
        assert [r.id.hex for r in closed] == [handle.split("|")[0].replace("-", "")]
        assert closed[0].state == "closed_unverified"


def test_wrong_codes_lock_the_code_and_a_new_one_works(runtime: Runtime, person: str) -> None:
    handle = _submit(runtime, person, "access")
    request_id, code = handle.split("|")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(verification.MAX_ATTEMPTS):
        with runtime.tenant_context(person) as ctx:
            request = rights.get_request(ctx, request_id)
            assert (
                verification.confirm(ctx, request, code=wrong, data_points=PHONE).reason
                == "wrong_code"
            )
    with pytest.raises(TooManyAttempts), runtime.tenant_context(person) as ctx:
        verification.confirm(ctx, rights.get_request(ctx, request_id), code=code, data_points=PHONE)
    with runtime.tenant_context(person) as ctx:
        challenge = verification.begin(ctx, rights.get_request(ctx, request_id))
        assert challenge is not None
    _verify(runtime, person, f"{request_id}|{challenge.code}", data_points=PHONE)
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        assert request.state == "verified"
        # Nothing of the verification is kept once it is done.
        left = ctx.session.scalar(
            select(func.count())
            .select_from(VerificationChallenge)
            .where(VerificationChallenge.request_id == request.id)
        )
        assert left == 0


def test_a_code_confirmed_twice_at_once_verifies_once(runtime: Runtime, person: str) -> None:
    # The second confirmation starts while the first is still open, and must not verify the
    # request a second time.
    handle = _submit(runtime, person, "access")
    request_id, code = handle.split("|")
    second: list[BaseException | bool] = []

    def confirm_again() -> None:
        try:
            with runtime.tenant_context(person) as ctx:
                request = rights.get_request(ctx, request_id)
                second.append(
                    verification.confirm(ctx, request, code=code, data_points=PHONE).verified
                )
        except (Conflict, InvalidInput) as exc:
            second.append(exc)

    with runtime.tenant_context(person) as ctx:
        first = verification.confirm(
            ctx, rights.get_request(ctx, request_id), code=code, data_points=PHONE
        )
        assert first.verified
        other = threading.Thread(target=confirm_again)
        other.start()
        other.join(timeout=0.5)  # it is waiting on this transaction's locks
        assert other.is_alive()
    other.join()
    # SQLite: it waited for the write lock and found the request verified; PostgreSQL: it
    # read the request still waiting, then waited for the code and found it gone.
    (outcome,) = second
    assert isinstance(outcome, Conflict | InvalidInput) or outcome is False, second
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        kinds = [e.kind for e in rights.timeline(ctx, request)]
    assert kinds.count("verified") == 1, kinds


def test_a_download_clicked_twice_at_once_is_given_once(runtime: Runtime, person: str) -> None:
    handle = _submit(runtime, person, "access")
    _verify(runtime, person, handle, data_points=PHONE)
    with runtime.tenant_context(person) as ctx:
        result = fulfilment.fulfil(ctx, rights.get_request(ctx, handle.split("|")[0]))
        assert result.download_url
        token = result.download_url.rsplit("/", 1)[1]
    second: list[BaseException | str] = []

    def click_again() -> None:
        try:
            with runtime.tenant_context(person) as ctx:
                second.append(downloads.redeem(ctx, token).name)
        except NotFound as exc:
            second.append(exc)

    with runtime.tenant_context(person) as ctx:
        assert downloads.redeem(ctx, token).name.endswith(".zip")
        other = threading.Thread(target=click_again)
        other.start()
        other.join(timeout=0.5)  # it is waiting on this transaction's locks
        assert other.is_alive()
    other.join()
    assert len(second) == 1 and isinstance(second[0], NotFound), second


def test_wrong_codes_sent_at_once_each_count(runtime: Runtime, person: str) -> None:
    # On PostgreSQL, tries in parallel read the same attempts count; each must still count,
    # or a guesser sending many at once would never reach the limit.
    handle = _submit(runtime, person, "access")
    request_id, code = handle.split("|")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    tries = 4
    start = threading.Barrier(tries)
    outcomes: list[str | None] = []

    def guess() -> None:
        start.wait()
        with runtime.tenant_context(person) as ctx:
            request = rights.get_request(ctx, request_id)
            outcomes.append(
                verification.confirm(ctx, request, code=wrong, data_points=PHONE).reason
            )

    threads = [threading.Thread(target=guess) for _ in range(tries)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == ["wrong_code"] * tries
    with runtime.tenant_context(person) as ctx:
        (challenge,) = ctx.session.scalars(select(VerificationChallenge)).all()
        assert challenge.attempts == tries


def test_a_wrong_code_after_the_right_one_finds_the_request_verified(
    runtime: Runtime, person: str
) -> None:
    handle = _submit(runtime, person, "access")
    request_id, code = handle.split("|")
    later: list[BaseException | str | None] = []

    def guess() -> None:
        try:
            with runtime.tenant_context(person) as ctx:
                request = rights.get_request(ctx, request_id)
                later.append(
                    verification.confirm(ctx, request, code="000000", data_points=PHONE).reason
                )
        except (InvalidInput, Conflict) as exc:
            later.append(exc)

    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, request_id)
        assert verification.confirm(ctx, request, code=code, data_points=PHONE).verified
        other = threading.Thread(target=guess)
        other.start()
        other.join(timeout=0.5)
        assert other.is_alive()
    other.join()
    # SQLite: it waited for the lock and found the request verified; PostgreSQL: it read the
    # request still waiting, then found its code gone. Either way no error page, no count.
    (outcome,) = later
    assert isinstance(outcome, InvalidInput) or outcome == "expired", outcome
    with runtime.tenant_context(person) as ctx:
        assert rights.get_request(ctx, request_id).state == "verified"


def _restricted(runtime: Runtime, tenant: str) -> bool:
    with runtime.tenant_context(tenant) as ctx:
        sid = reading.find_subject_id(ctx, IdentityKind.EMAIL, EMAIL)
        assert sid is not None
        return subjects.get_subject_row(ctx, sid).restricted_at is not None


def _fulfil(runtime: Runtime, tenant: str, handle: str, staff: StaffInput | None = None) -> None:
    with runtime.tenant_context(tenant) as ctx:
        fulfilment.fulfil(ctx, rights.get_request(ctx, handle.split("|")[0]), staff)


def test_a_correction_leaves_alone_a_restriction_the_person_asked_for(
    runtime: Runtime, person: str
) -> None:
    asked = _submit(runtime, person, "restriction")
    _verify(runtime, person, asked, data_points=PHONE)
    _fulfil(runtime, person, asked)
    assert _restricted(runtime, person)
    correction = _submit(runtime, person, "rectification", proposed={"first_name": "Margarita"})
    _verify(runtime, person, correction, data_points=PHONE)
    _fulfil(runtime, person, correction, StaffInput(approve=True))
    assert _restricted(runtime, person)  # the restriction they asked for still holds
    # Lifting it: while another correction is being checked the data stays restricted; the
    # person is told before it is lifted.
    second = _submit(runtime, person, "rectification", proposed={"first_name": "Rita"})
    _verify(runtime, person, second, data_points=PHONE)
    with runtime.tenant_context(person) as ctx:
        fulfilment.start(ctx, rights.get_request(ctx, second.split("|")[0]))
        request = rights.get_request(ctx, asked.split("|")[0])
        with pytest.raises(InvalidInput, match="say why"):
            fulfilment.lift_restriction(ctx, request, "")
        fulfilment.lift_restriction(ctx, request, "our records are correct now")
        assert "restriction_lifted" in [e.kind for e in rights.timeline(ctx, request)]
        sent = [a.name for a in letters.list_artifacts(ctx, request, kinds=("letter",))]
        assert sent[-1] == "restriction_lifting.txt"
    assert _restricted(runtime, person)
    _fulfil(runtime, person, second, StaffInput(approve=False, note="the proof shows otherwise"))
    assert not _restricted(runtime, person)
    denied = letter_text(runtime, person, second.split("|")[0], "denied")
    assert "because: the proof shows otherwise" in denied and LIFTED in denied
    assert LIFTED not in letter_text(runtime, person, correction.split("|")[0], "completed")
    with runtime.tenant_context(person) as ctx, pytest.raises(Conflict):
        fulfilment.lift_restriction(
            ctx, rights.get_request(ctx, asked.split("|")[0]), "lifted a second time"
        )


def test_a_withdrawn_correction_no_longer_restricts(runtime: Runtime, person: str) -> None:
    handle = _submit(runtime, person, "rectification", proposed={"first_name": "Margarita"})
    _verify(runtime, person, handle, data_points=PHONE)
    with runtime.tenant_context(person) as ctx:
        fulfilment.start(ctx, rights.get_request(ctx, handle.split("|")[0]))
    assert _restricted(runtime, person)
    with runtime.tenant_context(person) as ctx:
        fulfilment.withdraw(ctx, rights.get_request(ctx, handle.split("|")[0]))
    assert not _restricted(runtime, person)


def test_an_appeal_reopens_the_request_once(runtime: Runtime, person: str) -> None:
    received = datetime(2026, 1, 5, 9, tzinfo=UTC)
    with frozen(received):
        handle = _submit(runtime, person, "access", "US-VA")
    rid = handle.split("|")[0]
    with frozen(received + timedelta(hours=1)):
        _verify(runtime, person, handle, data_points=PHONE)
    with frozen(received + timedelta(days=10)), runtime.tenant_context(person) as ctx:
        fulfilment.deny(ctx, rights.get_request(ctx, rid), "refused", "we could not find it")
    with frozen(received + timedelta(days=20)), runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, rid)
        transitions.appeal(ctx, request)
        # Open again: not closed, and not purged 24 months after the first answer.
        assert request.closed_at is None and request.purge_after is None
    with frozen(received + timedelta(days=741)), runtime.tenant_context(person) as ctx:
        assert workflow.purge_expired(ctx) == 0
        request = rights.get_request(ctx, rid)
        workflow.decide_appeal(ctx, request, grant=True, reason="")
        fulfilment.fulfil(ctx, request)
        assert request.state == "completed" and request.closed_at is not None
        with pytest.raises(Conflict, match="appealed already"):
            transitions.appeal(ctx, request)


def test_a_restriction_in_force_outlives_the_purge_until_it_is_lifted(
    runtime: Runtime, person: str
) -> None:
    asked = _submit(runtime, person, "restriction")
    _verify(runtime, person, asked, data_points=PHONE)
    _fulfil(runtime, person, asked)
    rid = asked.split("|")[0]
    with frozen(utcnow() + timedelta(days=741)), runtime.tenant_context(person) as ctx:
        assert workflow.purge_expired(ctx) == 0  # it is what holds the data restricted
        fulfilment.lift_restriction(ctx, rights.get_request(ctx, rid), "the dispute is settled")
    assert not _restricted(runtime, person)
    with frozen(utcnow() + timedelta(days=742)), runtime.tenant_context(person) as ctx:
        assert workflow.purge_expired(ctx) == 1


def test_a_correction_is_checked_under_restriction_again_when_its_appeal_is_granted(
    runtime: Runtime, person: str
) -> None:
    handle = _submit(runtime, person, "rectification", "US-VA", proposed={"first_name": "Mar"})
    _verify(runtime, person, handle, data_points=PHONE)
    rid = handle.split("|")[0]
    with runtime.tenant_context(person) as ctx:
        fulfilment.start(ctx, rights.get_request(ctx, rid))
    assert _restricted(runtime, person)
    with runtime.tenant_context(person) as ctx:
        fulfilment.deny(ctx, rights.get_request(ctx, rid), "refused", "the proof is not enough")
    assert not _restricted(runtime, person)
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, rid)
        transitions.appeal(ctx, request)
        workflow.decide_appeal(ctx, request, grant=True, reason="")
    assert _restricted(runtime, person)


def test_a_correction_can_be_withdrawn_after_the_person_was_erased(
    runtime: Runtime, person: str
) -> None:
    handle = _submit(runtime, person, "rectification", proposed={"first_name": "Margarita"})
    _verify(runtime, person, handle, data_points=PHONE)
    rid = handle.split("|")[0]
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, rid)
        fulfilment.start(ctx, request)
        assert request.subject_id is not None
        erasure.erase_subject(ctx, request.subject_id)
    with runtime.tenant_context(person) as ctx:
        request = fulfilment.withdraw(ctx, rights.get_request(ctx, rid))
        assert request.state == "withdrawn"


def test_a_correction_leaves_alone_a_restriction_set_through_the_privacy_state(
    runtime: Runtime, person: str
) -> None:
    """A restriction staff or a connected system set on the person (the privacy-state API:
    e.g. a legal claim being established, GDPR Art. 18(1)(c)) is not the correction's to
    lift; the API that set it still lifts it."""
    with runtime.tenant_context(person) as ctx:
        sid = reading.find_subject_id(ctx, IdentityKind.EMAIL, EMAIL)
        assert sid is not None
        privacy_state.update_privacy_state(ctx, sid, restricted=True)
    correction = _submit(runtime, person, "rectification", proposed={"first_name": "Margarita"})
    _verify(runtime, person, correction, data_points=PHONE)
    _fulfil(runtime, person, correction, StaffInput(approve=True))
    assert _restricted(runtime, person)
    assert LIFTED not in letter_text(runtime, person, correction.split("|")[0], "completed")
    refused = _submit(runtime, person, "rectification", proposed={"first_name": "Rita"})
    _verify(runtime, person, refused, data_points=PHONE)
    _fulfil(runtime, person, refused, StaffInput(approve=False, note="the proof says otherwise"))
    assert _restricted(runtime, person)
    assert LIFTED not in letter_text(runtime, person, refused.split("|")[0], "denied")
    withdrawn = _submit(runtime, person, "rectification", proposed={"first_name": "Rita"})
    _verify(runtime, person, withdrawn, data_points=PHONE)
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, withdrawn.split("|")[0])
        fulfilment.start(ctx, request)
        fulfilment.withdraw(ctx, request)
        assert gate.may(ctx, sid, "newsletter", "email").reasons[0].value == "restricted"
        privacy_state.update_privacy_state(ctx, sid, restricted=False)
    assert not _restricted(runtime, person)
    # Lifted, a correction restricts again while it is checked, and lifts what it set.
    again = _submit(runtime, person, "rectification", proposed={"first_name": "Rita"})
    _verify(runtime, person, again, data_points=PHONE)
    with runtime.tenant_context(person) as ctx:
        fulfilment.start(ctx, rights.get_request(ctx, again.split("|")[0]))
    assert _restricted(runtime, person)
    _fulfil(runtime, person, again, StaffInput(approve=True))
    assert not _restricted(runtime, person)
    assert LIFTED in letter_text(runtime, person, again.split("|")[0], "completed")


def test_lifting_a_restriction_the_person_asked_for_leaves_one_set_through_the_api(
    runtime: Runtime, person: str
) -> None:
    with runtime.tenant_context(person) as ctx:
        sid = reading.find_subject_id(ctx, IdentityKind.EMAIL, EMAIL)
        assert sid is not None
        privacy_state.update_privacy_state(ctx, sid, restricted=True)
    asked = _submit(runtime, person, "restriction")
    _verify(runtime, person, asked, data_points=PHONE)
    _fulfil(runtime, person, asked)
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, asked.split("|")[0])
        fulfilment.lift_restriction(ctx, request, "the accuracy is no longer disputed")
    assert _restricted(runtime, person)
