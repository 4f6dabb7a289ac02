"""Domain errors. Each carries an HTTP status and a stable machine code; one handler in
`pledge.web.problems` renders them as RFC 9457 problem+json, the CLI prints their message.

Messages never contain personal data: they name fields, lines and ids, not values.
"""

from __future__ import annotations

from typing import Any, ClassVar


class PledgeError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}


class NotFound(PledgeError):
    # Same answer for "missing" and "belongs to another tenant" (DESIGN.md §4 invariant 2).
    status = 404
    code = "not_found"
    title = "Not found"


class InvalidInput(PledgeError):
    status = 422
    code = "invalid_input"
    title = "Invalid input"


class Conflict(PledgeError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Unauthenticated(PledgeError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(PledgeError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class TooManyAttempts(PledgeError):
    status = 429
    code = "too_many_attempts"
    title = "Too many attempts"


class SubjectErased(PledgeError):
    # The subject's keys are shredded: its data is gone for good.
    status = 410
    code = "subject_erased"
    title = "Subject erased"


class NotInitialised(PledgeError):
    status = 503
    code = "not_initialised"
    title = "Pledge is not initialised"
