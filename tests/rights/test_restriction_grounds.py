"""A person's restriction of processing (GDPR Art. 18) holds on grounds kept with the person:
the restriction they asked for, a correction being checked, one set through the privacy-state
API. Ending one ground never lifts, absorbs or hides another; the gate's flag stays set while
any holds."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select

from pledge.consent import intake, privacy_state
from pledge.core.clock import frozen, utcnow
from pledge.core.db import make_engine
from pledge.gate import service as gate
from pledge.migrations import upgrade
from pledge.presets import clik
from pledge.rights import fulfilment, letters, transitions, verification, workflow
from pledge.rights import service as rights
from pledge.rights.fulfilment import StaffInput
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.subjects import erasure, reading
from pledge.subjects.identity import IdentityKind
from pledge.subjects.models import Subject
from pledge.subjects.service import FieldInput
from tests.conftest import (
    Backend,
    _create_pg_database,
    _pg_admin_url,
    _pg_name,
    until_done_or_blocked,
)
from tests.rights.test_pages import staff_client
from tests.rights.test_requests import letter_text
from tests.test_schema import insert_old_tenant

EMAIL = "rosa.restricted@example.com"
PHONE = "+447700900666"
LIFTED = fulfilment.ACCURACY_RESTRICTION_LIFTED


@pytest.fixture
def person(runtime: Runtime, tenant: str) -> str:
    """The subject's id; the tenant is configured like Clik Limited (seed 004)."""
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
        collected = intake.collect(
            ctx,
            "newsletter",
            [
                FieldInput("email", EMAIL),
                FieldInput("first_name", "Rosa", "user.name.first"),
                FieldInput("phone", PHONE),
            ],
            [intake.ConsentChoice("newsletter", True)],
        )
        return str(collected.subject_id)


def _verified(
    runtime: Runtime, tenant: str, rtype: str, jurisdiction: str = "EU", **details: Any
) -> str:
    """A request of `rtype` by the person, verified; its id."""
    with runtime.tenant_context(tenant) as ctx:
        request = rights.submit(
            ctx, RequestInput(rtype, Requester(EMAIL, "Rosa"), jurisdiction, details=details)
        )
        challenge = verification.begin(ctx, request)
        assert challenge is not None
        outcome = verification.confirm(
            ctx, request, code=challenge.code, data_points={"phone": PHONE}
        )
        assert outcome.verified, outcome.reason
        return str(request.id)


def _restricted(runtime: Runtime, tenant: str) -> bool:
    """What the gate answers for the person's newsletter: denied as restricted."""
    with runtime.tenant_context(tenant) as ctx:
        sid = reading.find_subject_id(ctx, IdentityKind.EMAIL, EMAIL)
        assert sid is not None
        reasons = [r.value for r in gate.may(ctx, sid, "newsletter", "email").reasons]
        return "restricted" in reasons


def _letter_names(runtime: Runtime, tenant: str, request_id: str) -> list[str]:
    with runtime.tenant_context(tenant) as ctx:
        request = rights.get_request(ctx, request_id)
        return [a.name for a in letters.list_artifacts(ctx, request, kinds=("letter",))]


def _put_restricted(client: TestClient, sid: str, restricted: bool) -> dict[str, Any]:
    response = client.put(f"/api/v1/subjects/{sid}/privacy-state", json={"restricted": restricted})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_an_api_restriction_made_while_a_correction_is_checked_outlives_the_correction(
    runtime: Runtime, tenant: str, person: str, client: TestClient
) -> None:
    correction = _verified(runtime, tenant, "rectification", proposed={"first_name": "Rosalind"})
    with runtime.tenant_context(tenant) as ctx:
        fulfilment.start(ctx, rights.get_request(ctx, correction))
    # A connected system restricts the person on a ground of its own (e.g. a legal claim).
    answer = _put_restricted(client, person, True)
    assert answer["restricted"] is True
    with runtime.tenant_context(tenant) as ctx:
        fulfilment.fulfil(ctx, rights.get_request(ctx, correction), StaffInput(approve=True))
    assert _restricted(runtime, tenant)  # the API's restriction was not the correction's
    assert LIFTED not in letter_text(runtime, tenant, correction, "completed")
    assert answer["restriction_grounds"] == [
        {"ground": "accuracy", "request_id": correction},
        {"ground": "api", "request_id": None},
    ]
    answer = _put_restricted(client, person, False)
    assert answer["restricted"] is False and answer["restriction_grounds"] == []
    assert not _restricted(runtime, tenant)


