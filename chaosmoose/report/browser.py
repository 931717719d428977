"""Headless Chromium for reports: a PDF of the HTML page (``chaosmoose report --pdf``) and
PNG screenshots (:func:`screenshot`, for tests and the README's pictures).

The browser is Chromium from Debian's packages: the first of ``chromium``,
``chromium-browser``, ``google-chrome`` on ``PATH``; else the lab's image
``mooseng-browser:latest`` (``make browser-image``, images/browser/Dockerfile) run with
``docker run --rm`` with no network, the page's folder mounted read-only and the output's
folder writable, as the calling user. Neither: :class:`BrowserMissing`, whose message says
how to get one. The page is self-contained, so the browser never needs the network.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__: list[str] = []  # not an activity module

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
IMAGE = "mooseng-browser:latest"
TIMEOUT_S = 120.0
HOW_TO_GET = ("install Chromium from Debian's packages (`sudo apt-get install chromium`) or "
              f"build the lab's browser image (`make browser-image`, {IMAGE})")

Flags = Callable[[str], list[str]]  # output path (as the browser sees it) -> its flags


class BrowserError(Exception):
    """The browser could not make the file (the message says why)."""


class BrowserMissing(BrowserError):
    """No headless browser on PATH and no browser image."""


@dataclass(frozen=True)
class Browser:
    """A headless Chromium: an executable on this host, or the image that has one."""

    command: str          # path of the executable, or the image's name
    in_docker: bool = False

    def describe(self) -> str:
        """Which browser this is, for messages."""
        return f"{self.command} in Docker" if self.in_docker else self.command


def local_browser() -> str | None:
    """The path of the first Chromium on PATH, None when there is none."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def image_present(image: str = IMAGE, timeout: float = 30.0) -> bool:
    """Whether the Docker CLI is on PATH, reaches a daemon and has ``image``."""
    docker = shutil.which("docker")
    if not docker:
        return False
    try:
        done = subprocess.run([docker, "image", "inspect", "--format", "{{.Id}}", image],
                              capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def find_browser(image_check: Callable[[str], bool] | None = None,
                 image: str = IMAGE) -> Browser:
    """Chromium on PATH, else the browser image (``image_check``, default
    :func:`image_present`, says whether Docker has it); raise :class:`BrowserMissing` if
    neither."""
    path = local_browser()
    if path:
        return Browser(path)
    if (image_check or image_present)(image):
        return Browser(image, in_docker=True)
    raise BrowserMissing(f"no headless browser: none of {', '.join(BROWSERS)} is on PATH and "
                         f"Docker has no image {image}; {HOW_TO_GET}")


def common_flags(profile: str) -> list[str]:
    """Flags of every run: headless, no sandbox (containers, root), a throwaway profile,
    nothing that would reach the network on its own."""
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update",
            "--hide-scrollbars", f"--user-data-dir={profile}"]


def pdf_flags(out: str) -> list[str]:
    """Print to ``out`` without the browser's header and footer (old and new flag)."""
    return [f"--print-to-pdf={out}", "--no-pdf-header-footer", "--print-to-pdf-no-header"]


def print_pdf(html_path: Path, pdf_path: Path, browser: Browser | None = None,
              timeout: float = TIMEOUT_S) -> Browser:
    """Print ``html_path`` to ``pdf_path``; return the browser used."""
    return _render(browser or find_browser(), Path(html_path), Path(pdf_path), pdf_flags,
                   timeout)


def screenshot(html_path: Path, png_path: Path, width: int = 1200, height: int = 1600,
               browser: Browser | None = None, timeout: float = TIMEOUT_S) -> Browser:
    """A PNG of the top ``width`` x ``height`` pixels of ``html_path``; the browser used."""
    def flags(out: str) -> list[str]:
        return [f"--screenshot={out}", f"--window-size={int(width)},{int(height)}"]

    return _render(browser or find_browser(), Path(html_path), Path(png_path), flags, timeout)


def _render(browser: Browser, html_path: Path, out_path: Path, flags: Flags,
            timeout: float) -> Browser:
    if not html_path.is_file():
        raise BrowserError(f"{html_path}: no such page to render")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.unlink(missing_ok=True)  # a stale file must not pass for a new one
    if browser.in_docker:
        code, errors = _run_docker(browser.command, html_path, out_path, flags, timeout)
    else:
        code, errors = _run_local(browser.command, html_path, out_path, flags, timeout)
    if not out_path.is_file() or out_path.stat().st_size == 0:
        tail = " / ".join(line for line in errors.strip().splitlines()[-3:] if line.strip())
        raise BrowserError(f"{browser.describe()} wrote no {out_path} (exit {code})"
                           + (f": {tail}" if tail else ""))
    return browser


def _run_local(executable: str, html_path: Path, out_path: Path, flags: Flags,
               timeout: float) -> tuple[int, str]:
    """Run Chromium here; (exit code, stderr)."""
    with tempfile.TemporaryDirectory(prefix="chaosmoose-browser-") as profile:
        command = [executable, *common_flags(profile), *flags(str(out_path.resolve())),
                   html_path.resolve().as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise BrowserError(f"{executable} did not finish within {timeout:g} s") from None
        except OSError as exc:
            raise BrowserError(f"{executable} could not start: {exc}") from None
    return done.returncode, done.stderr or ""


def _run_docker(image: str, html_path: Path, out_path: Path, flags: Flags,
                timeout: float) -> tuple[int, str]:
    """Run Chromium in ``image`` (``docker run --rm``, no network, as the calling user, the
    page's folder read-only and the output's folder writable); (exit code, its stderr)."""
    page_dir, out_dir = html_path.resolve().parent, out_path.resolve().parent
    if page_dir == out_dir:
        mounts = ["-v", f"{page_dir}:/r"]
        page, out = f"/r/{html_path.name}", f"/r/{out_path.name}"
    else:
        mounts = ["-v", f"{page_dir}:/in:ro", "-v", f"{out_dir}:/out"]
        page, out = f"/in/{html_path.name}", f"/out/{out_path.name}"
    name = f"chaosmoose-browser-{uuid.uuid4().hex[:12]}"
    command = ["docker", "run", "--rm", "--name", name, "--network", "none",
               "--user", f"{os.getuid()}:{os.getgid()}", "-e", "HOME=/tmp",
               "--label", "org.mooseng.project=mooseng", *mounts, image,
               "chromium", *common_flags("/tmp/chromium-profile"), *flags(out),
               f"file://{page}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):  # best effort
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=30,
                           check=False)
        raise BrowserError(f"{image}: Chromium did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise BrowserError(f"docker could not start: {exc}") from None
    return done.returncode, done.stderr or ""
