"""Headless Chromium (the system's, e.g. Debian's `chromium`) driven by Playwright.

Used for the README screenshot, the bench, and the browser tests. Playwright's own browser
downloads are never used: the page runs in the installed chromium binary, with a fresh profile
and every background service (updates, sync, QUIC, first-run) switched off.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path() -> str | None:
    """$INTERP_CHROMIUM, else the first chromium/chrome on PATH, else None."""
    explicit = os.environ.get("INTERP_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return next((found for name in _CANDIDATES if (found := shutil.which(name))), None)


def unavailable_reason() -> str | None:
    """Why a headless browser cannot be started here, or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[dev]')"
    if chromium_path() is None:
        return "no chromium binary found (apt-get install chromium, or set INTERP_CHROMIUM)"
    return None


@contextmanager
def browser_context(width: int = 1400, height: int = 900, scale: float = 1.0) -> Iterator[object]:
    """A Playwright browser context in headless chromium with a throwaway profile."""
    from playwright.sync_api import sync_playwright

    from interp.errors import InterpError

    reason = unavailable_reason()
    if reason:
        raise InterpError(f"cannot start a headless browser: {reason}")
    with tempfile.TemporaryDirectory(prefix="interp-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=chromium_path(), headless=True, args=list(CHROMIUM_FLAGS),
            viewport={"width": width, "height": height}, device_scale_factor=scale,
        )
        try:
            yield context
        finally:
            context.close()


def open_view(context, path: str | os.PathLike, fragment: str = "", *, watch: Callable[[object], None] | None = None,
              timeout_ms: float = 30_000):
    """A new page showing the viewer file `path` (with an optional #fragment), once it has rendered.

    `watch(page)` runs before the page loads, to attach listeners (console, requests).
    """
    page = context.new_page()
    if watch is not None:
        watch(page)
    url = Path(path).resolve().as_uri() + (f"#{fragment}" if fragment else "")
    page.goto(url)
    page.wait_for_function("window.__interpViewReady !== undefined", timeout=timeout_ms)
    return page