def test_the_api_lifts_only_its_own_ground_never_the_persons_restriction(
    runtime: Runtime, tenant: str, person: str, client: TestClient
) -> None:
    asked = _verified(runtime, tenant, "restriction")
    with runtime.tenant_context(tenant) as ctx:
        fulfilment.fulfil(ctx, rights.get_request(ctx, asked))
    assert _restricted(runtime, tenant)
    # Lifting it needs the Art. 18(3) letter first: the API cannot, and its answer says why.
    response = client.put(f"/api/v1/subjects/{person}/privacy-state", json={"restricted": False})
    assert response.status_code == 200, response.text
    assert _restricted(runtime, tenant)
    answer = response.json()
    assert answer["restricted"] is True
    assert answer["restriction_grounds"] == [{"ground": "request", "request_id": asked}]
    assert EMAIL not in response.text and "Rosa" not in response.text and PHONE not in response.text
    assert "restriction_lifting.txt" not in _letter_names(runtime, tenant, asked)
    # Nor a correction's: a correction being checked holds until it is decided.
    correction = _verified(runtime, tenant, "rectification", proposed={"first_name": "Rosalind"})
    with runtime.tenant_context(tenant) as ctx:
        fulfilment.start(ctx, rights.get_request(ctx, correction))
        fulfilment.lift_restriction(ctx, rights.get_request(ctx, asked), "the dispute is settled")
    answer = _put_restricted(client, person, False)
    assert answer["restricted"] is True
    assert answer["restriction_grounds"] == [{"ground": "accuracy", "request_id": correction}]
    with runtime.tenant_context(tenant) as ctx:
        fulfilment.withdraw(ctx, rights.get_request(ctx, correction))
    assert not _restricted(runtime, tenant)
    assert _put_restricted(client, person, False)["restriction_grounds"] == []


def test_lifting_the_persons_restriction_leaves_one_the_api_set_after_it(
    runtime: Runtime, tenant: str, person: str, client: TestClient
) -> None:
    asked = _verified(runtime, tenant, "restriction")
    with runtime.tenant_context(tenant) as ctx:
        fulfilment.fulfil(ctx, rights.get_request(ctx, asked))
    # Set after the person's (already restricted): recorded all the same.
    answer = _put_restricted(client, person, True)
    with runtime.tenant_context(tenant) as ctx:
        fulfilment.lift_restriction(ctx, rights.get_request(ctx, asked), "our records are right")
    assert _restricted(runtime, tenant)
    assert [g["ground"] for g in answer["restriction_grounds"]] == ["request", "api"]
    # The person is told, as when no other ground holds (Art. 18(3)).
    assert _letter_names(runtime, tenant, asked)[-1] == "restriction_lifting.txt"
    assert "our records are right" in letter_text(runtime, tenant, asked, "restriction_lifting")
    answer = _put_restricted(client, person, False)
    assert answer["restricted"] is False
    assert not _restricted(runtime, tenant)


def test_a_restriction_upheld_on_appeal_is_kept_by_the_purge_until_lifted(
    runtime: Runtime, tenant: str, person: str
) -> None:
    """The purge keeps a request its person is restricted on, whatever its outcome since (here
    an appeal refused): the ground would otherwise name a request nobody can lift it from."""
    asked = _verified(runtime, tenant, "restriction", "US-VA")
    with runtime.tenant_context(tenant) as ctx:
        request = rights.get_request(ctx, asked)
        fulfilment.fulfil(ctx, request)
        transitions.appeal(ctx, request)
        workflow.decide_appeal(ctx, request, grant=False, reason="the restriction stands as is")
        assert request.outcome_code == "appeal_denied"
    assert _restricted(runtime, tenant)
    with frozen(utcnow() + timedelta(days=741)), runtime.tenant_context(tenant) as ctx:
        assert workflow.purge_expired(ctx) == 0
        fulfilment.lift_restriction(ctx, rights.get_request(ctx, asked), "the dispute is settled")
    assert not _restricted(runtime, tenant)
    with frozen(utcnow() + timedelta(days=742)), runtime.tenant_context(tenant) as ctx:
        assert workflow.purge_expired(ctx) == 1


