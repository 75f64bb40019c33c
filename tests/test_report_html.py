"""The HTML report opened in headless Chromium: the leaderboard rows are there and sort, a video plays, the
screenshot is not empty, and markup injected through a prompt or a category stays text."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from helpers import make_suite

CHROMIUM = "/usr/bin/chromium"
SMALL = ["--set", "num_frames=6", "--set", "height=64", "--set", "width=64"]
INJECTED = "<script>document.title='pwned';document.body.setAttribute('data-pwned','1')</script> a cat"
HOLD_SECONDS = 2.0  # real time the page stays loading after its script ran, so the videos play before the dump


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; installed with apt-get under CI (as root) when missing, else the test is skipped."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if not os.environ.get("CI"):
        pytest.skip(f"{CHROMIUM} is missing: install Debian's 'chromium' package (apt-get install -y chromium); "
                    "set CI=1 to let the tests install it")
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip(f"{CHROMIUM} is missing and cannot be installed here (needs apt-get as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "chromium"], ["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        subprocess.run(cmd, env=env, capture_output=True, timeout=900)
        if Path(CHROMIUM).exists():
            return CHROMIUM
    pytest.skip(f"apt-get could not install chromium ({CHROMIUM} still missing)")


class _SlowFinish(http.server.SimpleHTTPRequestHandler):
    """Serves files; ``report.html`` is sent up to the end of its script, then held open ``HOLD_SECONDS`` before
    the rest, so Chromium's --dump-dom / --screenshot (taken at the load event) see the page after real playback."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        if not self.path.split("?")[0].split("#")[0].endswith("report.html"):
            return super().do_GET()
        data = Path(self.translate_path(self.path)).read_bytes()
        cut = data.rindex(b"</script>") + len(b"</script>")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[:cut])
        self.wfile.flush()
        time.sleep(HOLD_SECONDS)
        self.wfile.write(data[cut:])


@pytest.fixture
def serve(tmp_path):
    servers = []

    def start(root: Path) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_SlowFinish, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()


def headless(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--autoplay-policy=no-user-gesture-required", "--window-size=1280,2000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


def test_report_in_headless_chromium(cli, chromium, serve, tmp_path):
    manifest = make_suite(tmp_path / "suite", n=2)
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    lines[1]["prompt"] = INJECTED
    lines[1]["category"] = "<img src=x onerror=\"document.body.dataset.pwned='2'\">"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    runs = tmp_path / "runs"
    for model, extra in (("static", []), ("camera", ["--set", "motion=zoom_in", "--set", "speed=0.5"])):
        code, _, err = cli("--no-progress", "run", "--model", model, "--suite", manifest, "--out", runs / model,
                           "--metrics", "temporal_flickering,frame0_fidelity", *SMALL, *extra)
        assert code == 0, err
    code, out, err = cli("report", runs / "static", runs / "camera", "-o", tmp_path / "site" / "report.html", "--published")
    assert code == 0, err
    page = (tmp_path / "site" / "report.html").read_text()
    assert "&lt;script&gt;document.title" in page and "<script>document.title" not in page
    assert (tmp_path / "site" / "report_files" / "plots" / "categories.svg").stat().st_size > 0

    base = serve(tmp_path) + "/site/report.html"
    result = headless(chromium, tmp_path / "profile", "--dump-dom", base + "#sort=temporal_flickering")
    dom = result.stdout
    assert "<table id=\"leaderboard\"" in dom, result.stderr[-2000:]
    board = dom.split('<table id="leaderboard"')[1].split("</table>")[0]
    assert re.findall(r'<tr data-model="([^"]*)"', board) == ["camera", "static"]  # sorted: camera flickers more
    assert 'aria-sort="ascending"' in board
    assert re.search(r'<video[^>]*data-played="1"', dom), "no video played"
    assert len(re.findall(r"<section class=\"case\"", dom)) == 2
    published = dom.split('<table id="published"')[1].split("</table>")[0]
    assert "ConsistI2V" in published and "DynamiCrafter-1024" in published
    # the injected markup stayed text: the title and body are untouched, the prompt reads as written
    assert "<title>i2vbench report: static, camera</title>" in dom
    assert "pwned" not in re.search(r"<body[^>]*>", dom).group(0)
    assert "&lt;script&gt;document.title='pwned'" in dom

    mangled = headless(chromium, tmp_path / "profile", "--dump-dom", base + "#sort=%").stdout
    assert re.search(r'<video[^>]*data-played="1"', mangled), "a mangled link stopped the page's scripts"

    shot = tmp_path / "shot.png"
    headless(chromium, tmp_path / "profile", f"--screenshot={shot}", base)
    assert shot.is_file() and shot.stat().st_size > 20_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
