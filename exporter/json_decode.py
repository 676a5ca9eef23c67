"""JSON decoding of big status bodies without holding the GIL for the whole body.

``json.loads`` is one C call: on 10,000 connectors it holds the GIL for 100+ ms, and every scrape waits.
``loads`` decodes a top-level object one member (one connector) at a time with the same C scanner, so the
interpreter can switch threads between members; run in a worker thread, the event loop keeps answering.
The result is exactly ``json.loads(body)``: anything unusual (another top-level type, a BOM, another
encoding, invalid JSON) is handed to ``json.loads(body)`` itself, which returns or raises as it always does.
"""

from __future__ import annotations

import json
import re
from json.decoder import scanstring  # type: ignore[attr-defined]  # the C scanner, untyped in typeshed
from typing import Any

_decoder = json.JSONDecoder()
_ws = re.compile(r"[ \t\n\r]*")


def _skip(text: str, idx: int) -> int:
    """Index of the first non-whitespace character at or after ``idx``."""
    found = _ws.match(text, idx)
    assert found is not None  # the pattern matches the empty string
    return found.end()


def loads(body: bytes | bytearray) -> Any:
    try:
        text = body.decode("utf-8")
        found = _members(text)
    except ValueError:  # UnicodeDecodeError, JSONDecodeError: let json.loads say it (or decode another encoding)
        found = None
    return json.loads(body) if found is None else found


def _members(text: str) -> dict[str, Any] | None:
    """The top-level object of ``text``, or None when ``text`` is not one well-formed object."""
    idx = _skip(text, 0)
    if text[idx : idx + 1] != "{":
        return None
    out: dict[str, Any] = {}
    idx = _skip(text, idx + 1)
    if text[idx : idx + 1] == "}":
        idx += 1
    else:
        while True:
            if text[idx : idx + 1] != '"':
                return None
            key, idx = scanstring(text, idx + 1)
            idx = _skip(text, idx)
            if text[idx : idx + 1] != ":":
                return None
            out[key], idx = _decoder.raw_decode(text, _skip(text, idx + 1))
            idx = _skip(text, idx)
            sep = text[idx : idx + 1]
            if sep == "}":
                idx += 1
                break
            if sep != ",":
                return None
            idx = _skip(text, idx + 1)
    return out if _skip(text, idx) == len(text) else None
