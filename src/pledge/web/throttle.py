"""Limits per client address on the forms anyone can post without signing in: the sign-in
(password spraying across accounts, which the per-account lock does not see) and the public
privacy-center and preference-center forms (each request mails its address, and fills the
staff queue).

The counts are moving windows of the `limits` package, in this process's memory: with several
server processes each keeps its own count, so a client gets up to that many times the limit;
a restart forgets them. Enough to make abuse slow; a per-address limit on the requests
themselves, which must hold across processes, is counted in the database instead
(`pledge.rights.public`). One `Throttle` per app (`create_app`): a new app starts from zero.

The client is `request.client.host`: the peer, or the address a trusted proxy forwarded
(`PLEDGE_FORWARDED_ALLOW_IPS`, read by uvicorn in `pledge.web.server`). An IPv6 client is
counted by its /64 network: one subscriber usually holds the whole of it.

The public forms are counted per tenant (`check`'s `tenant`), once the tenant is known: one
tenant's centers, however busy from a shared address (a carrier's, an office's), never hold
that address back on another tenant's, and a made-up workspace name opens no count. The
sign-in is counted per address alone: the workspace is what the client types, so a count
per workspace would let one client spray passwords over every workspace in turn.
"""

from __future__ import annotations

import ipaddress
import math
import time
import uuid
from enum import StrEnum

from fastapi import Request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from pledge.core.config import Settings
from pledge.core.errors import TooManyAttempts


class Rule(StrEnum):
    SIGN_IN = "sign-in"
    PUBLIC_FORMS = "public-forms"


class TooManyRequests(TooManyAttempts):
    """Over a limit: answered 429, with `Retry-After` when the wait is known."""

    code = "too_many_requests"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


def _parse(setting: str, value: str) -> RateLimitItem:
    """A limit in the `limits` notation; a ValueError naming the setting stops the start."""
    try:
        return parse(value)
    except ValueError:
        raise ValueError(
            f"{setting}={value!r} is not a rate such as '20/minute' or '30/10 minutes'"
        ) from None


class Throttle:
    """Moving-window counts of attempts per rule and client address."""

    def __init__(self, rules: dict[Rule, RateLimitItem]) -> None:
        self.rules = rules
        self.storage = MemoryStorage()
        self.limiter = MovingWindowRateLimiter(self.storage)

    @classmethod
    def from_settings(cls, settings: Settings) -> Throttle:
        if not settings.rate_limits:
            return cls({})
        return cls(
            {
                Rule.SIGN_IN: _parse("PLEDGE_SIGN_IN_RATE", settings.sign_in_rate),
                Rule.PUBLIC_FORMS: _parse("PLEDGE_PUBLIC_FORM_RATE", settings.public_form_rate),
            }
        )

    def hit(self, rule: Rule, address: str, scope: str = "") -> int | None:
        """Count one attempt from `address` (within `scope`: a tenant's id, or "" for none):
        None when allowed, else the seconds until the next is (a refused attempt is not
        counted: waiting out the window is enough)."""
        item = self.rules.get(rule)
        if item is None or self.limiter.hit(item, rule.value, scope, address):
            return None
        reset_at = self.limiter.get_window_stats(item, rule.value, scope, address).reset_time
        return max(1, math.ceil(reset_at - time.time()))

    def reset(self) -> None:
        """Forget every count."""
        self.storage.reset()


def client_address(request: Request) -> str:
    """The key a client is counted under: its address, an IPv6 one's /64 network."""
    host = request.client.host if request.client else ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:100] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def wait_words(seconds: int) -> str:
    if seconds < 60:
        return "a minute"
    minutes = math.ceil(seconds / 60)
    return "a minute" if minutes == 1 else f"{minutes} minutes"


def check(request: Request, rule: Rule, what: str, *, tenant: uuid.UUID | None = None) -> None:
    """Count this request against `rule`, among the client's requests to `tenant` when one
    is given; TooManyRequests past the limit. `what` names the attempts in the message
    ("sign-in attempts")."""
    throttle: Throttle = request.app.state.throttle
    wait = throttle.hit(rule, client_address(request), "" if tenant is None else tenant.hex)
    if wait is not None:
        raise TooManyRequests(
            f"too many {what} from your network in a short time; wait {wait_words(wait)} "
            "and try again",
            retry_after=wait,
        )
