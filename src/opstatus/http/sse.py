"""The Server-Sent Events wire format of an event (``http/streams.py`` serves it)."""

from __future__ import annotations

import orjson

from ..event_tail import Frame
from ..events import Event

MEDIA_TYPE = "text/event-stream"


def encode(event: Event) -> Frame:
    """The event as SSE: its id (the store-wide position), its type, and the document
    webhooks send (:meth:`~opstatus.events.Event.body`) on one ``data`` line."""
    data = b"id: %s\nevent: operation.%s\ndata: %s\n\n" % (
        str(event.position).encode(),
        event.type.encode(),
        orjson.dumps(event.body()),
    )
    return Frame(event.position, data, event.terminal)
