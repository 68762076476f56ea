"""Debian's chromium for the browser tests: where it is, how it starts, numbered screenshots."""

import os
import time
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("BILLING_UI_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1440, "height": 1000}
# While the Resume dialog is open: tall enough for its text, table and form on one screenshot.
DIALOG_VIEWPORT = {"width": 1440, "height": 1900}

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"Debian's chromium is not installed ({CHROMIUM} missing): `apt-get install -y chromium` "
           "(scripts/setup does it when run as root)")


class Screenshots:
    """Numbered screenshots of each step, in the order they are taken."""

    def __init__(self, folder: Path):
        self.folder, self.taken, self.started = folder, [], time.monotonic()
        folder.mkdir(parents=True, exist_ok=True)

    def take(self, name: str, target, full_page: bool = False) -> Path:
        """``target``: a page (the window, or the whole page) or a locator (that element, e.g. a dialog)."""
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        extra = {"full_page": True} if full_page else {}
        target.screenshot(path=path, animations="disabled", **extra)
        self.taken.append(path)
        print(f"{time.monotonic() - self.started:6.1f} s  {path}")  # shown by pytest when the test fails
        return path
