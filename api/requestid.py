"""The id of the request being served: sent back in X-Request-ID, in every error and log line."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

HEADER = "X-Request-ID"
# What a proxy or client may choose (its own trace id); anything else is replaced by ours.
SANE = re.compile(r"[A-Za-z0-9._:-]{8,64}")
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def choose(incoming: str | None) -> str:
    """The incoming id when it is sane, otherwise a new one."""
    if incoming and SANE.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def current() -> str | None:
    """The id of the request being served, None outside a request."""
    return REQUEST_ID.get()
