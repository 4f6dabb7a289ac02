"""Where mail goes once its transaction has committed: a `MailBackend`.

* `OutboxOnlyBackend` (the default): nothing leaves; messages stay sealed in the outbox and
  can be read on the console's Mail outbox page. Right for the demo and for a system without
  a mail relay yet.
* `MemoryBackend`: keeps what was sent in a list, for tests.
* `FileBackend`: writes one `.eml` file per message to `PLEDGE_MAIL_DIR`. The files are
  plaintext on disk, so this is for development only.
* `SmtpBackend`: the standard library's `smtplib`, with STARTTLS and login when configured.

Errors reported back are short and never carry an address or a body: an SMTP server's reply
often quotes the recipient, so only the exception's type and the SMTP code are kept.
"""

from __future__ import annotations

import functools
import smtplib
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Protocol, TypeVar, assert_never

from pledge.core.config import Settings, get_settings
from pledge.core.ids import new_id

# After the relay could not be reached, how long the delivery right after a commit leaves its
# messages to the worker instead of making the person who acted wait for the timeout again.
RELAY_PAUSE_S = 60.0


class MailBackend(Protocol):
    name: str
    # False when the backend sends nothing: messages stay queued in the outbox.
    delivers: bool

    def send(self, messages: Sequence[EmailMessage]) -> list[str | None]:
        """Send each message; per message None (sent) or a short error without personal data."""
        ...

    def paused(self) -> bool:
        """True for a while after the relay could not be reached: the delivery right after a
        commit, which the person who acted waits for, leaves its messages to the worker."""
        ...


def describe_error(exc: BaseException) -> str:
    """A delivery error as the outbox may keep it: the type and the SMTP code, no text."""
    code = getattr(exc, "smtp_code", None)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({c for c, _msg in exc.recipients.values()})
        return f"{type(exc).__name__} {','.join(str(c) for c in codes)}"[:200]
    return f"{type(exc).__name__} {code}"[:200] if code else type(exc).__name__[:200]


class OutboxOnlyBackend:
    name = "outbox"
    delivers = False

    def send(self, messages: Sequence[EmailMessage]) -> list[str | None]:
        return ["the outbox-only backend sends nothing" for _ in messages]

    def paused(self) -> bool:
        return False


class MemoryBackend:
    """Keeps sent messages in `sent` (tests). `fail_with` makes every send fail."""

    name = "memory"
    delivers = True

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.fail_with: BaseException | None = None
        self._lock = threading.Lock()

    def send(self, messages: Sequence[EmailMessage]) -> list[str | None]:
        if self.fail_with is not None:
            return [describe_error(self.fail_with) for _ in messages]
        with self._lock:
            self.sent.extend(messages)
        return [None for _ in messages]

    def paused(self) -> bool:
        return False


class FileBackend:
    """One `.eml` file per message. Plaintext on disk: development only."""

    name = "file"
    delivers = True

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def paused(self) -> bool:
        return False

    def send(self, messages: Sequence[EmailMessage]) -> list[str | None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        out: list[str | None] = []
        for message in messages:
            path = self.directory / f"{new_id()}.eml"
            try:
                path.write_bytes(message.as_bytes(policy=SMTP))
                out.append(None)
            except OSError as exc:
                out.append(describe_error(exc))
        return out


class SmtpBackend:
    name = "smtp"
    delivers = True

    def __init__(
        self,
        host: str,
        port: int,
        *,
        user: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        timeout: float = 30.0,
    ) -> None:
        self.host, self.port = host, port
        self.user, self.password = user, password
        self.starttls, self.timeout = starttls, timeout
        self._unreachable_until = 0.0  # time.monotonic()

    def paused(self) -> bool:
        return time.monotonic() < self._unreachable_until

    def send(self, messages: Sequence[EmailMessage]) -> list[str | None]:
        if not messages:
            return []
        # One connection for the batch; a failure to connect fails the whole batch.
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            self._unreachable_until = time.monotonic() + RELAY_PAUSE_S
            return [describe_error(exc) for _ in messages]
        self._unreachable_until = 0.0
        out: list[str | None] = []
        try:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls()
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password or "")
            for message in messages:
                try:
                    smtp.send_message(message)
                    out.append(None)
                except smtplib.SMTPServerDisconnected as exc:
                    out.append(describe_error(exc))
                    break
                except smtplib.SMTPException as exc:
                    out.append(describe_error(exc))
        except (OSError, smtplib.SMTPException) as exc:
            if isinstance(exc, OSError):  # a relay that greets, then hangs or drops us
                self._unreachable_until = time.monotonic() + RELAY_PAUSE_S
            out.extend(describe_error(exc) for _ in range(len(messages) - len(out)))
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        out.extend("SMTPServerDisconnected" for _ in range(len(messages) - len(out)))
        return out


def from_settings(settings: Settings) -> MailBackend:
    # One of `MailBackendName`, checked when the settings are read (PLEDGE_MAIL_BACKEND).
    kind = settings.mail_backend
    if kind == "outbox":
        return OutboxOnlyBackend()
    if kind == "file":
        directory = settings.mail_dir or settings.home_dir / "mail"
        return FileBackend(directory.expanduser())
    if kind == "smtp":
        return _smtp(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_user,
            settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            settings.smtp_starttls,
            settings.smtp_timeout,
        )
    assert_never(kind)


@functools.cache
def _smtp(
    host: str, port: int, user: str | None, password: str | None, starttls: bool, timeout: float
) -> SmtpBackend:
    """One backend per relay setting, kept: it remembers when the relay was last unreachable."""
    return SmtpBackend(host, port, user=user, password=password, starttls=starttls, timeout=timeout)


# The backend in use: from the settings, unless a test put its own in place.
_override: MailBackend | None = None


def current() -> MailBackend:
    return _override if _override is not None else from_settings(get_settings())


B = TypeVar("B", bound=MailBackend)


@contextmanager
def override(backend: B) -> Iterator[B]:
    """Use `backend` for every delivery inside the block (tests)."""
    global _override
    previous, _override = _override, backend
    try:
        yield backend
    finally:
        _override = previous
