"""No control characters in what a request sends (docs/decisions/0013-control-characters.md).

One rule at the edge, before any route: PostgreSQL cannot store the NUL character in text (a
query that binds one fails with a DataError: a 500 anyone could cause, from the sign-in form
on), and control characters in a path or query string have no use but to forge log lines.

* the path and the query string: no C0 control character (U+0000–U+001F) nor DEL;
* a JSON, url-encoded or multipart body: no NUL in its text (a JSON string or key, a form
  field; not a file's bytes). Tabs and newlines stay: a note may have lines.
* a form this check cannot read as the app does is refused once any of its body arrives: a
  charset where NUL is not the byte 0x00 (UTF-7's `+AAA-`), a multipart boundary missing,
  empty or too long for python-multipart.

Each is refused as any invalid input is: `422`, code `invalid_input`. The database refuses a
NUL too (`pledge.core.db`): this check answers first, before any work.

problem+json for the API, the error page for a browser (`pledge.web.problems.respond`).
"""

from __future__ import annotations

import codecs
import email.message
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers
from starlette.requests import Request

from pledge.core.errors import InvalidInput
from pledge.web import problems

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x1f\x7f]")
# A NUL in JSON text: the escape `\u0000` not itself escaped (an even run of backslashes
# before it), or a raw NUL byte (invalid JSON, refused anyway).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000|\x00")


_NUL_IN_TEXT = "The text sent holds a NUL character (U+0000), which is not accepted."
_NOT_UTF8 = "The form's charset is not accepted: send forms in UTF-8."
_NO_BOUNDARY = "The form's multipart boundary is missing or not valid."

# The charsets a form may name, as `codecs` names them: those where NUL is the byte 0x00, the
# only NUL the checks below look for. Starlette decodes a multipart field in the charset the
# Content-Type names, so in UTF-7 `+AAA-` would reach the app as a NUL.
_FORM_CHARSETS = {"utf-8", "ascii", "iso8859-1"}


class _Checker:
    """Sees a body's bytes as they arrive; `refusal` says why, once it saw what is refused."""

    refusal: str | None = None

    def feed(self, chunk: bytes) -> None:
        raise NotImplementedError

    def end(self) -> None:
        """The whole body was fed."""


class _Buffered(_Checker):
    """JSON or url-encoded: checked whole, at its end (the app reads it whole too)."""

    def __init__(self, *, json: bool) -> None:
        self.json = json
        self.chunks: list[bytes] = []

    def feed(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def end(self) -> None:
        body = b"".join(self.chunks)
        if self.json:
            found = _JSON_NUL.search(body) is not None
        else:
            found = b"\x00" in unquote_to_bytes(body)
        if found:
            self.refusal = _NUL_IN_TEXT


class _Unreadable(_Checker):
    """A form this middleware cannot read as the app would: refused once any body arrives
    (a request with none, a GET, passes as before)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail

    def feed(self, chunk: bytes) -> None:
        if chunk:
            self.refusal = self.detail


class _Multipart(_Checker):
    """A form that may carry files: the text fields are checked, the files' bytes are not."""

    def __init__(self, boundary: bytes) -> None:
        self._header_field = b""
        self._header_value = b""
        self._is_file = False
        # Raises FormParserError for a boundary python-multipart cannot take (over 256 bytes).
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._field,
                "on_header_value": self._value,
                "on_header_end": self._header_end,
                "on_part_data": self._data,
            },
        )
        self.broken = False

    def _part_begin(self) -> None:
        self._is_file = False

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_field.lower() == b"content-disposition":
            _kind, params = parse_options_header(self._header_value)
            self._is_file = b"filename" in params
        self._header_field = self._header_value = b""

    def _data(self, data: bytes, start: int, end: int) -> None:
        if not self._is_file and b"\x00" in data[start:end]:
            self.refusal = _NUL_IN_TEXT

    def feed(self, chunk: bytes) -> None:
        if self.broken:
            return
        try:
            self.parser.write(chunk)
        except FormParserError:
            # Not a form the app can read either (the same parser): it answers that itself.
            self.broken = True


def _is_json(content_type: str) -> bool:
    """Whether FastAPI reads a body of this content type as JSON (its own test, copied)."""
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _charset_accepted(params: dict[bytes, bytes]) -> bool:
    charset = params.get(b"charset")
    if charset is None:
        return True
    try:
        return codecs.lookup(charset.decode("latin-1")).name in _FORM_CHARSETS
    except LookupError:
        return False


def _checker(scope: Scope) -> _Checker | None:
    """The checker for the request's body, by its content type; None for other bodies."""
    # Read as the app reads it: of two Content-Type headers, Starlette takes the first.
    content_type = Headers(scope=scope).get("content-type", "")
    media, params = parse_options_header(content_type)
    forms = (b"multipart/form-data", b"application/x-www-form-urlencoded")
    if media in forms and not _charset_accepted(params):
        return _Unreadable(_NOT_UTF8)
    if media == b"multipart/form-data":
        boundary = params.get(b"boundary", b"")
        if not boundary:
            return _Unreadable(_NO_BOUNDARY)
        try:
            return _Multipart(boundary)
        except FormParserError:
            return _Unreadable(_NO_BOUNDARY)
    if media == b"application/x-www-form-urlencoded":
        return _Buffered(json=False)
    # FastAPI reads a body with no content type as JSON.
    if not media or _is_json(content_type):
        return _Buffered(json=True)
    return None


def _path_or_query_has_control(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    query: bytes = scope.get("query_string", b"")
    return bool(
        _CONTROL.search(path) or _CONTROL_BYTES.search(unquote_to_bytes(query.replace(b"+", b" ")))
    )


class RefusedBody(InvalidInput):
    """Raised to the app in place of a body refused (a NUL in its text, a form unreadable)."""


class RefuseControlCharacters:
    """Pure ASGI middleware: refuses a request whose path, query or body text carries a
    control character (see the module's docstring); hands every other one on unchanged.

    The body is checked as the app reads it, not read ahead: the app's size limits
    (`pledge.web.limits`, counted outside this middleware) keep their say, and a large file
    is not held twice. The app never gets a body refused: the read that would complete it
    raises `RefusedBody` instead, the app's answer to that is dropped and this one sent."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _path_or_query_has_control(scope):
            detail = "The address holds a control character, which is not accepted."
            await self._refuse(scope, receive, send, detail)
            return
        checker = _checker(scope)
        if checker is None:
            await self.app(scope, receive, send)
            return
        refused = started = False

        async def checked_receive() -> Message:
            nonlocal refused
            if checker.refusal is None:
                message = await receive()
                if message["type"] == "http.request":
                    checker.feed(message.get("body", b""))
                    if not message.get("more_body", False):
                        checker.end()
                if checker.refusal is None:
                    return message
            refused = True
            raise RefusedBody(checker.refusal)

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused and not started:
                return  # the app's answer to the refused body: this middleware's goes instead
            started = True
            await send(message)

        try:
            await self.app(scope, checked_receive, guarded_send)
        except Exception:
            if not refused or started:
                raise
        if refused and not started:
            await self._refuse(scope, receive, send, checker.refusal or _NUL_IN_TEXT)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, detail: str) -> None:
        response = problems.respond(
            Request(scope), InvalidInput.status, InvalidInput.code, InvalidInput.title, detail
        )
        await response(scope, receive, send)
