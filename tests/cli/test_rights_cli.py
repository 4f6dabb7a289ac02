"""`pledge rights`: staff intake, verification by a code read out, fulfilment, denial, the
queue, SLA, jobs, routing, and a list of opt-outs from an authorized agent — on both
databases."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from pledge.access.context import TenantContext
from pledge.cli.main import app
from pledge.core.clock import frozen, utcnow
from pledge.mail import reading as mail_reading
from pledge.rights import immediate, workflow
from pledge.rights import service as rights
from pledge.rights.service import Prepared, Requester, RequestInput
from pledge.runtime import Runtime
from pledge.subjects import reading
from pledge.subjects import service as subjects
from pledge.subjects.identity import IdentityKind
from pledge.subjects.service import FieldInput
from pledge.webhooks import service as webhooks
from tests.cli.test_cli import run, runner
from tests.rights.test_api_and_webhooks import Receiver
from tests.rights.test_objections_and_appeals import APPEALED_ON, REASON, _appealed
from tests.rights.test_requests import EMAIL, person

__all__ = ["person"]

MIA = "mia@example.com"


def _person(runtime: Runtime, tenant: str, email: str = MIA) -> None:
    with runtime.tenant_context(tenant) as ctx:
        subjects.create_subject(
            ctx, [FieldInput("email", email), FieldInput("first_name", "Mia", "user.name.first")]
        )


def _code(runtime: Runtime, tenant: str) -> str:
    """The six digits of the newest verification letter, as the requester reads them out."""
    with runtime.tenant_context(tenant) as ctx:
        for message in mail_reading.list_messages(ctx):
            view = mail_reading.read_message(ctx, message.id).letter
            if view is not None and "enter this code" in view.text:
                return view.text.split("enter this code: ")[1][:6]
    raise AssertionError("no verification letter")


def test_staff_enter_verify_and_fulfil_a_request(
    runtime: Runtime, tenant: str, cli_env: dict[str, str]
) -> None:
    _person(runtime, tenant)
    code, out = run(
        "rights", "submit", "-t", tenant, "--type", "access", "--email", MIA, "--jurisdiction", "EU"
    )
    assert code == 0 and "awaiting_verification" in out, out
    found = re.search(r"Request (R-[0-9A-F]{8}) \(([0-9a-f-]{36})\)", out)
    assert found is not None, out
    reference, rid = found.groups()
    code, out = run("rights", "list", "-t", tenant)
    assert code == 0 and reference in out and "access" in out
    # A wrong code, then the right one with the data point on file.
    code, out = run("rights", "verify", "-t", tenant, rid, "--code", "000000")
    assert code == 1 and "not verified" in out
    code, out = run(
        "rights", "verify", "-t", tenant, rid, "--code", _code(runtime, tenant),
        "--data-point", "first_name=mia",
    )  # fmt: skip
    assert code == 0 and out == "verified", out
    code, out = run("rights", "fulfil", "-t", tenant, rid)
    assert code == 0 and out.startswith("completed"), out
    with runtime.tenant_context(tenant) as ctx:
        assert rights.get_request(ctx, rid).state == "completed"
    code, out = run("rights", "sla", "-t", tenant)
    assert code == 0 and "overdue: 0" in out


def test_staff_deny_with_reasons_and_jobs_run(
    runtime: Runtime, tenant: str, cli_env: dict[str, str]
) -> None:
    code, out = run("rights", "submit", "-t", tenant, "--type", "erasure", "--email", MIA)
    rid = re.search(r"\(([0-9a-f-]{36})\)", out)
    assert code == 0 and rid is not None, out
    code, out = run("rights", "deny", "-t", tenant, rid.group(1), "--reason", "short")
    assert code == 1 and "explain the refusal" in out
    code, out = run(
        "rights", "deny", "-t", tenant, rid.group(1),
        "--reason", "we need it to defend a legal claim you started",
    )  # fmt: skip
    assert code == 0 and "denied" in out
    code, out = run("rights", "jobs", "-t", tenant)
    assert code == 0 and out == "closed unverified: 0; paused due dates moved: 0; purged: 0"


def test_bad_options_are_refused_with_a_message(
    runtime: Runtime, tenant: str, cli_env: dict[str, str]
) -> None:
    code, out = run(
        "rights", "submit", "-t", tenant, "--type", "objection", "--email", MIA,
        "--details", "{not json",
    )  # fmt: skip
    assert code == 1 and "--details is not JSON" in out, out
    code, out = run("rights", "submit", "-t", tenant, "--type", "access", "--email", MIA)
    rid = re.search(r"\(([0-9a-f-]{36})\)", out)
    assert rid is not None
    code, out = run(
        "rights", "verify", "-t", tenant, rid.group(1), "--code", "1", "--data-point", "phone"
    )
    assert code == 1 and "--data-point takes name=value" in out, out
    code, out = run("rights", "fulfil", "-t", tenant, rid.group(1), "--hold", "billing")
    assert code == 1 and "--hold takes name=value" in out, out


def test_routing_tells_the_requester_who_the_controller_is(
    runtime: Runtime, tenant: str, cli_env: dict[str, str]
) -> None:
    _person(runtime, tenant)
    code, out = run("rights", "route", "--type", "access", "--email", MIA)
    assert code == 0 and f"Routed to {tenant}" in out, out
    code, out = run("rights", "route", "--type", "access", "--email", "nobody@example.com")
    assert code == 0 and "No client holds this address" in out


def test_a_long_list_of_opt_outs_has_every_bad_line_listed_and_none_answered(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    lines = [f"p{n}-at-example.com" if n % 2 else f"p{n}@example.com" for n in range(420)]
    listed = tmp_path / "agent.csv"
    listed.write_text("email\n" + "\n".join(lines) + "\n")
    result = runner.invoke(
        app, ["rights", "opt-outs", "-t", tenant, str(listed), "--jurisdiction", "US-CA"]
    )
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        *(f"line {n + 2}: the requester's e-mail address is not valid" for n in range(1, 420, 2)),
        "error: 210 problem(s), nothing was received",
    ]
    with runtime.tenant_context(tenant) as ctx:
        assert rights.queue(ctx, rights.QueueFilter(open_only=False)) == []


def test_a_list_of_opt_outs_is_checked_whole_then_answered(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    _person(runtime, tenant)
    _person(runtime, tenant, "ned@example.com")
    bad = tmp_path / "bad.csv"
    bad.write_text("email,name\nmia@example.com,Mia\nnot-an-address,X\nned@example.com,Ned\n,\n")
    code, out = run("rights", "opt-outs", "-t", tenant, str(bad), "--jurisdiction", "US-CA")
    assert code == 1, out
    assert "2 problem(s), nothing was received" in out
    assert "line 3: the requester's e-mail address is not valid" in out and "line 5" in out
    with runtime.tenant_context(tenant) as ctx:
        assert rights.queue(ctx, rights.QueueFilter(open_only=False)) == []

    good = tmp_path / "good.csv"
    good.write_text("Email,Name\nmia@example.com,Mia\nned@example.com,Ned\nzed@example.com,Zed\n")
    code, out = run(
        "rights", "opt-outs", "-t", tenant, str(good), "--jurisdiction", "US-CA",
        "--agent-name", "Permission Slip", "--agent-email", "agent@example.org",
        "--agent-permission", "PS-2026-114", "--batch-size", "2",
    )  # fmt: skip
    assert code == 0, out
    assert "Answered 3 request(s): 2 applied to a subject on file, 1 about nobody" in out
    assert "a letter to the agent for each" in out
    with runtime.tenant_context(tenant) as ctx:
        for email in (MIA, "ned@example.com"):
            sid = reading.find_subject_id(ctx, IdentityKind.EMAIL, email)
            assert sid is not None
            assert subjects.get_subject_row(ctx, sid).sale_opt_out_at is not None
        done = rights.queue(ctx, rights.QueueFilter(open_only=False))
        assert (
            sorted((r.channel, r.requester_kind, r.state) for r in done)
            == [("authorized_agent", "agent", "completed")] * 3
        )
        # The letters go to the agent who sent the list.
        to = {
            mail_reading.read_message(ctx, m.id).letter.to  # type: ignore[union-attr]
            for m in mail_reading.list_messages(ctx)
        }
        assert to == {"agent@example.org"}

    code, out = run("rights", "opt-outs", "-t", tenant, str(good), "--agent-name", "Agent Co")
    assert code == 1 and rights.AGENT_NEEDS in out and "line" not in out, out
    code, out = run("rights", "opt-outs", "-t", tenant, str(good), "--type", "erasure")
    assert code == 1 and "only opt_out_sale and limit_sensitive" in out
    code, out = run("rights", "opt-outs", "-t", tenant, str(good), "--jurisdiction", "XX")
    assert code == 1 and "unknown jurisdiction" in out
    missing = tmp_path / "none.csv"
    code, out = run("rights", "opt-outs", "-t", tenant, str(missing))
    assert code == 1 and "cannot read none.csv" in out


def test_a_list_that_stops_midway_says_where_to_go_on(
    runtime: Runtime,
    tenant: str,
    cli_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listed = tmp_path / "list.csv"
    listed.write_text("email\na@example.com\nb@example.com\nc@example.com\n")
    real = immediate.answer
    calls = []

    def failing_on_the_second_batch(ctx: TenantContext, batch: list[Prepared]) -> object:
        calls.append(len(batch))
        if len(calls) == 2:
            raise RuntimeError("the disk is full")  # what a crash midway looks like
        return real(ctx, batch)

    monkeypatch.setattr(immediate, "answer", failing_on_the_second_batch)
    code, out = run("rights", "opt-outs", "-t", tenant, str(listed), "--batch-size", "1")
    assert code != 0
    assert "Stopped after answering 1 of 3; to go on, run the same command with --skip 1" in out
    monkeypatch.setattr(immediate, "answer", real)
    code, out = run("rights", "opt-outs", "-t", tenant, str(listed), "--skip", "1")
    assert code == 0 and "Answered 2 request(s)" in out, out
    with runtime.tenant_context(tenant) as ctx:
        done = rights.queue(ctx, rights.QueueFilter(open_only=False))
        # Each person once: the batch that failed left nothing behind.
        assert len(done) == 3
        letters = [
            mail_reading.read_message(ctx, m.id).letter for m in mail_reading.list_messages(ctx)
        ]
        assert sorted(x.to for x in letters if x is not None) == [
            "a@example.com",
            "b@example.com",
            "c@example.com",
        ]


def test_webhooks_deliver_posts_the_due_retries(
    runtime: Runtime, tenant: str, cli_env: dict[str, str], private_targets: None
) -> None:
    with Receiver() as receiver:
        receiver.status = 503
        with runtime.tenant_context(tenant) as ctx:
            webhooks.add_endpoint(ctx, receiver.url, ["*"])
            webhooks.emit(ctx, "request.state_changed", {"x": 1})
        assert run("webhooks", "deliver") == (0, "delivered: 0; failing (will retry): 0")
        with frozen(utcnow() + timedelta(minutes=2)):  # the first retry is due
            assert run("webhooks", "deliver") == (0, "delivered: 0; failing (will retry): 1")
        receiver.status = 200
        with frozen(utcnow() + timedelta(minutes=8)):  # and the second
            assert run("webhooks", "deliver") == (0, "delivered: 1; failing (will retry): 0")
    assert len(receiver.received) == 3


def test_staff_send_a_new_code_verify_otherwise_and_extend_an_appeal(
    runtime: Runtime, person: str, cli_env: dict[str, str]
) -> None:
    with runtime.tenant_context(person) as ctx:
        made = workflow.receive(ctx, RequestInput("access", Requester(EMAIL), "EU")).request
    rid = str(made.id)
    code, out = run("rights", "resend-verification", "-t", person, rid)
    assert code == 0 and "new code" in out, out
    assert len(_codes_sent(runtime, person)) == 2
    code, out = run("rights", "verify-otherwise", "-t", person, rid, "--reason", "seen")
    assert code == 1 and "say how the requester was verified" in out, out
    how = "called back on the number on file"
    code, out = run("rights", "verify-otherwise", "-t", person, rid, "--reason", how)
    assert code == 0 and "verified by other means" in out, out
    with runtime.tenant_context(person) as ctx:
        request = rights.get_request(ctx, rid)
        assert (request.state, request.verification_level) == ("verified", "other_means")
    appealed = _appealed(runtime, person, "US-CO")
    with frozen(APPEALED_ON + timedelta(days=10)):
        code, out = run(
            "rights", "extend-appeal", "-t", person, appealed, "--reason", REASON
        )  # fmt: skip
        assert code == 0 and "decide by 2026-06-14" in out, out
        code, out = run("rights", "extend-appeal", "-t", person, appealed, "--reason", REASON)
    assert code == 1 and "already extended" in out, out


def _codes_sent(runtime: Runtime, tenant: str) -> list[str]:
    with runtime.tenant_context(tenant) as ctx:
        return [
            view.text
            for message in mail_reading.list_messages(ctx)
            if (view := mail_reading.read_message(ctx, message.id).letter) is not None
            and "enter this code" in view.text
        ]
