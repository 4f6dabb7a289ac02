"""RFC 9457 problem+json for the API; an error page for browsers. One handler for all errors.

Validation errors name the field and the rule, never echo the submitted value: it may be
personal data (DESIGN.md §4 invariant 1).
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from pledge.core.errors import PledgeError
from pledge.web.limits import MAX_BODY_BYTES, MB, UPLOAD_MAX_BODY_BYTES
from pledge.web.templating import render
from pledge.web.throttle import TooManyRequests

log = logging.getLogger("pledge.web")

PROBLEM_TYPE = "urn:pledge:problem:"


# ---------------------------------------------------------------------------------------------
# Paths for logs. The path of a public link carries its secret (`/p/{slug}/requests/status/
# {token}`, `…/verify/{token}`, `…/downloads/{token}`, `/u/{token}`): whoever reads the log
# must not be able to open the link. Logs get the path with those values replaced.

REDACTED = "…"
# A path parameter whose name holds one of these words carries a secret.
_SECRET_PARAM_WORDS = ("token", "secret")
# A path no route matched: a segment is kept only when it cannot be a link's secret (all are
# 43 characters of `secrets.token_urlsafe(32)` and more) — shorter than this, or a UUID.
_KEPT_BELOW = 20
_UUID = re.compile(r"[0-9a-f]{8}(?:-?[0-9a-f]{4}){3}-?[0-9a-f]{12}", re.IGNORECASE)


def _is_secret(param: str) -> bool:
    return any(word in param.lower() for word in _SECRET_PARAM_WORDS)


# Control characters (a `%0a` in a path) would let a client write lines of its own into the
# log: they are written as escapes.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _escaped(path: str) -> str:
    return _CONTROL.sub(_escape, path)


def loggable_path(scope: Mapping[str, Any]) -> str:
    """The request's path with secrets replaced by `…` and control characters escaped
    (`\\x0a`), for a log line.

    After routing, the scope names the route that matched (also on a 405): the values of its
    path parameters named like a secret (`token`) are replaced, everything else (slugs,
    request ids) stays as sent. A path no route matched (404 before any endpoint, an error
    before routing) keeps only its short segments and UUIDs."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "") or ""
    prefix, rest = (root, path[len(root) :]) if root and path.startswith(root) else ("", path)
    regex = getattr(scope.get("route"), "path_regex", None)
    match = regex.fullmatch(rest) if isinstance(regex, re.Pattern) else None
    if match is None:
        return _escaped(
            "/".join(
                seg if len(seg) < _KEPT_BELOW or _UUID.fullmatch(seg) else REDACTED
                for seg in path.split("/")
            )
        )
    parts: list[str] = []
    last = 0
    for start, end in sorted(match.span(name) for name in match.groupdict() if _is_secret(name)):
        if start < 0:  # an optional group that did not take part
            continue
        parts += [rest[last:start], REDACTED]
        last = end
    return _escaped(prefix + "".join(parts) + rest[last:])


# The problem+json shape every API route documents for its errors (OpenAPI).


class Problem(BaseModel):
    """RFC 9457 problem details (served as `application/problem+json`)."""

    type: str = Field(examples=["urn:pledge:problem:not_found"])
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable error code")


