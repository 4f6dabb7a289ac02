"""Runtime configuration, read from the environment.

`PLEDGE_HOME` (default `./var`) holds the embedded SQLite data store, the keystore and the
master key file. `PLEDGE_DATABASE_URL` points the data store elsewhere (PostgreSQL in
production); `PLEDGE_KEYSTORE_URL` does the same for the keystore, which is kept apart from
the data store on purpose (see docs/decisions/0002-key-hierarchy.md).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from pledge.core.errors import PledgeError
from pledge.crypto.aead import KEY_BYTES

# The mail backends (pledge.mail.backends.from_settings builds each).
MailBackendName = Literal["outbox", "file", "smtp"]

# A rate in the `limits` notation, one only: "20/minute", "30/10 minutes", "20 per hour".
_RATE = re.compile(
    r"\s*(?P<amount>[0-9]+)\s*(?:/|per)\s*(?:(?P<every>[0-9]+)\s*)?"
    r"(?:second|minute|hour|day|month|year)s?\s*",
    re.IGNORECASE,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLEDGE_", extra="ignore")

    home: Path = Field(default=Path("var"))
    database_url: str | None = None
    keystore_url: str | None = None
    # Base64 master key; when unset the key lives in `$PLEDGE_HOME/master.key` (mode 0600).
    master_key: str | None = None
    # Public origin used in links that leave the system (emails, receipts).
    base_url: str = "http://127.0.0.1:8000"
    # Cookies (sign-in session, CSRF) marked Secure: by default when `base_url` is https
    # (production), not for the plain-HTTP development server; set it to force either way.
    secure_cookies: bool | None = None
    # A console sign-in lasts this long: at least an hour, at most 30 days.
    session_hours: int = Field(default=12, ge=1, le=720)
    # Subjects an import writes per transaction (the bounds of `subjects import --batch-size`).
    import_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Webhooks, recipients' endpoints and portability transfers go to public https hosts
    # only (pledge.webhooks.targets); true allows plain http and private addresses
    # (development, or a closed network whose receivers are private on purpose).
    webhooks_allow_private: bool = False
    # Rights requests never verified close themselves, with a letter saying why, after this.
    unverified_close_days: int = Field(default=30, ge=1, le=365)
    # Mail (pledge.mail.backends): "outbox" (default: nothing leaves, read it on the Mail
    # outbox page), "file" (.eml files in mail_dir, plaintext on disk: development only),
    # "smtp". `base_url` must be https in production: RFC 8058 one-click needs an HTTPS URI.
    mail_backend: MailBackendName = "outbox"
    # Days a message stays in the outbox once it is done with (sent, failed or cancelled):
    # then the worker deletes it, body and all. Rights letters are not counted here: they
    # stay with their request's record (24 months after it closed).
    mail_keep_days: int = Field(default=90, ge=1, le=3650)
    # Days a webhook delivery about no rights request stays once finished (delivered, or
    # failed for good; its payload is dropped then): then the worker deletes it. Those about
    # a request stay with its record; one still being retried is never deleted.
    webhook_keep_days: int = Field(default=90, ge=1, le=3650)
    mail_dir: Path | None = None
    smtp_host: str = "localhost"
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_from: str = "Pledge <no-reply@localhost>"
    smtp_timeout: float = 30.0
    # Limits per client address on the forms anyone can post (pledge.web.throttle), in the
    # `limits` notation ("20/minute", "30/10 minutes"): the sign-in (password and code
    # steps together) and the public privacy-center and preference-center forms. Set high
    # enough never to stop a person; `rate_limits=false` turns both off (e.g. a proxy in
    # front already limits). Each server process keeps its own counts. One rate each, at
    # least 1 per period (`_one_rate`: `limits` would read "0/minute" as "refuse everyone",
    # "20/0 minutes" as 20 a minute, and drop all but the first of "20/minute;5/second").
    rate_limits: bool = True
    sign_in_rate: str = "20/minute"
    public_form_rate: str = "30/10 minutes"
    # Privacy-center requests taken for one e-mail address in 24 hours, per tenant: past it
    # nothing is created or mailed (a stranger could otherwise mail-bomb the address). 0: none.
    requests_per_address_per_day: int = Field(default=5, ge=0, le=1000)
    # Reverse proxies trusted to say who the client is (comma-separated addresses or
    # networks, e.g. "10.0.0.5" or "10.0.0.0/24"): X-Forwarded-For and X-Forwarded-Proto are
    # read from those only. Unset, the peer's address is the client, whatever headers say.
    # Each must be an address or a network (`_proxies`): uvicorn keeps anything else as a name
    # no peer ever has, silently, and "*" would let every client pick its own address.
    forwarded_allow_ips: str | None = None

    @field_validator("mail_backend", mode="before")
    @classmethod
    def _backend_name(cls, value: object) -> object:
        # "SMTP" or " smtp" was always taken: only a name that is no backend is refused.
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("master_key")
    @classmethod
    def _master_key(cls, value: str | None) -> str | None:
        # Read as `load_master_key` reads it; the value itself is never repeated (a secret).
        if value:
            try:
                key = base64.b64decode(value)
            except binascii.Error:
                key = b""
            if len(key) != KEY_BYTES:
                raise ValueError(
                    f"must be {KEY_BYTES} bytes, base64-encoded (as `pledge init` writes "
                    "master.key)"
                )
        return value

    @field_validator("database_url", "keystore_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        # Unset or empty: the file in PLEDGE_HOME. Not repeated whole: it may hold a password.
        if value:
            try:
                backend = make_url(value).get_backend_name()
            except ArgumentError:
                raise ValueError(
                    "not a database URL such as 'postgresql+psycopg://user:pass@host/db' or "
                    "'sqlite:///path/pledge.db'"
                ) from None
            if backend not in ("sqlite", "postgresql"):
                raise ValueError(
                    f"{backend[:40]!r} is not supported: use 'postgresql+psycopg://…' or "
                    "'sqlite:///…'"
                )
        return value

    @field_validator("sign_in_rate", "public_form_rate")
    @classmethod
    def _one_rate(cls, value: str) -> str:
        match = _RATE.fullmatch(value)
        if match is None or int(match["amount"]) < 1 or int(match["every"] or 1) < 1:
            raise ValueError(f"{value!r} is not a rate such as '20/minute' or '30/10 minutes'")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies(cls, value: str | None) -> str | None:
        for item in (value or "").split(","):
            if not (item := item.strip()):
                continue
            try:
                if "/" in item:
                    ipaddress.ip_network(item)  # strict, as uvicorn reads it: no host bits
                else:
                    ipaddress.ip_address(item)
            except ValueError:
                raise ValueError(
                    f"{item[:60]!r} is not an address or a network such as '10.0.0.5' or "
                    "'10.0.0.0/24'"
                ) from None
        return value

    @model_validator(mode="after")
    def _keystore_apart(self) -> Settings:
        # The keys in the data store's own database would be in every backup of it: a
        # backup would then still open an erased subject's data (decision 0002).
        data, keys = _database_of(self.data_url), _database_of(self.keys_url)
        if data is not None and data == keys:
            raise ValueError(
                "PLEDGE_KEYSTORE_URL names the data store's own database: keep the keystore "
                "apart, or an erasure does not reach the data store's backups"
            )
        return self

    @model_validator(mode="after")
    def _drivers_installed(self) -> Settings:
        # Checked after `_keystore_apart`, which names the graver mistake. `postgresql://`
        # means psycopg2, which Pledge does not ship: said here, not as an ImportError later.
        for name, url in (("DATABASE_URL", self.database_url), ("KEYSTORE_URL", self.keystore_url)):
            if not url:
                continue
            parsed = make_url(url)
            try:
                parsed.get_dialect().import_dbapi()
            except (ImportError, NoSuchModuleError):
                raise ValueError(
                    f"PLEDGE_{name}: the driver {parsed.get_driver_name()[:40]!r} is not "
                    "installed (for PostgreSQL: 'postgresql+psycopg://…')"
                ) from None
        return self

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.base_url.startswith("https://")

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def data_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home_dir / 'pledge.db'}"

    @property
    def keys_url(self) -> str:
        return self.keystore_url or f"sqlite:///{self.home_dir / 'keystore.db'}"

    @property
    def master_key_path(self) -> Path:
        return self.home_dir / "master.key"


class SettingsInvalid(PledgeError):
    code = "settings_invalid"
    title = "Invalid settings"


def _database_of(url: str) -> tuple[str, ...] | None:
    """Which database a URL names, driver aside (None: unreadable, or SQLite in memory)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return None
        return (backend, str(Path(parsed.database).expanduser().resolve()))
    return (backend, parsed.host or "", str(parsed.port or ""), parsed.database or "")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings from the environment; SettingsInvalid naming each bad one (no traceback
    for a typo in a setting)."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = str(error["msg"]).removeprefix("Value error, ")
            where = "_".join(str(part) for part in error["loc"]).upper()
            problems.append(f"PLEDGE_{where}: {message}" if where else message)
        raise SettingsInvalid("; ".join(problems)) from None


def reset_settings_cache() -> None:
    get_settings.cache_clear()
