"""The report as a person sees it: rendered by headless Chromium, screenshot, console and network watched.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so nothing but the standard library
is needed and no port is opened. The checks — no console error or uncaught exception, no request
leaving the page, the plot and the tables on screen and not blank — are themselves tested on pages
made to fail them.
"""

from __future__ import annotations

import base64
import io
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image

from transferkit.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or BASH is None,
    reason=("bash is missing" if BASH is None else "Chromium is not installed (Debian: apt-get install chromium; "
            "`make test` installs it where it can)") + ", so the report is not checked in a browser",
)  # fmt: skip
# The flags this machine's closed network needs: no background connections, no GPU, no sandbox as root.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--remote-debugging-pipe",
]
WIDTH = 1280
TIMEOUT = 60.0


@dataclass
class Page:
    """What the browser saw of one page."""

    errors: list[str] = field(default_factory=list)  # console errors, uncaught exceptions, failed loads
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    boxes: dict[str, list[float]] = field(default_factory=dict)  # element id -> [x, y, width, height]
    screenshot: Image.Image | None = None


class Browser:
    """One headless Chromium, spoken to over the DevTools pipe."""

    def __init__(self, profile: str) -> None:
        to_chrome_read, self._write = os.pipe()
        self._read, from_chrome_write = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4; bash moves the pipes there (dash
        # takes only one-digit descriptors, and under pytest the pipes' numbers have two).
        a, b = to_chrome_read, from_chrome_write
        script = f'exec "$0" "$@" 3<&{a} 4>&{b} {a}<&- {b}>&-'
        self.process = subprocess.Popen(
            [BASH, "-c", script, CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(to_chrome_read, from_chrome_write),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_read)
        os.close(from_chrome_write)
        self._messages: queue.Queue = queue.Queue()
        self._events: list[dict] = []
        self._next_id = 0
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self) -> None:
        buffer = b""
        while chunk := os.read(self._read, 1 << 16):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for message in messages:
                self._messages.put(json.loads(message))
        self._messages.put(None)  # the browser has gone

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and wait for its reply; events that arrive meanwhile are kept."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._messages.get(timeout=max(0.1, deadline - time.monotonic()))
            if reply is None:
                raise RuntimeError(f"Chromium exited while answering {method}")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_for(self, method: str, session: str) -> None:
        """Wait for an event of ``session``, keeping the others."""
        deadline = time.monotonic() + TIMEOUT
        while not any(e.get("method") == method and e.get("sessionId") == session for e in self._events):
            event = self._messages.get(timeout=max(0.1, deadline - time.monotonic()))
            if event is None:
                raise RuntimeError(f"Chromium exited before {method}")
            self._events.append(event)

    def open(self, url: str, ids: tuple[str, ...] = ()) -> Page:
        """Load ``url`` in a new tab as wide as a laptop screen and as tall as the page; what it saw."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        try:
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.call(f"{domain}.enable", session=session)
            metrics = {"width": WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False}
            self.call("Emulation.setDeviceMetricsOverride", metrics, session)
            self.call("Page.navigate", {"url": url}, session)
            self.wait_for("Page.loadEventFired", session)
            expression = (
                "JSON.stringify({height: document.documentElement.scrollHeight, boxes: Object.fromEntries("
                f"{json.dumps(list(ids))}.map(id => document.getElementById(id)).filter(e => e)"
                ".map(e => { const r = e.getBoundingClientRect(); return [e.id, [r.x, r.y, r.width, r.height]]; }))})"
            )
            found = json.loads(self.call("Runtime.evaluate", {"expression": expression}, session)["result"]["value"])
            metrics["height"] = int(min(max(found["height"], 100), 12000))
            self.call("Emulation.setDeviceMetricsOverride", metrics, session)
            shot = self.call("Page.captureScreenshot", {"format": "png"}, session)["data"]
            self.call("Runtime.evaluate", {"expression": "1"}, session)  # let late console events arrive
        finally:
            self.call("Target.closeTarget", {"targetId": target})
        page = Page(boxes=found["boxes"], screenshot=Image.open(io.BytesIO(base64.b64decode(shot))).convert("RGB"))
        for event in (e for e in self._events if e.get("sessionId") == session):
            params = event.get("params", {})
            if event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                page.errors.append(
                    "console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                )
            elif event["method"] == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                page.errors.append("exception: " + details.get("exception", {}).get("description", details["text"]))
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                page.errors.append("log: " + params["entry"]["text"])
            elif event["method"] == "Network.requestWillBeSent":
                page.requests.append(params["request"]["url"])
        return page

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, queue.Empty, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._write)


def ink(image: Image.Image, box: list[float]) -> float:
    """Share of the pixels in ``box`` that differ clearly from the box's most common colour."""
    x, y, width, height = (int(round(v)) for v in box)
    pixels = np.asarray(image.crop((x, y, x + width, y + height))).reshape(-1, 3).astype(int)  # (N, 3)
    if len(pixels) == 0:
        return 0.0
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    return float((np.abs(pixels - background).max(axis=1) > 40).mean())


def assert_shown(page: Page, element: str, min_ink: float = 0.02, min_size: tuple[int, int] = (200, 60)) -> None:
    """``element`` is on the page, large enough, inside the screenshot, and not blank."""
    assert element in page.boxes, f"#{element} is not on the page"
    x, y, width, height = page.boxes[element]
    assert width >= min_size[0] and height >= min_size[1], f"#{element} is {width:.0f}x{height:.0f} px"
    assert x >= 0 and y >= 0 and x + width <= page.screenshot.width + 1 and y + height <= page.screenshot.height + 1
    share = ink(page.screenshot, page.boxes[element])
    assert share >= min_ink, f"#{element} looks blank: {share:.3%} of its pixels differ from its background"


def assert_clean(page: Page) -> None:
    """No console errors, no uncaught exceptions, and nothing requested from outside the file."""
    assert page.errors == [], page.errors
    outside = [url for url in page.requests if not url.startswith(("file:", "data:", "about:"))]
    assert outside == [], outside


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    started = Browser(str(tmp_path_factory.mktemp("chromium-profile")))
    yield started
    started.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A report of a real curve run and a real fit run on digits, written by the CLI."""
    root = tmp_path_factory.mktemp("report")
    common = ["--image-size", "32", "--seeds", "2", "--quiet"]
    with pytest.MonkeyPatch.context() as patch:  # the per-test private cache is not set up yet at module scope
        patch.setenv("TRANSFERKIT_CACHE", str(root / "cache"))
        assert main(["curve", "digits", "--labels-per-class", "1,4", "--strategies", "linear-probe,classical",
                     "--out", str(root / "curve"), *common]) == 0  # fmt: skip
        assert main(["fit", "digits", "--labels-per-class", "4", "--baselines", "classical",
                     "--out", str(root / "fit"), *common]) == 0  # fmt: skip
    assert main(["report", str(root / "curve"), str(root / "fit"), "--out", str(root / "report.html")]) == 0
    return root


def test_the_report_renders_cleanly_with_plot_and_tables_visible(browser, report):
    ids = ("plot-1", "table-1", "confusion-1", "examples-1", "plot-2", "table-2", "confusion-2")
    page = browser.open((report / "report.html").as_uri(), ids)
    page.screenshot.save(report / "screenshot.png")  # kept with the test's files for a person to look at
    assert_clean(page)
    for element in ids:
        assert_shown(page, element, min_ink=0.05 if element.startswith("plot") else 0.02)
    assert page.boxes["plot-1"][1] < page.boxes["table-1"][1]  # the curve comes before its table
    # the plot is a drawing in colour, not just text: transfer's line and the shaded intervals
    x, y, width, height = (int(v) for v in page.boxes["plot-1"])
    plot = np.asarray(page.screenshot.crop((x, y, x + width, y + height))).astype(int)
    assert (np.ptp(plot, axis=2) > 60).mean() > 0.005


def test_the_report_fit_writes_renders_too(browser, report):
    page = browser.open((report / "fit" / "report.html").as_uri(), ("plot-1", "table-1"))
    assert_clean(page)
    assert_shown(page, "plot-1")
    assert_shown(page, "table-1", min_size=(300, 40))


def test_the_checks_catch_console_errors_exceptions_and_requests(browser, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><head><title>bad</title></head><body><p id="t">text</p>'
        '<script>console.error("deliberate error"); undefinedFunction();</script>'
        '<img src="http://127.0.0.1:9/missing.png" alt="x"></body></html>'
    )
    page = browser.open(bad.as_uri(), ("t",))
    assert any("deliberate error" in e for e in page.errors)
    assert any("undefinedFunction" in e for e in page.errors)
    assert "http://127.0.0.1:9/missing.png" in page.requests
    with pytest.raises(AssertionError):
        assert_clean(page)


def test_the_checks_catch_a_blank_or_missing_plot(browser, tmp_path):
    blank = tmp_path / "blank.html"
    blank.write_text(
        "<!DOCTYPE html><html><head><title>blank</title></head><body>"
        '<div id="plot-1" style="width:700px;height:400px"></div></body></html>'
    )
    page = browser.open(blank.as_uri(), ("plot-1", "table-1"))
    assert_clean(page)  # nothing wrong but emptiness
    assert ink(page.screenshot, page.boxes["plot-1"]) == 0.0
    with pytest.raises(AssertionError, match="looks blank"):
        assert_shown(page, "plot-1")
    with pytest.raises(AssertionError, match="not on the page"):
        assert_shown(page, "table-1")
