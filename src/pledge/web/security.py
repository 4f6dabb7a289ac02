"""Browser-facing protections: security headers and the CSRF double-submit cookie."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import Response

from pledge.core.errors import Forbidden

CSRF_COOKIE = "pledge_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


class BrowserSecurity(BaseHTTPMiddleware):
    def __init__(self, app: object, *, secure_cookies: bool) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.secure_cookies = secure_cookies

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        token = request.cookies.get(CSRF_COOKIE) or ""
        fresh = len(token) < 32
        if fresh:
            token = secrets.token_urlsafe(32)
        request.state.csrf_token = token
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # No Referer: URLs of pages must not travel to other sites.
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if fresh and not request.url.path.startswith("/api/"):
            # Lax, not Strict: a Strict cookie is not sent when a person arrives by a link
            # from another site (an e-mail), so a new token would be minted and every form
            # open in other tabs would expire. The echo in the form is the protection: another
            # site cannot read the cookie to echo it, and Lax still keeps it off cross-site
            # POSTs.
            response.set_cookie(
                CSRF_COOKIE,
                token,
                httponly=True,
                samesite="lax",
                secure=self.secure_cookies,
                path="/",
            )
        return response


async def csrf_protect(request: Request) -> None:
    """For page routes: an unsafe request must echo the CSRF cookie in a field or header."""
    if request.method not in UNSAFE:
        return
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent:
        form = await request.form()
        value = form.get(CSRF_FIELD, "")
        sent = value if isinstance(value, str) else ""
    # Compared as bytes: `compare_digest` raises TypeError on a str with non-ASCII characters
    # (a 500 for `csrf_token=é`). `surrogatepass` keeps the encoding one-to-one.
    if not cookie or not sent or not hmac.compare_digest(_utf8(cookie), _utf8(sent)):
        raise Forbidden("the form has expired; reload the page and try again")


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")
