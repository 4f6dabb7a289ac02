"""The mail outbox: sealed at rest, sent only after commit, retried, unreadable after erasure."""

from __future__ import annotations

import logging
import socketserver
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from pledge import worker
from pledge.access.permissions import Role
from pledge.audit.models import AuditEntry
from pledge.core.clock import frozen, utcnow
from pledge.mail import backends
from pledge.mail import reading as mail_reading
from pledge.mail import service as mail
from pledge.mail.backends import FileBackend, MemoryBackend, OutboxOnlyBackend, SmtpBackend
from pledge.mail.models import OutboxMessage
from pledge.runtime import Runtime
from pledge.subjects import erasure
from pledge.subjects import service as subjects
from tests.conftest import api_client, login, make_user
from tests.messaging.conftest import person

TO = "quintus.outboxer@secret-mail.example"
LINE = "Your zygomorphic invoice"
BODY = "Dear Quintus, the parcel with the obsidian kettle left today."


def _queue(runtime: Runtime, tenant: str, *, about: bool = True) -> uuid.UUID:
    with runtime.tenant_context(tenant) as ctx:
        sid = subjects.create_subject(ctx, person(TO, "Quintus")) if about else None
        return mail.queue(
            ctx,
            to=TO,
            subject_line=LINE,
            text=BODY,
            headers={"X-Clik-Ref": "kettle-42"},
            kind="notification",
            subject_id=sid,
        )


def _row(runtime: Runtime, message_id: uuid.UUID) -> OutboxMessage:
    with runtime.sessions() as s:
        row = s.scalars(select(OutboxMessage).where(OutboxMessage.id == message_id)).one()
        s.expunge(row)
        return row


@pytest.mark.parametrize("about", [True, False], ids=["about-a-subject", "not-about-a-subject"])
def test_nothing_readable_is_stored(runtime: Runtime, tenant: str, about: bool) -> None:
    message_id = _queue(runtime, tenant, about=about)
    with runtime.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM outbox")).all()
    assert len(rows) == 1
    raw = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in rows[0] if v is not None)
    for secret in (TO, LINE, BODY, "kettle-42", "Quintus", "obsidian"):
        for form in (secret, secret.lower()):
            assert form.encode() not in raw, secret
    with runtime.tenant_context(tenant) as ctx:
        view = mail_reading.read_message(ctx, message_id)
    assert view.letter is not None
    assert (view.letter.to, view.letter.subject_line, view.letter.text) == (TO, LINE, BODY)
    assert view.letter.headers == {"X-Clik-Ref": "kettle-42"}


def test_mail_leaves_after_commit_and_never_after_rollback(
    runtime: Runtime, tenant: str, mailbox: MemoryBackend
) -> None:
    with runtime.tenant_context(tenant) as ctx:
        mail.queue(ctx, to=TO, subject_line=LINE, text=BODY, kind="notification")
        assert mailbox.sent == []  # not before the commit
    assert [m["To"] for m in mailbox.sent] == [TO]
    sent = mailbox.sent[0]
    assert sent["Subject"] == LINE and sent.get_content().strip() == BODY
    assert sent["Message-ID"] and sent["Date"] and sent["From"]

    with pytest.raises(RuntimeError), runtime.tenant_context(tenant) as ctx:
        mail.queue(ctx, to="never@example.com", subject_line=LINE, text=BODY)
        raise RuntimeError("boom")
    assert len(mailbox.sent) == 1
    with runtime.tenant_context(tenant) as ctx:
        statuses = [(m.status, m.attempts) for m in mail_reading.list_messages(ctx)]
    assert statuses == [("sent", 1)]  # the rolled-back message was never stored either


def test_queueing_is_audited_without_the_content(runtime: Runtime, tenant: str) -> None:
    message_id = _queue(runtime, tenant)
    with runtime.sessions() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.event == "mail.queued")).one()
    assert entry.details == {"message_id": str(message_id), "kind": "notification"}


def test_header_injection_and_bad_addresses_are_refused(runtime: Runtime, tenant: str) -> None:
    from pledge.core.errors import InvalidInput

    with runtime.tenant_context(tenant) as ctx:
        for kwargs in (
            {"to": "not an address"},
            {"subject_line": "Hello\r\nBcc: everyone@example.com"},
            {"headers": {"X-Note": "a\r\nBcc: everyone@example.com"}},
            {"headers": {"Bcc": "everyone@example.com"}},
            {"text": "   "},
        ):
            args = {"to": TO, "subject_line": LINE, "text": BODY, **kwargs}
            with pytest.raises(InvalidInput) as caught:
                mail.queue(ctx, **args)  # type: ignore[arg-type]
            assert "everyone@example.com" not in caught.value.detail


