"""Headless Chromium (Debian's ``chromium``) for the report tests: screenshot and rendered DOM."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(args: list[str], profile: Path, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    binary = chromium_binary()
    assert binary, "chromium is not installed"
    return subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=True,
    )


def screenshot(page: Path, out: Path, profile: Path, *, width: int = 1200, height: int = 3000) -> Path:
    _run([f"--screenshot={out}", f"--window-size={width},{height}", page.resolve().as_uri()], profile)
    return out


def dump_dom(page: Path, profile: Path) -> str:
    return _run(["--dump-dom", page.resolve().as_uri()], profile).stdout
