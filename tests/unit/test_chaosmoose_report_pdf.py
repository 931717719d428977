"""``chaosmoose report --pdf`` and the headless-browser helper (chaosmoose/report/browser.py):
a fake Chromium on PATH, a fake Docker CLI for the image fallback, and no browser at all."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from chaosmoose import cli
from chaosmoose.report import browser

DATA = Path(__file__).parent / "data" / "run-chunkserver-loss"

# Writes "%PDF" or a PNG header to the file named by --print-to-pdf= / --screenshot=, and
# its arguments to $FAKE_ARGS; with $FAKE_FAIL set it writes nothing and exits 1.
FAKE_CHROMIUM = """#!/bin/sh
printf '%s\\n' "$@" > "$FAKE_ARGS"
if [ -n "$FAKE_FAIL" ]; then echo "[0101/000000:ERROR] cannot open display" >&2; exit 1; fi
for arg in "$@"; do
  case "$arg" in
    --print-to-pdf=*) printf '%%PDF-1.4 fake' > "${arg#--print-to-pdf=}" ;;
    --screenshot=*) printf 'PNG fake' > "${arg#--screenshot=}" ;;
  esac
done
"""


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(DATA, target)
    return target


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH of one empty folder: no Chromium on it."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


@pytest.fixture
def no_browser(empty_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No Chromium on PATH and a Docker without the browser image."""
    monkeypatch.setattr(browser, "image_present", lambda image=browser.IMAGE: False)
    return empty_path


@pytest.fixture
def fake_chromium(no_browser: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake ``chromium`` on PATH; returns the file it writes its arguments to."""
    script = no_browser / "chromium"
    script.write_text(FAKE_CHROMIUM)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    args = tmp_path / "args.txt"
    monkeypatch.setenv("FAKE_ARGS", str(args))
    return args


def test_pdf_without_any_browser_says_how_to_get_one_and_fails(run_dir, no_browser, capsys):
    assert cli.main(["report", "--offline", "--pdf", str(run_dir)]) == 1
    err = capsys.readouterr().err
    assert "chaosmoose report --pdf: no headless browser" in err
    assert "apt-get install chromium" in err and "make browser-image" in err
    assert (run_dir / "report.html").exists() and (run_dir / "report.md").exists()
    assert not (run_dir / "report.pdf").exists()
    with pytest.raises(browser.BrowserMissing):
        browser.find_browser()


def test_pdf_with_chromium_on_path(run_dir, fake_chromium, capsys):
    assert cli.main(["report", "--offline", "--pdf", str(run_dir)]) == 0
    assert (run_dir / "report.pdf").read_bytes().startswith(b"%PDF")
    assert "report.pdf: printed with" in capsys.readouterr().out
    args = fake_chromium.read_text().splitlines()
    assert {"--headless", "--no-sandbox", "--no-pdf-header-footer"} <= set(args)
    assert f"--print-to-pdf={(run_dir / 'report.pdf').resolve()}" in args
    assert args[-1] == (run_dir / "report.html").resolve().as_uri()
    assert any(a.startswith("--user-data-dir=") for a in args)


def test_a_browser_that_fails_is_reported_with_its_error(run_dir, fake_chromium, monkeypatch,
                                                         capsys):
    monkeypatch.setenv("FAKE_FAIL", "1")
    assert cli.main(["report", "--offline", "--pdf", str(run_dir)]) == 1
    err = capsys.readouterr().err
    assert "wrote no" in err and "(exit 1)" in err and "cannot open display" in err


def test_screenshot_sets_the_window_width(tmp_path, fake_chromium):
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><p>hi</p>")
    used = browser.screenshot(page, tmp_path / "shots" / "page.png", width=800, height=600)
    assert not used.in_docker and (tmp_path / "shots" / "page.png").read_bytes() == b"PNG fake"
    args = fake_chromium.read_text().splitlines()
    assert "--window-size=800,600" in args
    with pytest.raises(browser.BrowserError, match="no such page"):
        browser.screenshot(tmp_path / "missing.html", tmp_path / "x.png")


# A fake Docker CLI: `image inspect` knows only the browser image; `run` records its
# arguments in $FAKE_DOCKER_ARGS and writes the PDF where the -v mounts put it on the host.
FAKE_DOCKER = """#!{python}
import json, os, sys
args = sys.argv[1:]
if args[:2] == ["image", "inspect"]:
    sys.exit(0 if args[-1] == "mooseng-browser:latest" else 1)
with open(os.environ["FAKE_DOCKER_ARGS"], "w") as f:
    json.dump(args, f)
mounts = [args[i + 1].split(":") for i, a in enumerate(args) if a == "-v"]
out = next(a.split("=", 1)[1] for a in args if a.startswith("--print-to-pdf="))
for host, inside, *mode in mounts:
    if out.startswith(inside + "/") and mode != ["ro"]:
        with open(os.path.join(host, out[len(inside) + 1:]), "wb") as f:
            f.write(b"%PDF-1.4 docker")
"""


def test_without_chromium_on_path_the_browser_image_prints_without_network(
        tmp_path, empty_path, monkeypatch):
    docker = empty_path / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable))
    docker.chmod(docker.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("FAKE_DOCKER_ARGS", str(tmp_path / "docker-args.json"))
    assert browser.image_present() and not browser.image_present("other:latest")
    found = browser.find_browser()
    assert found == browser.Browser(browser.IMAGE, in_docker=True)
    page = tmp_path / "in" / "report.html"
    page.parent.mkdir()
    page.write_text("<!DOCTYPE html><p>hi</p>")
    pdf = tmp_path / "out" / "report.pdf"
    browser.print_pdf(page, pdf, found)
    assert pdf.read_bytes() == b"%PDF-1.4 docker"
    args = json.loads((tmp_path / "docker-args.json").read_text())
    assert args[:2] == ["run", "--rm"]
    assert args[args.index("--network") + 1] == "none"
    assert args[args.index("--user") + 1] == f"{os.getuid()}:{os.getgid()}"
    assert [args[i + 1] for i, a in enumerate(args) if a == "-v"] == [
        f"{page.parent.resolve()}:/in:ro", f"{pdf.parent.resolve()}:/out"]
    assert args[args.index(browser.IMAGE) + 1] == "chromium"
    assert args[-1] == "file:///in/report.html" and "--print-to-pdf=/out/report.pdf" in args


def test_no_docker_means_no_image(empty_path):
    assert browser.image_present() is False
