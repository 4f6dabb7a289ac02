"""Calls out to the network that a request's commit set off — its e-mails, its webhooks —
leave once the answer has: the person who acted does not wait on a relay or a receiver.

They still run after the commit (DESIGN.md §4 invariant 4), in the same process: each lane
("mail", "webhooks") in order in a thread of its own, so a hung relay does not hold back the
webhooks while a receiver still hears of a request's changes in the order they happened.
What they fail to deliver stays queued for the worker, as before. In tests the
TestClient returns once the app has finished, so it sees them done.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from pledge.core.db import run_guarded

_KEY = "pledge.after_answer"


class AfterAnswer:
    """Outermost middleware: gives each HTTP request a place its transaction hands its network
    actions to (`web.deps.open_session`), and runs them when the response has been sent."""

    # Threads of their own: a hung peer holds these, never the ones the routes run in.
    THREADS = 8

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.limiter = anyio.CapacityLimiter(self.THREADS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        later: dict[str, list[Callable[[], None]]] = {}
        scope.setdefault("state", {})[_KEY] = later
        try:
            await self.app(scope, receive, send)
        finally:
            # Also after an error: what was handed over belongs to a committed transaction.
            async with anyio.create_task_group() as group:
                for actions in later.values():
                    group.start_soon(self._run, actions)

    async def _run(self, actions: list[Callable[[], None]]) -> None:
        await anyio.to_thread.run_sync(run_guarded, actions, limiter=self.limiter)


def later_for(request: Request) -> dict[str, list[Callable[[], None]]] | None:
    """Where this request's network actions go (by lane), if it is served through AfterAnswer."""
    found: dict[str, list[Callable[[], None]]] | None = request.scope.get("state", {}).get(_KEY)
    return found
