"""Advance notice of a material change, e-mailed to the people it affects (seed 002 "Material
Change"; seeds 003 and 004 notify by e-mail)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console
from sqlalchemy import select
from typer.testing import CliRunner

import pledge.cli.common as cli_common
from pledge.audit.models import AuditEntry
from pledge.cli.main import app
from pledge.consent import intake
from pledge.core.clock import frozen
from pledge.mail.backends import MemoryBackend
from pledge.notices import announcements
from pledge.notices import service as notices
from pledge.runtime import Runtime
from pledge.subjects import erasure
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput
from tests.messaging.conftest import follow_status, person, subscribe

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
EFFECTIVE = datetime(2027, 4, 1, tzinfo=UTC)
SUMMARY = "We now keep call recordings for 90 days instead of 30."


def _publish(runtime: Runtime, tenant: str, notice: str) -> None:
    with frozen(NOW), runtime.tenant_context(tenant) as ctx:
        notices.publish_version(
            ctx,
            notice,
            text="The new text.",
            effective_at=EFFECTIVE,
            summary=SUMMARY,
            material=True,
        )


def test_a_privacy_notice_change_reaches_who_came_through_its_collection_points(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    with frozen(NOW - timedelta(days=30)):
        reader = subscribe(runtime, clik_tenant, "reader@example.com", "Rita")  # consent
        watcher = follow_status(runtime, clik_tenant, "watcher@example.com")  # relationship
        gone = follow_status(runtime, clik_tenant, "gone@example.com")
        with runtime.tenant_context(clik_tenant) as ctx:
            stranger = subjects.create_subject(ctx, person("stranger@example.com"))
            phone_only = intake.collect(
                ctx, "status-page", [FieldInput("external_id", "crm-77")]
            ).subject_id
            erasure.erase_subject(ctx, gone)
    _publish(runtime, clik_tenant, "privacy")
    with frozen(NOW), runtime.tenant_context(clik_tenant) as ctx:
        done = announcements.send_due(ctx)
    assert [(a.notice, a.version, a.recipients) for a in done] == [("privacy", 2, 2)]
    assert sorted(str(m["To"]) for m in mailbox.sent) == [
        "reader@example.com",
        "watcher@example.com",
    ]
    to_rita = next(m for m in mailbox.sent if m["To"] == "reader@example.com")
    body = to_rita.get_content()
    assert "Hello Rita," in body and SUMMARY in body and "1 April 2027" in body
    assert "1 April 2027" in str(to_rita["Subject"])
    assert f"/p/{clik_tenant}/preferences?" in body
    with runtime.tenant_context(clik_tenant) as ctx:
        (row,) = announcements.list_announcements(ctx)
        assert row.sent_at is not None and row.recipients == 2
        entry = ctx.session.scalars(
            select(AuditEntry).where(AuditEntry.event == "notice.announced")
        ).one()
        assert entry.details["recipients"] == 2 and entry.details["notice"] == "privacy"
    # Sent once: a second run finds nothing due.
    with frozen(NOW + timedelta(hours=1)), runtime.tenant_context(clik_tenant) as ctx:
        assert announcements.send_due(ctx) == []
    assert len(mailbox.sent) == 2
    with runtime.tenant_context(clik_tenant) as ctx:
        notice = notices.get_notice(ctx, "privacy")
        affected = announcements.affected_subjects(ctx, notice)
    # Not the stranger (never came through a point), not the one without an e-mail, not the
    # erased one.
    assert sorted(affected) == sorted([reader, watcher])
    assert {stranger, phone_only, gone}.isdisjoint(affected)


def test_a_consent_wording_change_reaches_who_consented_on_it(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    with frozen(NOW - timedelta(days=30)):
        subscribe(runtime, clik_tenant, "fan@example.com")
        follow_status(runtime, clik_tenant, "status.only@example.com")
        withdrawn = subscribe(runtime, clik_tenant, "left@example.com")
        with runtime.tenant_context(clik_tenant) as ctx:
            from pledge.preferences import service as preferences

            preferences.withdraw_consent(ctx, withdrawn, "newsletter")
    _publish(runtime, clik_tenant, "newsletter-consent")
    with frozen(NOW), runtime.tenant_context(clik_tenant) as ctx:
        (done,) = announcements.send_due(ctx)
    assert done.recipients == 1 and [m["To"] for m in mailbox.sent] == ["fan@example.com"]


def test_nothing_is_sent_before_its_time_or_for_an_immaterial_change(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    subscribe(runtime, clik_tenant, "early@example.com")
    with runtime.tenant_context(clik_tenant) as ctx:
        notices.publish_version(ctx, "privacy", text="Typo fixed.", summary="typo")
        assert announcements.send_due(ctx) == []
    assert mailbox.sent == []


def test_cli_announce(
    runtime: Runtime, clik_tenant: str, cli_env: dict[str, str], mailbox: MemoryBackend
) -> None:
    with frozen(NOW - timedelta(days=1)):
        subscribe(runtime, clik_tenant, "cli@example.com")
    _publish(runtime, clik_tenant, "privacy")
    with frozen(NOW):
        result = CliRunner().invoke(app, ["notice", "announce", "--tenant", clik_tenant])
        assert result.exit_code == 0, result.output
        assert "privacy v2: announced to 1" in result.output
        assert [m["To"] for m in mailbox.sent] == ["cli@example.com"]
        again = CliRunner().invoke(app, ["notice", "announce"])
    assert again.exit_code == 0 and "nothing due" in again.output


def test_cli_announce_shows_the_letters_leaving_on_a_terminal(
    runtime: Runtime,
    clik_tenant: str,
    cli_env: dict[str, str],
    mailbox: MemoryBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readers = [f"reader{n}@example.com" for n in range(3)]
    with frozen(NOW - timedelta(days=1)):
        for address in readers:
            subscribe(runtime, clik_tenant, address)
    _publish(runtime, clik_tenant, "privacy")
    screen = io.StringIO()
    monkeypatch.setattr(cli_common, "console", Console(file=screen, force_terminal=True))
    with frozen(NOW):
        result = CliRunner().invoke(app, ["notice", "announce", "--tenant", clik_tenant])
    assert result.exit_code == 0 and "privacy v2: announced to 3" in result.output, result.output
    assert sorted(str(m["To"]) for m in mailbox.sent) == readers
    drawn = screen.getvalue()  # the bar, counting the letters handed to the relay
    assert "announcing" in drawn and "3/3" in drawn and "announcing" not in result.output


def test_a_material_change_in_effect_at_once_or_backdated_is_still_announced(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    """Published as material without a future date (the default is now), the change must
    still reach the people it affects — at the next worker cycle, saying it took effect."""
    with frozen(NOW - timedelta(days=30)):
        subscribe(runtime, clik_tenant, "late@example.com", "Lee")
    with frozen(NOW), runtime.tenant_context(clik_tenant) as ctx:
        notices.publish_version(ctx, "privacy", text="Now.", summary=SUMMARY, material=True)
        notices.publish_version(
            ctx,
            "newsletter-consent",
            text="Backdated.",
            summary="Weekly, not monthly.",
            material=True,
            effective_at=NOW - timedelta(days=2),
        )
    with frozen(NOW + timedelta(minutes=1)), runtime.tenant_context(clik_tenant) as ctx:
        done = announcements.send_due(ctx)
    assert sorted((a.notice, a.recipients) for a in done) == [
        ("newsletter-consent", 1),
        ("privacy", 1),
    ]
    assert [m["To"] for m in mailbox.sent] == ["late@example.com"] * 2
    bodies = {str(m["Subject"]): m.get_content() for m in mailbox.sent}
    now_letter = next(b for s, b in bodies.items() if "1 March 2027" in s)
    assert "we have changed our privacy notice" in now_letter
    assert "took effect on 1 March 2027" in now_letter and SUMMARY in now_letter
    assert any("took effect on 27 February 2027" in b for b in bodies.values())
