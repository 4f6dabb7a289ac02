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

from pledge.core.config import Settings
from pledge.web.app import create_app
from pledge.web.problems import loggable_path

log = logging.getLogger("pledge.access")


class AccessLog:
    """ASGI middleware writing one privacy-safe line per request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            ms = (time.perf_counter() - start) * 1000
            # After the app: routing has put the matched route and its parameters in `scope`.
            log.info("%s %s %s %.1fms", scope["method"], loggable_path(scope), status, ms)


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
