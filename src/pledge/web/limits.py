"""How large a request body may be. A body is read whole (JSON) or spooled to disk (a form
with files) before the route sees it — and before it knows who is asking: without a bound,
one anonymous POST to the privacy center could fill the memory or the disk.

FastAPI enforces these (`max_body_size`, on the app and on the routes that take files) and
answers 413: as problem+json when the bytes read pass the limit, as a plain-text "Content Too
Large" when the Content-Length says so before anything is read (Starlette's limiter answers
that case itself). The bounds sit well above what the routes accept, so that a person whose
file is too large is told so on the form, with the limit (5 MB), not by a bare 413.
"""

from __future__ import annotations

MB = 1024 * 1024

# The API's largest bodies: a subject of 200 fields of 10,000 characters, an interaction of
# up to 1 MB of JSON, a batch of 1,000 opt-outs.
MAX_BODY_BYTES = 4 * MB

# Pages that take a file of up to 5 MB (a rectification's proof, a list of opt-outs): a
# phone's photo of a bill can be larger, and its sender should see the form's message.
UPLOAD_MAX_BODY_BYTES = 20 * MB