def test_failures_are_recorded_without_personal_data_and_retried(
    runtime: Runtime, tenant: str, mailbox: MemoryBackend, caplog: pytest.LogCaptureFixture
) -> None:
    import smtplib

    caplog.set_level(logging.DEBUG)
    mailbox.fail_with = smtplib.SMTPRecipientsRefused({TO: (550, f"<{TO}> unknown".encode())})
    message_id = _queue(runtime, tenant)
    row = _row(runtime, message_id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error == "SMTPRecipientsRefused 550"
    assert TO not in caplog.text and "Quintus" not in caplog.text

    mailbox.fail_with = None
    with runtime.tenant_context(tenant) as ctx:
        report = mail.deliver_pending(ctx)
        assert not report.done  # it happens after the commit
    assert (report.sent, report.failed, report.done) == (1, 0, True)
    row = _row(runtime, message_id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    assert [m["To"] for m in mailbox.sent] == [TO]
    with runtime.tenant_context(tenant) as ctx:
        assert mail.deliver_pending(ctx).scheduled == 0  # nothing left to send


def test_attempts_are_capped(runtime: Runtime, tenant: str, mailbox: MemoryBackend) -> None:
    mailbox.fail_with = ConnectionRefusedError()
    message_id = _queue(runtime, tenant)
    for _ in range(mail.MAX_ATTEMPTS + 2):
        with runtime.tenant_context(tenant) as ctx:
            mail.deliver_pending(ctx)
    row = _row(runtime, message_id)
    assert (row.status, row.attempts, row.last_error) == (
        "failed",
        mail.MAX_ATTEMPTS,
        "ConnectionRefusedError",
    )


def test_mail_about_an_erased_subject_becomes_unreadable(
    runtime: Runtime, tenant: str, mailbox: MemoryBackend
) -> None:
    mailbox.fail_with = ConnectionRefusedError()  # stays in the outbox, waiting for a retry
    message_id = _queue(runtime, tenant)
    subject_id = _row(runtime, message_id).subject_id
    assert subject_id is not None
    with runtime.tenant_context(tenant) as ctx:
        erasure.erase_subject(ctx, subject_id)
    with runtime.tenant_context(tenant) as ctx:
        view = mail_reading.read_message(ctx, message_id)
        assert view.erased and view.letter is None
    mailbox.fail_with = None
    with runtime.tenant_context(tenant) as ctx:
        report = mail.deliver_pending(ctx)
    assert (report.cancelled, report.sent) == (1, 0)
    assert mailbox.sent == []
    assert _row(runtime, message_id).status == "cancelled"


def test_the_outbox_only_backend_sends_nothing(runtime: Runtime, tenant: str) -> None:
    with backends.override(OutboxOnlyBackend()):
        message_id = _queue(runtime, tenant)
        report = worker.run_once(runtime)  # `pledge worker`'s cycle
    assert (report.mail_sent, report.errors) == (0, [])
    row = _row(runtime, message_id)
    assert (row.status, row.attempts) == ("queued", 0)


def test_a_dead_senders_claim_fails_under_the_outbox_only_backend(
    runtime: Runtime, tenant: str
) -> None:
    """A sender died mid-send, then the operator switched to the outbox-only backend: the
    message is not left 'sending' for ever (the console would show it as being sent)."""
    with backends.override(OutboxOnlyBackend()):
        message_id = _queue(runtime, tenant)
        # What the dead sender left: its claim, older than a live sender's would be.
        with runtime.sessions() as s, s.begin():
            s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id)
                .values(
                    status=mail.SENDING,
                    sent_at=utcnow() - mail.STALE - timedelta(minutes=1),
                    attempts=1,
                )
            )
        report = worker.run_once(runtime)  # `pledge worker`'s cycle
    assert (report.mail_sent, report.errors) == (0, [])
    row = _row(runtime, message_id)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "delivery interrupted")


