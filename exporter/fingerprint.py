"""Failure fingerprints: the exception class of a trace's first line and of its last ``Caused by:``.

Pure string work, no I/O. A fingerprint is made of Java class names only, never of messages, so its values
are bounded by the classes the running code can throw, whatever the messages hold (numbers, ids, SQL). A
trace without a recognisable class gives ``unknown``.

Java's ``Throwable.printStackTrace()`` writes ``<class>[: <message>]`` on the first line, then ``\tat``
frames, then one ``Caused by: <class>[: <message>]`` per cause at the start of a line; the causes of
suppressed exceptions are indented (``\tCaused by:``) and are not part of the main chain.

Confluent Cloud managed connectors report a message (``trace`` of the connector, ``msg`` of a task) and an
error state (``SYSTEM_ERROR``, ``USER_ACTIONABLE_ERROR``) instead of a Java trace: when the text holds no
class, the root cause is the error state (docs/metrics.md, "Failure intelligence").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from exporter.model import CLOUD_ERROR_STATES

UNKNOWN = "unknown"
MAX_CLASS_LENGTH = 200  # longer "class names" are not believed (label values stay short)
MAX_TRACE_SCAN = 256 * 1024  # traces longer than this are read from their first 256 KiB only


# A fully qualified Java class name (binary name: nested classes with ``$``): at least one package segment,
# a simple name that starts with an upper-case letter, followed by the end of the line or ``: message``.
_IDENT = r"[A-Za-z_$][A-Za-z0-9_$]*"
_CLASS = re.compile(rf"(?:{_IDENT}\.)+[A-Z$][A-Za-z0-9_$]*")
_CAUSED_BY = re.compile(r"^Caused by: (\S+?)(?::|$)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    exception: str  # class of the first line, or "unknown"
    root_cause: str  # class of the last "Caused by:", else the exception itself (see module docstring)
    causes: tuple[str, ...] = ()  # every recognised class of the main chain, first line first


def java_class(text: str) -> str | None:
    """The class a ``<class>[: message]`` line starts with, or None when it does not start with one."""
    head = text.strip()
    end = head.find(": ")
    name = head if end < 0 else head[:end]
    if name.endswith(":"):
        name = name[:-1]
    if len(name) > MAX_CLASS_LENGTH or not _CLASS.fullmatch(name):
        return None
    return name


@lru_cache(maxsize=512)  # a failing target keeps its trace poll after poll: parse it once
def _parse(trace: str) -> tuple[str | None, tuple[str, ...]]:
    text = trace[:MAX_TRACE_SCAN]
    stripped = text.lstrip()
    first = stripped.split("\n", 1)[0] if stripped else ""
    exception = java_class(first)
    causes: list[str] = []
    for m in _CAUSED_BY.finditer(text):
        cls = java_class(m.group(1))
        if cls is not None:
            causes.append(cls)
    return exception, tuple(causes)


def fingerprint(trace: str | None, *, error_state: str | None = None) -> Fingerprint:
    """The fingerprint of one FAILED target's trace.

    ``error_state``: a Confluent Cloud error state (``SYSTEM_ERROR``, ``USER_ACTIONABLE_ERROR``), the root
    cause when the text names no class.
    """
    exception, causes = _parse(trace) if trace else (None, ())
    chain = ((exception,) if exception else ()) + causes
    if causes:
        root = causes[-1]
    elif exception is not None:
        root = exception  # no cause: the exception is its own root cause
    elif error_state in CLOUD_ERROR_STATES:
        root = error_state
    else:
        root = UNKNOWN
    return Fingerprint(exception or UNKNOWN, root, chain)
