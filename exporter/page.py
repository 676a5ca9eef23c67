"""The status page's building block: a section is a function of the view that returns HTML (or "" to be left
out). Every section the page shows is listed once, in page order, in ``exporter.features.PAGE_SECTIONS``."""

from __future__ import annotations

from collections.abc import Callable

from exporter.store import View

PageSection = Callable[[View], str]
