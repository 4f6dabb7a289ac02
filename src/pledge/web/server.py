"""Serving with uvicorn. Access lines carry method, path and status only: no query string
(search terms could be personal data), no client address, and the path with the secrets of
public links replaced (`pledge.web.problems.loggable_path`).

The client's address (the key of `pledge.web.throttle`'s limits) is the peer's, unless the peer
is a proxy named in `PLEDGE_FORWARDED_ALLOW_IPS`: then it is the one that proxy forwarded.
Trusting `X-Forwarded-For` from anyone would let every client pick its own address."""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pledge.core.config import Settings
from pledge.web.app import create_app
from pledge.web.problems import loggable_path

log = logging.getLogger("pledge.access")


class AccessLog:
    """ASGI middleware writing one privacy-safe line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0
        logged = False

        def write() -> None:
            nonlocal logged
            logged = True
            ms = (time.perf_counter() - start) * 1000
            # After routing, which has put the matched route and its parameters in `scope`.
            log.info("%s %s %s %.1fms", scope["method"], loggable_path(scope), status, ms)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                # The answer is out: its time, not the mail and webhooks that follow it
                # (`web.after_answer`).
                write()

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if not logged:  # no answer was sent (the client left, or the app failed)
                write()


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy options: `X-Forwarded-For`/`-Proto` honoured from the trusted proxies
    only, and not at all when none is named (uvicorn's own default trusts 127.0.0.1)."""
    trusted = ",".join(
        p.strip() for p in (settings.forwarded_allow_ips or "").split(",") if p.strip()
    )
    if not trusted:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": trusted}


def run(host: str, port: int) -> None:
    from pledge.cli.common import open_runtime

    configure_logging()
    runtime = open_runtime()
    app = AccessLog(create_app(runtime))
    # Everything loaded at start-up (modules, templates, the app) lives as long as the
    # process: out of the collector's sight, a large request (a 10,000-interaction export)
    # no longer pays for scanning it at every full collection.
    gc.collect()
    gc.freeze()
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            access_log=False,
            log_config=None,
            **proxy_options(runtime.settings),
        )
    finally:
        runtime.close()
