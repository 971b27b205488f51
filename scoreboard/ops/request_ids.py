"""Request ids: one per HTTP request, carried on its queued update and into every log line."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-Id"
MAX_REQUEST_ID_LENGTH = 200  # Heroku's router accepts ids of up to 200 characters
# Ids end up in log lines and response headers: no spaces, quotes or control characters.
_ACCEPTABLE = re.compile(rf"[A-Za-z0-9._:+/=@-]{{1,{MAX_REQUEST_ID_LENGTH}}}")

_current: ContextVar[str | None] = ContextVar("request_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def acceptable_request_id(value: object) -> str | None:
    """`value` when it is a usable request id (from a header or a message), else None."""
    if isinstance(value, str) and _ACCEPTABLE.fullmatch(value):
        return value
    return None


def request_id_from_header(header: str | None) -> str:
    """The caller's X-Request-Id (e.g. set by Heroku's router) if usable, else a new id."""
    return acceptable_request_id(header) or new_request_id()


def current_request_id() -> str | None:
    """The id of the request (or queued update) being handled in this task, if any."""
    return _current.get()


@contextmanager
def bound_request_id(request_id: str | None) -> Iterator[None]:
    """Every log line inside the block carries `request_id`."""
    token = _current.set(request_id)
    try:
        yield
    finally:
        _current.reset(token)
