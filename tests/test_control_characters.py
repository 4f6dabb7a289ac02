"""Control characters in what a request sends: a clear refusal, never a 500, on both databases
(PostgreSQL cannot store NUL in text); files keep their bytes; the access log cannot be forged;
a NUL that comes another way (the CLI, a service call) is refused by the database guard
(docs/decisions/0013-control-characters.md)."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from pledge.access import service as access
from pledge.access.permissions import Scope
from pledge.cli.main import app as cli
from pledge.core.errors import InvalidInput
from pledge.rights import service as rights
from pledge.runtime import Runtime
from pledge.web.app import create_app
from pledge.web.server import AccessLog
from tests.conftest import api_client

HTML = {"accept": "text/html"}
# A proof as a phone sends it: binary, NUL bytes included.
PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01"


def _no_unexpected_errors(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_nul_in_the_sign_in_workspace_is_refused_on_the_page(
    runtime: Runtime, tenant: str, caplog: pytest.LogCaptureFixture
) -> None:
    c = api_client(runtime)
    c.headers.update(HTML)
    c.get("/login")
    r = c.post(
        "/login",
        data={
            "workspace": "ac\x00me",
            "email": "a@example.com",
            "password": "x" * 12,
            "csrf_token": c.cookies["pledge_csrf"],
        },
    )
    assert r.status_code == 422
    assert "text/html" in r.headers["content-type"] and "NUL character" in r.text
    _no_unexpected_errors(caplog)


def test_a_control_character_in_the_address_is_invalid_input(
    runtime: Runtime, tenant: str, caplog: pytest.LogCaptureFixture
) -> None:
    c = api_client(runtime)
    for path in ("/p/ac%00me/requests", "/p/ac%0Ame/requests", "/login?next=/%0a"):
        r = c.get(path)
        assert r.status_code == 422, path
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "invalid_input"
    assert c.get(f"/p/{tenant}/requests").status_code == 200
    _no_unexpected_errors(caplog)


def test_a_nul_in_api_json_is_refused_and_nothing_is_written(
    runtime: Runtime, client: TestClient, tenant: str, caplog: pytest.LogCaptureFixture
) -> None:
    r = client.post("/api/v1/api-keys", json={"name": "ci\x00bot", "scopes": ["subjects:read"]})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "invalid_input"
    with runtime.tenant_context(tenant) as ctx:
        assert [k.name for k in access.list_api_keys(ctx)] == ["test"]
    # The six characters `\u0000` typed as text (an escaped backslash) are no NUL.
    r = client.post(
        "/api/v1/api-keys",
        content='{"name": "ci\\\\u0000bot", "scopes": ["subjects:read"]}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "ci\\u0000bot"
    _no_unexpected_errors(caplog)


def test_lone_surrogates_in_api_json_are_no_500(client: TestClient) -> None:
    bodies = [
        (
            "/api/v1/subjects",
            '{"fields":[{"name":"email","value":"s@example.com"},'
            '{"name":"note","value":"a\\ud800b","category":"user.content"}]}',
        ),
        ("/api/v1/subjects/search", '{"email":"a\\ud800@example.com"}'),
        ("/api/v1/subjects/search", '{"external_id":"a\\ud800"}'),
        ("/api/v1/subjects", '{"fields":[{"name":"external_id","value":"x\\ud800"}]}'),
    ]
    for path, body in bodies:
        r = client.post(path, content=body, headers={"content-type": "application/json"})
        assert r.status_code != 500, (path, r.text)


def test_the_privacy_center_form_refuses_a_nul_in_text_but_takes_a_binary_proof(
    runtime: Runtime, tenant: str, caplog: pytest.LogCaptureFixture
) -> None:
    c = TestClient(create_app(runtime), raise_server_exceptions=False)
    c.headers.update(HTML)
    c.get(f"/p/{tenant}/requests")
    form = {
        "type": "access",
        "email": "paula@example.com",
        "jurisdiction": "E\x00U",
        "csrf_token": c.cookies["pledge_csrf"],
    }
    proof = {"proof": ("id.jpg", PHOTO, "image/jpeg")}
    r = c.post(f"/p/{tenant}/requests", data=form, files=proof)
    assert r.status_code == 422 and "NUL character" in r.text
    with runtime.tenant_context(tenant) as ctx:
        assert rights.queue(ctx) == []
    r = c.post(f"/p/{tenant}/requests", data={**form, "jurisdiction": "EU"}, files=proof)
    assert r.status_code == 200, r.text
    with runtime.tenant_context(tenant) as ctx:
        assert len(rights.queue(ctx)) == 1
    _no_unexpected_errors(caplog)


def test_a_nul_in_a_field_after_a_large_proof_is_found_too(
    runtime: Runtime, tenant: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The fields come in the order the client chose: one after a 4.5 MB photo (more than the
    API's 4 MB, less than the form's 5 MB) is checked like the others."""
    c = TestClient(create_app(runtime), raise_server_exceptions=False)
    c.get(f"/p/{tenant}/requests")
    photo = PHOTO + b"\x00" * (4 * 1024 * 1024 + 512 * 1024)

    def body(jurisdiction: str) -> bytes:
        fields = [
            ("csrf_token", c.cookies["pledge_csrf"]),
            ("type", "access"),
            ("email", "paula@example.com"),
        ]
        parts = [
            f'--b0undary\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields
        ]
        parts.append(
            b'--b0undary\r\nContent-Disposition: form-data; name="proof"; filename="id.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + photo + b"\r\n"
        )
        parts.append(
            b'--b0undary\r\nContent-Disposition: form-data; name="jurisdiction"\r\n\r\n'
            + jurisdiction.encode()
            + b"\r\n--b0undary--\r\n"
        )
        return b"".join(parts)

    multipart = {"content-type": "multipart/form-data; boundary=b0undary"}
    r = c.post(f"/p/{tenant}/requests", content=body("E\x00U"), headers=multipart)
    assert r.status_code == 422 and "NUL character" in r.json()["detail"]
    r = c.post(f"/p/{tenant}/requests", content=body("EU"), headers=multipart)
    assert r.status_code == 200, r.text
    with runtime.tenant_context(tenant) as ctx:
        assert len(rights.queue(ctx)) == 1
    _no_unexpected_errors(caplog)


