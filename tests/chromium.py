"""Debian's chromium driven by Playwright, for the browser tests of the live pages.

Launched as tests/diagnostics/test_live_browser.py launches it (executable /usr/bin/chromium:
browsers cannot be downloaded here). Playwright's sync API runs an event loop on the test's
thread, so ORM calls made meanwhile need DJANGO_ALLOW_ASYNC_UNSAFE and their connections
closed after, or the test database cannot be flushed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connections

from tests.diagnostics.test_live_browser import CHROMIUM, CHROMIUM_ARGS


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched chromium, closed (and the ORM's extra connections with it) on the way out."""
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright_api = pytest.importorskip("playwright.sync_api")
    try:
        with playwright_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
                connections.close_all()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before
