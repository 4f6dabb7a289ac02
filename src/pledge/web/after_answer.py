"""Calls out to the network that a request's commit set off — its e-mails, its webhooks —
leave once the answer has: the person who acted does not wait on a relay or a receiver.

They still run after the commit (DESIGN.md §4 invariant 4), in the same process. Each lane
("mail", "webhooks") is one thread of the app's, taking the requests' actions in the order
their answers were sent — the order they committed, unless an earlier answer is slow to drain
to its client; a delivery retried by the worker comes later still. So receivers order events
by the body's `created_at` (stamped in the transaction), not by arrival. A hung relay never
holds back the webhooks, nor a hung receiver the mail. What they fail to deliver stays
queued for the worker, as before. The request's task waits for its own actions after
answering (so the TestClient, which returns once the app has finished, sees them done) —
except after an unhandled error, whose 500 is not held back for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from pledge.core.db import run_guarded

_KEY = "pledge.after_answer"

Actions = dict[str, list[Callable[[], None]]]


class AfterAnswer:
    """Outermost middleware: gives each HTTP request a place its transaction hands its network
    actions to (`web.deps.open_session`), and runs them on their lanes once the response has
    been sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._lanes: dict[str, ThreadPoolExecutor] = {}

    def _lane(self, name: str) -> ThreadPoolExecutor:
        lane = self._lanes.get(name)
        if lane is None:  # one thread: the lane's actions run one after the other, in order
            lane = self._lanes[name] = ThreadPoolExecutor(1, f"after-answer-{name}")
        return lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        later: Actions = {}
        scope.setdefault("state", {})[_KEY] = later
        try:
            await self.app(scope, receive, send)
        except BaseException:
            # What was handed over belongs to a committed transaction: it leaves all the
            # same, without holding back the error's answer.
            for name, actions in later.items():
                self._lane(name).submit(run_guarded, actions)
            raise
        if later:
            await asyncio.gather(
                *(
                    asyncio.wrap_future(self._lane(name).submit(run_guarded, actions))
                    for name, actions in later.items()
                )
            )


def later_for(request: Request) -> Actions | None:
    """Where this request's network actions go (by lane), if it is served through AfterAnswer."""
    found: Actions | None = request.scope.get("state", {}).get(_KEY)
    return found