def _documented(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


PROBLEM_MEDIA_TYPE = "application/problem+json"
_PROBLEM_REF = "#/components/schemas/Problem"


def _problems_as_sent(spec: dict[str, Any]) -> dict[str, Any]:
    """FastAPI files a documented response's model under the route's media type (JSON); a
    problem is sent as `application/problem+json`, and the contract must say what is sent.
    In place, so it can run on FastAPI's cached schema each time."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            for answer in operation.get("responses", {}).values():
                content = answer.get("content", {})
                schema = content.get("application/json", {}).get("schema", {})
                if schema.get("$ref") == _PROBLEM_REF:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    return spec


PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: _documented("No API key, or an unknown or revoked one"),
    403: _documented("The API key lacks the scope this route needs"),
    404: _documented("No such resource in this tenant (another tenant's looks the same)"),
    409: _documented("Conflicts with the current state (e.g. the slug is taken)"),
    410: _documented("The subject has been erased"),
    413: _documented(
        "The body is larger than the route takes (4 MB): problem+json, or plain text when "
        "the Content-Length said so before the body was read"
    )
    | {"content": {"text/plain": {"schema": {"type": "string"}}}},
    422: _documented("Invalid input; `detail` names the field and the rule"),
}
# Only some routes answer these.
TOO_MANY_ATTEMPTS: dict[int | str, dict[str, Any]] = {
    429: _documented("Too many tries or codes for this request for now (`too_many_attempts`)"),
}
MALFORMED_IDEMPOTENCY_KEY: dict[int | str, dict[str, Any]] = {
    400: _documented("The Idempotency-Key is malformed (`idempotency_key_malformed`)"),
}


def _problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": PROBLEM_TYPE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
        "accept", ""
    )


def _where(loc: list[str], kind: str = "") -> str:
    if kind == "json_invalid":
        return "body"  # the body as a whole; its `loc` names where parsing stopped
    return ".".join(p for p in loc if p not in ("body", "query", "path", "header")) or "request"


# The public pages (privacy center, preference center, unsubscribe, a staff invitation) are for
# visitors with no console: an error raised before their route runs (an expired form, a value
# over its limit, no such page) is told on their own layout, never with the console's way back
# to the dashboard.
_PUBLIC_PATH = re.compile(r"/(?:p/(?P<segment>[^/]*)|u/|invite/)")
# A tenant slug as `pledge.tenants.service.SLUG` spells it: only such a segment makes a link.
_TENANT_SLUG = re.compile(r"[a-z][a-z0-9-]{0,38}[a-z0-9]")


def _page(request: Request, status: int, title: str, detail: str) -> Response:
    public = _PUBLIC_PATH.match(request.url.path)
    if public is None:
        return render(request, "error.html", {"title": title, "detail": detail}, status_code=status)
    segment = public.group("segment") or ""
    context = {
        "title": title,
        "detail": detail,
        # Known once the route has found the tenant; an error before that shows no name.
        "tenant_name": getattr(request.state, "tenant_name", ""),
        "slug": segment if _TENANT_SLUG.fullmatch(segment) else "",
    }
    return render(request, "privacy_center/problem.html", context, status_code=status)


def respond(request: Request, status: int, code: str, title: str, detail: str) -> Response:
    """The error page for a browser, problem+json for anyone else."""
    if _wants_html(request):
        return _page(request, status, title, detail)
    return _problem(status, code, title, detail)


def _not_json(request: Request) -> Response:
    detail = "body: not valid JSON (the body must be UTF-8 text)"
    if _wants_html(request):
        return _page(request, 422, "Invalid input", detail)
    error = {"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}
    return _problem(422, "invalid_input", "Invalid input", detail, errors=[error])


BUSY_RETRY_AFTER_S = 5


def _sqlite_busy(exc: OperationalError) -> bool:
    """SQLite's "database is locked" (or busy): its writer lock not had within the timeout."""
    message = str(exc.orig) if isinstance(exc.orig, sqlite3.OperationalError) else ""
    return "database is locked" in message or "database is busy" in message


def install(app: FastAPI) -> None:
    generate = app.openapi  # builds the schema once (again only if routes are added)

    def openapi() -> dict[str, Any]:
        return _problems_as_sent(generate())

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's way to extend the schema

    @app.exception_handler(PledgeError)
    async def pledge_error(request: Request, exc: PledgeError) -> Response:
        if _wants_html(request):
            response = _page(request, exc.status, exc.title, exc.detail)
        else:
            response = _problem(exc.status, exc.code, exc.title, exc.detail, **exc.extra)
        if exc.status == 401 and not _wants_html(request):
            response.headers["WWW-Authenticate"] = 'Bearer realm="pledge"'
        if isinstance(exc, TooManyRequests):  # `pledge.web.throttle`
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": e.get("msg", ""),
                "type": e.get("type", ""),
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{_where(e['loc'], e['type'])}: {e['msg']}" for e in errors[:5])
        if _wants_html(request):
            return _page(request, 422, "Invalid input", detail)
        return _problem(422, "invalid_input", "Invalid input", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {
            404: "not_found",
            405: "method_not_allowed",
            401: "unauthenticated",
            413: "body_too_large",
        }.get(exc.status_code, "http_error")
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            # FastAPI's answer to a body that is not UTF-8: it is not JSON, and is refused as
            # any other malformed JSON body is (422 `json_invalid`), not as a bare 400.
            return _not_json(request)
        title = str(exc.detail) if exc.detail else "Error"
        detail = title
        if exc.status_code == 413:  # `pledge.web.limits`
            detail = (
                f"The request is larger than this address takes ({MAX_BODY_BYTES // MB} MB; "
                f"{UPLOAD_MAX_BODY_BYTES // MB} MB on the forms that take a file)."
            )
        return respond(request, exc.status_code, code, title, detail)

    @app.exception_handler(OperationalError)
    async def database_busy(request: Request, exc: OperationalError) -> Response:
        if not _sqlite_busy(exc):
            raise exc  # any other database error is a fault: answered and logged as one
        # Another writer held SQLite's lock past the busy timeout (an import, a worker
        # step): nothing was done, and trying again shortly will do — not a 500.
        log.warning("database busy on %s %s", request.method, loggable_path(request.scope))
        response = respond(
            request,
            503,
            "busy",
            "Busy",
            "The database is busy with other work; nothing was done. Try again in a moment.",
        )
        response.headers["Retry-After"] = str(BUSY_RETRY_AFTER_S)
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # The type and the route only: messages of library errors can carry values.
        log.error(
            "unexpected %s on %s %s",
            type(exc).__name__,
            request.method,
            loggable_path(request.scope),
        )
        if _wants_html(request):
            return _page(request, 500, "Something went wrong", "The error was logged.")
        return _problem(500, "internal_error", "Internal error", "The error was logged.")
