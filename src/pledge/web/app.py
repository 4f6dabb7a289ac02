"""The FastAPI application: API under /api/v1, admin pages, static files."""

from __future__ import annotations

from importlib import resources
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from pledge import __version__
from pledge.access import api as access_api
from pledge.access import pages as access_pages
from pledge.access import team_pages
from pledge.audit import api as audit_api
from pledge.audit import pages as audit_pages
from pledge.campaigns import api as campaigns_api
from pledge.campaigns import pages as campaigns_pages
from pledge.consent import api as consent_api
from pledge.consent import pages as consent_pages
from pledge.gate import api as gate_api
from pledge.gate import pages as gate_pages
from pledge.mail import api as mail_api
from pledge.mail import pages as mail_pages
from pledge.notices import api as notices_api
from pledge.notices import pages as notices_pages
from pledge.preferences import api as preferences_api
from pledge.preferences import pages as preferences_pages
from pledge.purposes import api as purposes_api
from pledge.purposes import pages as purposes_pages
from pledge.rights import api as rights_api
from pledge.rights import pages as rights_pages
from pledge.rights import public as rights_public
from pledge.rights import public_status as rights_public_status
from pledge.runtime import Runtime
from pledge.signals import api as signals_api
from pledge.signals import pages as signals_pages
from pledge.subjects import api as subjects_api
from pledge.subjects import pages as subjects_pages
from pledge.tenants import pages as tenant_pages
from pledge.web import limits, problems
from pledge.web.after_answer import AfterAnswer
from pledge.web.control_characters import RefuseControlCharacters
from pledge.web.deps import LoginRequired, SecondFactorRequired
from pledge.web.security import BrowserSecurity
from pledge.web.throttle import Throttle
from pledge.webhooks import api as webhooks_api

API_DESCRIPTION = """
Pledge keeps the promises of a privacy policy. Every call is authenticated with a tenant's API
key (`Authorization: Bearer plg_…`); the tenant comes from the key, never from the URL.
Errors are RFC 9457 `application/problem+json` with a machine-readable `code`.
"""


API_ROUTERS: tuple[APIRouter, ...] = (
    subjects_api.router,
    audit_api.router,
    access_api.router,
    access_api.users_router,
    purposes_api.router,
    notices_api.router,
    consent_api.router,
    gate_api.router,
    preferences_api.router,
    campaigns_api.router,
    signals_api.router,
    mail_api.router,
    rights_api.router,
    webhooks_api.router,
)
PAGE_ROUTERS: tuple[APIRouter, ...] = (
    access_pages.router,
    team_pages.router,
    tenant_pages.router,
    subjects_pages.router,
    audit_pages.router,
    purposes_pages.router,
    notices_pages.router,
    consent_pages.router,
    gate_pages.router,
    preferences_pages.router,
    campaigns_pages.router,
    signals_pages.router,
    mail_pages.router,
    rights_pages.router,
    rights_public.router,
    rights_public_status.router,
)


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="Pledge",
        version=__version__,
        description=API_DESCRIPTION,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        max_body_size=limits.MAX_BODY_BYTES,
    )
    app.state.runtime = runtime
    # Per app, so a new app (each test's) starts with no counts; `.reset()` forgets them.
    app.state.throttle = Throttle.from_settings(runtime.settings)
    # Inside BrowserSecurity: its refusals carry the security headers and the CSRF token.
    app.add_middleware(RefuseControlCharacters)
    app.add_middleware(BrowserSecurity, secure_cookies=runtime.settings.cookies_secure)
    app.add_middleware(AfterAnswer)  # added last: outermost, runs once the response is sent
    problems.install(app)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        target = (
            "/login/totp"
            if isinstance(exc, SecondFactorRequired)
            else ("/login?next=" + quote(request.url.path, safe="/"))
        )
        if request.headers.get("HX-Request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    for router in (*API_ROUTERS, *PAGE_ROUTERS):
        app.include_router(router)
    static = str(resources.files("pledge.web").joinpath("static"))
    app.mount("/static", StaticFiles(directory=static), name="static")
    return app
