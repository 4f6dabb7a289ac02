"""The console's Mail outbox: every message of the tenant with its status. Opening one
decrypts it and is audited; a message about an erased subject cannot be opened any more.
With the default outbox-only backend nothing leaves, and this page is the demo's mailbox."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from pledge.access.permissions import Scope
from pledge.core.ids import parse_id
from pledge.mail import backends
from pledge.mail import reading as mail_reading
from pledge.web.deps import PageContext, page_context
from pledge.web.templating import render

router = APIRouter(include_in_schema=False)

Reader = Annotated[PageContext, Depends(page_context(Scope.SUBJECTS_READ))]
BodyReader = Annotated[PageContext, Depends(page_context(Scope.MAIL_READ))]
PAGE_SIZE = 50
_URL = re.compile(r"https?://[^\s<>\"']+")


@router.get("/mail")
def outbox(request: Request, page: Reader, before: str | None = None) -> Response:
    rows = mail_reading.list_messages(
        page.ctx, before=parse_id(before) if before else None, limit=PAGE_SIZE + 1
    )
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    backend = backends.current()
    return render(
        request,
        "mail/list.html",
        {
            "messages": rows,
            "older": rows[-1].id if more else None,
            "counts": mail_reading.count_by_status(page.ctx),
            "backend": backend.name,
            "delivers": backend.delivers,
            "can_open": page.can(Scope.MAIL_READ),
        },
    )


@router.get("/mail/{message_id}")
def message(request: Request, message_id: str, page: BodyReader) -> Response:
    view = mail_reading.read_message(page.ctx, message_id)
    urls = list(dict.fromkeys(_URL.findall(view.letter.text))) if view.letter else []
    return render(request, "mail/detail.html", {"message": view, "links": urls})