def test_the_file_backend_writes_eml_files(runtime: Runtime, tenant: str, tmp_path: Path) -> None:
    with backends.override(FileBackend(tmp_path / "mail")):
        _queue(runtime, tenant)
    files = list((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 1
    parsed = message_from_bytes(files[0].read_bytes(), policy=default)
    assert parsed["To"] == TO and parsed["X-Clik-Ref"] == "kettle-42"


def test_backends_come_from_the_settings(tmp_path: Path) -> None:
    from pledge.core.config import Settings

    assert isinstance(backends.from_settings(Settings()), OutboxOnlyBackend)
    file = backends.from_settings(Settings(mail_backend="file", mail_dir=tmp_path))
    assert isinstance(file, FileBackend) and file.directory == tmp_path
    smtp = backends.from_settings(
        Settings(mail_backend="smtp", smtp_host="mx.test", smtp_port=2525, smtp_starttls=False)
    )
    assert isinstance(smtp, SmtpBackend) and (smtp.host, smtp.port) == ("mx.test", 2525)


# ---------------------------------------------------------------------------------------------
# SMTP against a real (tiny) SMTP server on a loopback socket


class _SmtpHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server: _SmtpServer = self.server  # type: ignore[assignment]
        self.wfile.write(b"220 test ESMTP\r\n")
        data: list[bytes] = []
        reading = False
        while line := self.rfile.readline():
            if reading:
                if line == b".\r\n":
                    reading = False
                    server.received.append(b"".join(data))
                    data = []
                    self.wfile.write(b"250 queued\r\n")
                else:
                    data.append(line[1:] if line.startswith(b"..") else line)
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.wfile.write(b"250 test\r\n")
            elif verb == b"RCPT" and server.refuse:
                self.wfile.write(b"550 no such user here\r\n")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                self.wfile.write(b"250 ok\r\n")
            elif verb == b"DATA":
                reading = True
                self.wfile.write(b"354 go on\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"502 not implemented\r\n")


class _SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.received: list[bytes] = []
        self.refuse = False


@pytest.fixture
def smtp_server() -> Iterator[_SmtpServer]:
    server = _SmtpServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_the_smtp_backend_delivers_to_a_real_server(
    runtime: Runtime, tenant: str, smtp_server: _SmtpServer
) -> None:
    port = smtp_server.server_address[1]
    with backends.override(SmtpBackend("127.0.0.1", port, starttls=False, timeout=5)):
        message_id = _queue(runtime, tenant)
    assert len(smtp_server.received) == 1
    parsed = message_from_bytes(smtp_server.received[0], policy=default)
    assert parsed["To"] == TO and parsed["Subject"] == LINE
    assert _row(runtime, message_id).status == "sent"


def test_a_refused_recipient_is_a_failure_without_the_address(
    runtime: Runtime, tenant: str, smtp_server: _SmtpServer
) -> None:
    smtp_server.refuse = True
    port = smtp_server.server_address[1]
    with backends.override(SmtpBackend("127.0.0.1", port, starttls=False, timeout=5)):
        message_id = _queue(runtime, tenant)
    row = _row(runtime, message_id)
    assert (row.status, row.last_error) == ("failed", "SMTPRecipientsRefused 550")


def test_an_unreachable_server_fails_the_batch(runtime: Runtime, tenant: str) -> None:
    with backends.override(SmtpBackend("127.0.0.1", 9, starttls=False, timeout=2)):
        message_id = _queue(runtime, tenant)
    row = _row(runtime, message_id)
    assert row.status == "failed" and row.last_error == "ConnectionRefusedError"


class _SilentRelay(socketserver.ThreadingTCPServer):
    """Accepts connections and never answers: a relay that is down behind a firewall that
    lets the connection in, or hung. Counts the connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Silent)
        self.connections = 0
        self.greets = False
        self.closing = threading.Event()

    def connections_by_now(self, at_least: int) -> int:
        """The connections taken, once `at_least` were counted by their handler threads
        (which run a moment after the client connected)."""
        for _ in range(200):
            if self.connections >= at_least:
                break
            self.closing.wait(0.025)
        return self.connections


class _Silent(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: _SilentRelay = self.server  # type: ignore[assignment]
        server.connections += 1
        if server.greets:  # then hangs at the client's first command
            self.request.sendall(b"220 hung ESMTP\r\n")
        server.closing.wait(10)


@pytest.mark.parametrize("greets", [False, True], ids=["silent", "greets-then-hangs"])
def test_after_the_relay_timed_out_the_next_act_does_not_wait_for_it_again(
    runtime: Runtime, tenant: str, greets: bool
) -> None:
    """A privacy-center form sends its letters before its page answers: with the relay down,
    each form waited for the SMTP timeout. After one timeout, messages are left queued for
    the worker for a minute — which still tries the relay each cycle."""
    relay = _SilentRelay()
    relay.greets = greets
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    smtp = SmtpBackend("127.0.0.1", relay.server_address[1], starttls=False, timeout=0.5)
    try:
        with backends.override(smtp):
            first = _queue(runtime, tenant)  # waits for the timeout: the relay is not known down
            second = _queue(runtime, tenant, about=False)  # does not
            assert _row(runtime, first).status == "failed"
            assert (_row(runtime, second).status, _row(runtime, second).attempts) == ("queued", 0)
            with frozen(utcnow() + timedelta(minutes=2)):  # the worker's cycle, later
                report = worker.run_once(runtime)
            assert report.mail_failed == 2
            assert relay.connections_by_now(2) == 2  # the worker tried the relay again
    finally:
        relay.closing.set()
        relay.shutdown()
        relay.server_close()


def test_a_campaign_with_the_relay_down_waits_for_one_timeout_not_one_per_chunk(
    runtime: Runtime, tenant: str
) -> None:
    relay = _SilentRelay()
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    smtp = SmtpBackend("127.0.0.1", relay.server_address[1], starttls=False, timeout=0.5)
    count = mail.CHUNK * 3
    try:
        with backends.override(smtp), runtime.tenant_context(tenant) as ctx:
            mail.queue_many(
                ctx,
                [
                    mail.Addressed(mail.letter(f"n{n}@example.com", LINE, BODY), None)
                    for n in range(count)
                ],
                kind=mail.MessageKind.CAMPAIGN,
            )
        assert relay.connections_by_now(1) == 1
        with runtime.tenant_context(tenant) as ctx:
            counts = mail_reading.count_by_status(ctx)
        assert counts == {"failed": mail.CHUNK, "queued": count - mail.CHUNK}
    finally:
        relay.closing.set()
        relay.shutdown()
        relay.server_close()


# ---------------------------------------------------------------------------------------------
# The console's Mail outbox


def _console(runtime: Runtime, tenant: str) -> TestClient:
    make_user(runtime, tenant, "owner@acme.example")
    client = TestClient(api_client(runtime).app, raise_server_exceptions=False)
    login(client, tenant, "owner@acme.example")
    return client


def test_the_outbox_page_lists_without_decrypting_and_opening_is_audited(
    runtime: Runtime, tenant: str
) -> None:
    message_id = _queue(runtime, tenant)
    client = _console(runtime, tenant)
    listing = client.get("/mail")
    assert listing.status_code == 200
    assert f"/mail/{message_id}" in listing.text and TO not in listing.text
    assert "Outbox only: nothing leaves" in listing.text
    opened = client.get(f"/mail/{message_id}")
    assert opened.status_code == 200
    assert TO in opened.text and LINE in opened.text and BODY in opened.text
    with runtime.sessions() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.event == "mail.read")).one()
    assert entry.details["message_id"] == str(message_id) and entry.details["readable"]
    assert client.get(f"/mail/{uuid.uuid4()}").status_code == 404


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT])
def test_only_staff_who_may_act_for_people_open_their_messages(
    runtime: Runtime, tenant: str, role: Role
) -> None:
    # A message holds what was sent to a person — a download link, a code: whoever reads it
    # can act as that person. Viewers and support agents see that mail went, not what it said.
    message_id = _queue(runtime, tenant)
    make_user(runtime, tenant, "staff@acme.example", role)
    client = TestClient(api_client(runtime).app, raise_server_exceptions=False)
    login(client, tenant, "staff@acme.example")
    listing = client.get("/mail")
    assert listing.status_code == 200 and f"/mail/{message_id}" not in listing.text
    opened = client.get(f"/mail/{message_id}")
    assert opened.status_code == 403 and BODY not in opened.text
    with runtime.sessions() as s:
        assert s.scalars(select(AuditEntry).where(AuditEntry.event == "mail.read")).all() == []


def test_the_outbox_page_shows_erased_mail_as_erased(runtime: Runtime, tenant: str) -> None:
    message_id = _queue(runtime, tenant)
    subject_id = _row(runtime, message_id).subject_id
    assert subject_id is not None
    with runtime.tenant_context(tenant) as ctx:
        erasure.erase_subject(ctx, subject_id)
    client = _console(runtime, tenant)
    opened = client.get(f"/mail/{message_id}")
    assert opened.status_code == 200
    assert "Erased" in opened.text and TO not in opened.text and BODY not in opened.text
