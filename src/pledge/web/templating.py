"""Jinja2 rendering with the context every page needs (CSRF token, signed-in user, tenant)."""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

TEMPLATE_DIR = Path(str(resources.files("pledge.web").joinpath("templates")))
templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
# The templates ship with the package and do not change while it runs: no stat() of the
# file at every render to see whether it did (a letter, a page, a bundle's HTML).
templates.env.auto_reload = False


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


templates.env.filters["when"] = _when


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    ctx: dict[str, Any] = {
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "page": getattr(request.state, "page", None),
    }
    ctx.update(context or {})
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    # Pages show personal data: never cache them.
    response.headers["Cache-Control"] = "no-store"
    return response