def test_a_correction_answered_after_an_erasure_leaves_no_ground_behind(
    runtime: Runtime, tenant: str, person: str, client: TestClient
) -> None:
    correction = _verified(runtime, tenant, "rectification", proposed={"first_name": "Rosalind"})
    with runtime.tenant_context(tenant) as ctx:
        request = rights.get_request(ctx, correction)
        fulfilment.start(ctx, request)
        erasure.erase_subject(ctx, uuid.UUID(person))
    with runtime.tenant_context(tenant) as ctx:
        result = fulfilment.fulfil(ctx, rights.get_request(ctx, correction))
        assert result.state == "completed"
    answer = client.get(f"/api/v1/subjects/{person}/privacy-state").json()
    assert answer["restricted"] is False and answer["restriction_grounds"] == []
    with frozen(utcnow() + timedelta(days=741)), runtime.tenant_context(tenant) as ctx:
        assert workflow.purge_expired(ctx) == 1


def test_a_ground_added_while_another_transaction_adds_one_keeps_both(
    runtime: Runtime, tenant: str, person: str, client: TestClient
) -> None:
    """PostgreSQL: the API restricts while a correction's start is not yet committed; each
    ground is added to what the other left, so the API lifting its own leaves the check's."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: a second writer waits for the first's transaction (BEGIN IMMEDIATE)")
    correction = _verified(runtime, tenant, "rectification", proposed={"first_name": "Rosalind"})
    failures: list[BaseException] = []

    def restrict_through_the_api() -> None:
        try:
            with runtime.tenant_context(tenant) as ctx:
                privacy_state.update_privacy_state(ctx, uuid.UUID(person), restricted=True)
        except BaseException as exc:  # re-raised in the test's thread
            failures.append(exc)

    with runtime.tenant_context(tenant) as ctx:
        fulfilment.start(ctx, rights.get_request(ctx, correction))
        other = threading.Thread(target=restrict_through_the_api)
        other.start()
        until_done_or_blocked(runtime, other, "the API's change")
    other.join()
    assert not failures, failures
    answer = _put_restricted(client, person, False)
    assert answer["restricted"] is True
    assert answer["restriction_grounds"] == [{"ground": "accuracy", "request_id": correction}]
    assert _restricted(runtime, tenant)


# ---------------------------------------------------------------------------------------------
# Migration 0010: the grounds of the people restricted before it


def test_the_migration_gives_each_restricted_person_the_grounds_found_today(
    backend: Backend, tmp_path: Path
) -> None:
    if backend.kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = _create_pg_database(_pg_admin_url() or "", _pg_name("pledge_grounds_test"))
    engine = make_engine(url)
    try:
        upgrade("datastore", engine, "0009_artifacts_by_request")
        old = MetaData()
        old.reflect(engine)
        now = datetime.now(UTC)
        tenant_id = uuid.uuid4()

        def to_db(value: uuid.UUID) -> object:
            return value.bytes if backend.kind == "sqlite" else value

        people = {
            name: uuid.uuid4()
            for name in ("asked", "checked", "api", "both", "free", "old", "erased")
        }
        requests: dict[str, uuid.UUID] = {}
        seq = 0

        def request(
            conn: Any, name: str, who: str, rtype: str, state: str, outcome: str | None
        ) -> None:
            requests[name] = uuid.uuid4()
            conn.execute(
                old.tables["rights_requests"]
                .insert()
                .values(
                    tenant_id=to_db(tenant_id),
                    id=to_db(requests[name]),
                    reference=name[:16],
                    type=rtype,
                    jurisdiction="EU",
                    channel="privacy_center",
                    requester_kind="subject",
                    state=state,
                    subject_id=to_db(people[who]),
                    contact_index=b"\0" * 32,
                    sealed=b"\0",
                    verification_level="email",
                    verification_requested=True,
                    received_at=now,
                    outcome_code=outcome,
                    appeal_extended=False,
                    repetitive=False,
                )
            )

        def change(conn: Any, who: str, what: str, source: str) -> None:
            nonlocal seq
            seq += 1
            conn.execute(
                old.tables["audit_entries"]
                .insert()
                .values(
                    tenant_id=to_db(tenant_id),
                    seq=seq,
                    occurred_at=now,
                    event="privacy_state.changed",
                    actor_kind="api_key",
                    subject_id=to_db(people[who]),
                    details={"change": what, "source": source},
                    prev_mac=b"\0" * 32,
                    mac=b"\0" * 32,
                )
            )

        with engine.begin() as conn:
            insert_old_tenant(conn, old, to_db(tenant_id), now)
            for name, sid in people.items():
                conn.execute(
                    old.tables["subjects"]
                    .insert()
                    .values(
                        tenant_id=to_db(tenant_id),
                        id=to_db(sid),
                        status="erased" if name == "erased" else "active",
                        created_at=now,
                        updated_at=now,
                        restricted_at=None if name == "free" else now,
                    )
                )
            # The person asked; a correction of theirs was answered since (no ground).
            request(conn, "asked", "asked", "restriction", "completed", "restricted")
            request(conn, "done", "asked", "rectification", "completed", "rectified")
            change(conn, "asked", "restricted", "requested")
            # Two corrections being checked, one waiting on the person.
            request(conn, "checking", "checked", "rectification", "in_progress", None)
            request(conn, "paused", "checked", "rectification", "paused", None)
            change(conn, "checked", "restricted", "accuracy_contested")
            # Set through the API, nothing else.
            change(conn, "api", "restricted", "api")
            # Set through the API, then a correction started (the flag was set: no entry).
            change(conn, "both", "restricted", "api")
            request(conn, "both", "both", "rectification", "in_progress", None)
            # Not restricted: a correction in progress gives no ground to a free person.
            request(conn, "free", "free", "rectification", "in_progress", None)
            # The person's restriction was lifted since; restricted, no request found.
            request(conn, "lifted", "old", "restriction", "completed", "restriction_lifted")
            change(conn, "old", "restricted", "requested")
            # Restricted at their request, then erased whole: nothing is left to restrict, and
            # a ground would keep their request from the purge for ever.
            request(conn, "gone", "erased", "restriction", "completed", "restricted")
            change(conn, "erased", "restricted", "requested")

        upgrade("datastore", engine)
        with engine.connect() as conn:
            erased_flag = conn.execute(
                select(Subject.restricted_at).where(Subject.id == people["erased"])
            ).scalar_one()
            grounds = {
                name: sorted(
                    conn.execute(
                        select(Subject.restriction_grounds).where(Subject.id == sid)
                    ).scalar_one()
                )
                for name, sid in people.items()
            }
        assert grounds == {
            "asked": [f"request:{requests['asked']}"],
            "checked": sorted(
                [f"accuracy:{requests['checking']}", f"accuracy:{requests['paused']}"]
            ),
            "api": ["api"],
            "both": [f"accuracy:{requests['both']}", "api"],
            "free": [],
            "old": ["api"],
            "erased": [],
        }
        assert erased_flag is None
    finally:
        engine.dispose()


def test_the_request_page_offers_the_lift_while_the_persons_ground_holds(
    runtime: Runtime, tenant: str, person: str
) -> None:
    """An appeal refused leaves the restriction in force: staff must still find the form that
    lifts it (the page looked at the outcome, which the appeal changed)."""
    asked = _verified(runtime, tenant, "restriction", "US-VA")
    with runtime.tenant_context(tenant) as ctx:
        request = rights.get_request(ctx, asked)
        fulfilment.fulfil(ctx, request)
        transitions.appeal(ctx, request)
        workflow.decide_appeal(ctx, request, grant=False, reason="the restriction stands as is")
    client, _csrf = staff_client(runtime, tenant)
    assert f'action="/requests/{asked}/lift-restriction"' in client.get(f"/requests/{asked}").text
    with runtime.tenant_context(tenant) as ctx:
        fulfilment.lift_restriction(ctx, rights.get_request(ctx, asked), "the dispute is settled")
    assert "lift-restriction" not in client.get(f"/requests/{asked}").text