def test_the_access_log_escapes_control_characters_in_the_path(
    runtime: Runtime, tenant: str, caplog: pytest.LogCaptureFixture
) -> None:
    c = TestClient(AccessLog(create_app(runtime)), raise_server_exceptions=False)
    with caplog.at_level(logging.INFO, logger="pledge.access"):
        c.get("/x%0aGET%20/admin%20200")
    lines = [r.getMessage() for r in caplog.records if r.name == "pledge.access"]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith("GET /x\\x0aGET /admin 200 422 ")


def _login_form(c: TestClient, workspace: str) -> dict[str, str]:
    return {
        "csrf_token": c.cookies["pledge_csrf"],
        "workspace": workspace,
        "email": "a@example.com",
        "password": "x" * 12,
    }


def _multipart(fields: dict[str, str], boundary: str) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def test_a_second_content_type_header_does_not_hide_a_nul(
    runtime: Runtime, client: TestClient, tenant: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The app reads the first Content-Type (JSON here): the check reads the same one."""
    r = client.post(
        "/api/v1/api-keys",
        content='{"name": "ci\\u0000bot", "scopes": ["subjects:read"]}',
        headers=[("content-type", "application/json"), ("content-type", "text/plain")],
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input"
    with runtime.tenant_context(tenant) as ctx:
        assert [k.name for k in access.list_api_keys(ctx)] == ["test"]
    _no_unexpected_errors(caplog)


@pytest.mark.parametrize("charset", ["utf-7", "UTF-16", "no-such-charset"])
def test_a_form_in_a_charset_other_than_utf8_is_refused(
    runtime: Runtime, tenant: str, charset: str, caplog: pytest.LogCaptureFixture
) -> None:
    """In UTF-7, `+AAA-` is a NUL: the app would decode it so; such a form is refused."""
    c = api_client(runtime)
    c.headers.update(HTML)
    c.get("/login")
    body = _multipart(_login_form(c, "ac+AAA-me"), "bnd")
    r = c.post(
        "/login",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary=bnd; charset={charset}"},
    )
    assert r.status_code == 422 and "send forms in UTF-8" in r.text, r.text[:300]
    _no_unexpected_errors(caplog)


def test_a_form_in_utf8_or_latin1_is_still_read(
    runtime: Runtime, tenant: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The charsets where NUL is the byte 0x00 pass: the sign-in answers as it does (a wrong
    password), not with a refusal."""
    c = api_client(runtime)
    c.headers.update(HTML)
    c.get("/login")
    for charset in ("UTF-8", "us-ascii", "ISO-8859-1", "latin1"):
        r = c.post(
            "/login",
            content=_multipart(_login_form(c, tenant), "bnd"),
            headers={"content-type": f"multipart/form-data; boundary=bnd; charset={charset}"},
        )
        assert r.status_code != 422 and "send forms in UTF-8" not in r.text, charset
    _no_unexpected_errors(caplog)


def test_a_form_with_an_empty_boundary_is_refused(
    runtime: Runtime, tenant: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The app parses a form whose boundary is empty (delimiter `--`): it cannot go unchecked."""
    c = api_client(runtime)
    c.headers.update(HTML)
    c.get("/login")
    body = _multipart(_login_form(c, "ac\x00me"), "")
    r = c.post("/login", content=body, headers={"content-type": 'multipart/form-data; boundary=""'})
    assert r.status_code == 422 and "boundary" in r.text, r.text[:300]
    r = c.post(
        "/login",
        content=_multipart(_login_form(c, "acme"), "bnd"),
        headers={"content-type": "multipart/form-data"},
    )
    # With no boundary at all the app reads no body: it answers that itself, and no NUL in it
    # could reach anything.
    assert r.status_code == 400 and "Missing boundary" in r.text, r.text[:300]
    _no_unexpected_errors(caplog)


def test_a_boundary_too_long_is_refused_with_a_body_and_ignored_without(
    runtime: Runtime, client: TestClient, tenant: str, caplog: pytest.LogCaptureFixture
) -> None:
    """python-multipart takes no boundary over 256 bytes: no 500, not even for a GET."""
    headers = {"content-type": "multipart/form-data; boundary=" + "b" * 300}
    assert client.get(f"/p/{tenant}/requests", headers=headers).status_code == 200
    assert client.get("/api/v1/api-keys", headers=headers).status_code == 200
    r = client.post("/api/v1/subjects/search", content=b"x", headers=headers)
    assert r.status_code == 422 and "boundary" in r.json()["detail"], r.text
    _no_unexpected_errors(caplog)


@pytest.mark.parametrize("cookie", [None, "é" * 40])
def test_a_non_ascii_csrf_token_is_forbidden_not_a_500(
    runtime: Runtime, tenant: str, cookie: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    c = api_client(runtime)
    c.headers.update(HTML)
    c.get("/login")
    form = {**_login_form(c, tenant), "csrf_token": "é"}
    headers: dict[bytes, bytes] = {}
    if cookie is not None:  # sent as raw bytes: httpx encodes no cookie outside ASCII
        c.cookies.clear()
        headers[b"cookie"] = b"pledge_csrf=" + cookie.encode()
    r = c.post("/login", data=form, headers=headers)
    assert r.status_code == 403, (r.status_code, r.text[:200])
    assert "form has expired" in r.text
    _no_unexpected_errors(caplog)


def test_the_database_refuses_a_nul_from_a_service_call(runtime: Runtime, tenant: str) -> None:
    """A NUL the middleware never saw (here a call from code, as a job or the CLI makes) is
    refused as invalid input on both databases: SQLite would have stored it."""
    with pytest.raises(InvalidInput, match="NUL"), runtime.tenant_context(tenant) as ctx:
        access.create_api_key(ctx, name="ci\x00bot", scopes=frozenset({Scope.SUBJECTS_READ}))
    with runtime.tenant_context(tenant) as ctx:
        assert access.list_api_keys(ctx) == []
        # Tabs and newlines are text like any other.
        access.create_api_key(ctx, name="ci\tbot", scopes=frozenset({Scope.SUBJECTS_READ}))
    with runtime.tenant_context(tenant) as ctx:
        assert [k.name for k in access.list_api_keys(ctx)] == ["ci\tbot"]


def test_the_database_refuses_a_nul_in_any_row_of_many(runtime: Runtime) -> None:
    """An executemany (bulk inserts) is checked row by row; bytes (sealed data) pass as they are."""
    with runtime.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TEMPORARY TABLE nul_guard (t TEXT, b BYTEA)".replace(
                    "BYTEA", "BYTEA" if conn.dialect.name == "postgresql" else "BLOB"
                )
            )
        )
        insert = text("INSERT INTO nul_guard (t, b) VALUES (:t, :b)")
        conn.execute(insert, [{"t": "a", "b": b"\x00\x01"}, {"t": "b", "b": b"\x00"}])
        with pytest.raises(InvalidInput, match="NUL"):
            conn.execute(insert, [{"t": "c", "b": b""}, {"t": "d\x00", "b": b""}])
        count = conn.execute(text("SELECT count(*) FROM nul_guard")).scalar_one()
        conn.execute(text("DROP TABLE nul_guard"))
    assert count == 2


def test_the_cli_refuses_a_nul_with_its_error_not_a_traceback(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    result = CliRunner().invoke(cli, ["tenant", "create", "nulco", "--name", "Nul\x00Co"])
    assert result.exit_code == 1 and "NUL" in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    result = CliRunner().invoke(cli, ["tenant", "list"])
    assert result.exit_code == 0 and "nulco" not in result.output


def test_the_database_guard_refuses_a_nul_inside_a_json_value(
    runtime: Runtime, tenant: str
) -> None:
    """Decision 0013's second wall reaches inside JSON values too (audit details, a tenant's
    retention classes…): PostgreSQL's jsonb refused `\\u0000` with a DataError quoting the
    value (a 500, a CLI traceback), SQLite stored it."""
    from pledge.audit import service as audit
    from pledge.audit.events import AuditEvent

    with pytest.raises(InvalidInput), runtime.tenant_context(tenant) as ctx:
        audit.record(ctx, AuditEvent.SUBJECT_COLLECTED, details={"note": "a\x00b"})
