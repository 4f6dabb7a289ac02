"""`Idempotency-Key` on the API's calls that create (draft-ietf-httpapi-idempotency-key-header).

An authorized agent's list of opt-outs, an integrator's new request: when the connection
drops before the answer comes, the client cannot know whether the call was done, and sending
it again would receive every request twice — two letters, two webhooks, two entries in the
queue. With a key, the second call gets the first one's answer, and nothing is done again:

* the answer is stored with the key in the call's own transaction (both or neither), for
  a day (`KEEP`), then purged by the worker;
* the same key with a different body is refused (422), a malformed key too (400);
* two calls with the same key at once (PostgreSQL): the second waits for the first where
  the key is taken, before any work, and is refused (409) — sent again, it gets the stored
  answer.

Keys are scoped to the API key that sends them and to the route, and stored as a keyed
digest, the body as another; the answer — ids, states, refusals, no personal values — is
sealed under a tenant key and outlives an erasure by a day at most.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, TypeVar, cast

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import Header, Response
from pydantic import BaseModel
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from pledge.access.context import TenantContext
from pledge.access.models import IdempotentCall
from pledge.core.clock import utcnow
from pledge.core.errors import Conflict, InvalidInput, PledgeError
from pledge.crypto.aead import seal, unseal

KEEP = timedelta(hours=24)
MAX_LENGTH = 255
REPLAYED = "Idempotent-Replayed"  # answer header on a replay (as Stripe's API names it)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Any unique string (e.g. a UUID) up to 255 characters: sending the call "
        "again with the same key and body within 24 hours returns the first answer and does "
        "nothing twice.",
    ),
]

M = TypeVar("M", bound=BaseModel)
_CALLS = cast(Table, IdempotentCall.__table__)


class MalformedKey(PledgeError):
    status = 400
    code = "idempotency_key_malformed"
    title = "Malformed Idempotency-Key"


class KeyReused(InvalidInput):
    code = "idempotency_key_reused"
    title = "Idempotency-Key reused"


class KeyInUse(Conflict):
    code = "idempotency_key_in_use"
    title = "Idempotency-Key in use"


def parse(raw: str | None) -> str | None:
    """The key, from a bare value or a structured-field string (`"…"`); None when absent."""
    if raw is None:
        return None
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not 1 <= len(value) <= MAX_LENGTH or not all(" " < c <= "~" for c in value):
        raise MalformedKey(
            f"an Idempotency-Key is 1 to {MAX_LENGTH} visible ASCII characters, without spaces"
        )
    return value


def _aead(ctx: TenantContext) -> AESGCM:
    return AESGCM(ctx.keystore.derived_key(ctx.tenant_id, "idempotency"))


def _index_key(ctx: TenantContext) -> bytes:
    return ctx.keystore.derived_key(ctx.tenant_id, "idempotency-index")


def _digest(ctx: TenantContext, route: str, key: str) -> bytes:
    scoped = f"{ctx.actor.label()}\n{route}\n{key}".encode()
    return hmac.new(_index_key(ctx), scoped, hashlib.sha256).digest()


def _fingerprint(ctx: TenantContext, body: BaseModel) -> bytes:
    """The body, keyed (it holds e-mail addresses: a plain hash could be checked against a
    guess by whoever holds a copy of the database) and in a canonical form (the same
    details in another order are the same call)."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hmac.new(_index_key(ctx), b"body\n" + canonical.encode(), hashlib.sha256).digest()


def _aad(ctx: TenantContext, digest: bytes) -> bytes:
    return b"pledge:idempotent-call:v1|" + ctx.tenant_id.bytes + digest


def once(
    ctx: TenantContext,
    response: Response,
    *,
    route: str,
    raw_key: str | None,
    body: BaseModel,
    answer: type[M],
    produce: Callable[[], M],
) -> M:
    """`produce()` — or, for a key seen in the last day with the same body, its answer then."""
    key = parse(raw_key)
    if key is None:
        return produce()
    digest = _digest(ctx, route, key)
    fingerprint = _fingerprint(ctx, body)
    now = utcnow()
    table = _CALLS
    this = (table.c.tenant_id == ctx.tenant_id) & (table.c.key_digest == digest)
    conn = ctx.session.connection()
    found = conn.execute(
        select(table.c.body_digest, table.c.answer_sealed, table.c.expires_at).where(this)
    ).first()
    if found is not None and found.expires_at > now:
        if not hmac.compare_digest(found.body_digest, fingerprint):
            raise KeyReused("this Idempotency-Key was sent before with a different body")
        response.headers[REPLAYED] = "true"
        return answer.model_validate_json(
            unseal(_aead(ctx), found.answer_sealed, _aad(ctx, digest))
        )
    if found is not None:  # expired, not yet purged
        conn.execute(delete(table).where(this))
    # The key is taken before the work: a second call with it (PostgreSQL) waits here for
    # this transaction and is refused, before doing anything twice (its own keys, letters).
    try:
        conn.execute(
            insert(table).values(
                tenant_id=ctx.tenant_id,
                key_digest=digest,
                body_digest=fingerprint,
                answer_sealed=b"",
                created_at=now,
                expires_at=now + KEEP,
            )
        )
    except IntegrityError:
        raise KeyInUse(
            "a call with this Idempotency-Key was being answered; send it again for its answer"
        ) from None
    result = produce()
    sealed = seal(_aead(ctx), result.model_dump_json().encode(), _aad(ctx, digest))
    conn.execute(update(table).where(this).values(answer_sealed=sealed))
    return result


def purge_expired(ctx: TenantContext) -> int:
    """Forget the answers older than a day (the worker's cycle)."""
    table = _CALLS
    done = ctx.session.execute(
        delete(table).where(table.c.tenant_id == ctx.tenant_id, table.c.expires_at <= utcnow())
    )
    return int(getattr(done, "rowcount", 0) or 0)
