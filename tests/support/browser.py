"""Headless Chromium for the browser tests: Debian's chromium driven by Playwright.

``playwright install`` cannot download browsers on these machines, so the tests launch
``/usr/bin/chromium`` with the flags PLATFORM-NOTES records. Without chromium or Playwright the
tests are skipped with the reason, unless ``ENCLAVE_REQUIRE_BROWSER=1`` makes that a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed"
    if not os.access(CHROMIUM, os.X_OK):
        return "Debian's chromium is not installed (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A launched headless Chromium, one per test module."""
    reason = unavailable()
    if reason:
        if os.environ.get("ENCLAVE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"ENCLAVE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as play:
        chromium = play.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()
