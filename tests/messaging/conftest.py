"""Fixtures of the messaging tests: a tenant configured as Clik Limited (seed 004), a real
in-memory mail backend, and public links on an https origin as in production."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from fastapi.testclient import TestClient

from pledge.consent import intake
from pledge.consent.intake import ConsentChoice
from pledge.core.config import reset_settings_cache
from pledge.mail import backends
from pledge.mail.backends import MemoryBackend
from pledge.presets import clik
from pledge.runtime import Runtime
from pledge.subjects.service import FieldInput
from tests.conftest import api_client

BASE_URL = "https://privacy.clik.test"


@pytest.fixture
def public_origin(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("PLEDGE_BASE_URL", BASE_URL)
    reset_settings_cache()
    yield BASE_URL
    reset_settings_cache()


@pytest.fixture
def mailbox() -> Iterator[MemoryBackend]:
    with backends.override(MemoryBackend()) as memory:
        yield memory


@pytest.fixture
def clik_tenant(runtime: Runtime, tenant: str, public_origin: str) -> str:
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
    return tenant


def person(email: str, first_name: str = "Sam") -> list[FieldInput]:
    return [FieldInput("email", email), FieldInput("first_name", first_name, "user.name.first")]


def subscribe(runtime: Runtime, tenant: str, email: str, first_name: str = "Sam") -> uuid.UUID:
    """A newsletter sign-up with the box ticked (seed 004: consent)."""
    with runtime.tenant_context(tenant) as ctx:
        return intake.collect(
            ctx, "newsletter", person(email, first_name), [ConsentChoice("newsletter", True)]
        ).subject_id


def follow_status(runtime: Runtime, tenant: str, email: str) -> uuid.UUID:
    """A status-page subscription (seed 004: legitimate interest)."""
    with runtime.tenant_context(tenant) as ctx:
        return intake.collect(ctx, "status-page", person(email)).subject_id


def anonymous(runtime: Runtime) -> TestClient:
    """A client with no cookies and no credentials: a mail provider, a link scanner."""
    return TestClient(api_client(runtime).app, raise_server_exceptions=False)


def header(message: EmailMessage, name: str) -> str:
    value = message[name]
    assert value is not None, name
    return str(value)


def unsubscribe_url(message: EmailMessage) -> str:
    """The https URI of the List-Unsubscribe header, as a mail provider reads it."""
    value = header(message, "List-Unsubscribe")
    uris = [part.strip().strip("<>") for part in value.split(",")]
    https = [u for u in uris if u.startswith("https://")]
    assert len(https) == 1, value
    return https[0]
