"""Headless Chromium (Debian's ``chromium``) for the page tests: the DOM after scripts ran,
and a screenshot checked for being a real page rather than a blank or broken one."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=15000", "--run-all-compositor-stages-before-draw",
]  # fmt: skip


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed: run 'make test' (it installs Debian's chromium)")
    return exe


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="fw-chromium-") as profile:
        return subprocess.run(
            [chromium(), *_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def dom(url: str) -> str:
    """The page's DOM after its scripts ran."""
    p = _run(["--dump-dom", url])
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def screenshot(url: str, out: Path, size: tuple[int, int] = (1300, 2400)) -> np.ndarray:
    """Render ``url`` to ``out`` (PNG) and return the pixels (H x W x channels)."""
    import matplotlib.image

    p = _run([f"--screenshot={out}", f"--window-size={size[0]},{size[1]}", url])
    assert out.exists() and out.stat().st_size > 0, p.stderr[-2000:]
    return matplotlib.image.imread(out)


def assert_not_blank(pixels: np.ndarray, min_ink: float = 0.03, min_colours: int = 40) -> None:
    """A rendered report has ink (non-white pixels) and colour (plots), not one flat fill."""
    rgb = (pixels[..., :3] * 255).astype(np.uint8)
    ink = float((rgb.min(axis=2) < 240).mean())
    colours = len(np.unique(rgb.reshape(-1, 3)[::7], axis=0))
    assert ink >= min_ink, f"page looks blank: {ink:.1%} non-white pixels"
    assert colours >= min_colours, f"page looks broken: {colours} distinct colours"
