"""Browser fixtures: Debian's chromium driven by Playwright, a live OpenAgg server, and a
host page (on another origin) that embeds the widget and records its postMessage events.

Screenshots go to ``$OPENAGG_ARTIFACTS`` (default ``tests/browser/artifacts``)."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.conftest import VENV_BIN, LiveServer, free_port, openagg_env, start_live_server
from tests.support import skip_or_fail, wait_healthy

CHROMIUM = os.environ.get("OPENAGG_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("OPENAGG_ARTIFACTS", Path(__file__).parent / "artifacts"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The app's page: embeds the widget URL given in its query string and keeps every
# message from the widget, in order.
HOST_PAGE = b"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Host app</title>
<style>body{margin:0;font:14px sans-serif} iframe{border:0;width:100%;height:720px}</style>
</head><body><iframe id="widget" title="Connect"></iframe>
<script>
window.__events = [];
const frame = document.getElementById("widget");
window.addEventListener("message", (e) => {
  if (e.source === frame.contentWindow) window.__events.push(e.data);
});
frame.src = new URLSearchParams(location.search).get("widget");
</script></body></html>"""


class _HostHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(HOST_PAGE)))
        self.end_headers()
        self.wfile.write(HOST_PAGE)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def host_origin() -> Iterator[str]:
    """The app's origin: a real server on another port than OpenAgg's (so, cross-origin)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HostHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        skip_or_fail(f"chromium not found at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed")
    with sync_playwright() as p:
        # Playwright gives every launch a fresh temporary profile (user-data-dir).
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    s = start_live_server(
        tmp_path_factory.mktemp("widget"),
        OPENAGG_WIDGET_POLL_INTERVAL_MS="100",
        OPENAGG_CONNECTOR_SANDBOX_LATENCY_MS="0",
    )
    yield s
    s.stop()


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url,
        auth=(server.client_id, server.api_key),
        headers={"Accept": "application/vnd.mx.api.v1+json"},
        timeout=10,
    ) as c:
        yield c


def new_user(api: httpx.Client) -> str:
    r = api.post("/users", json={"user": {}})
    assert r.status_code == 200, r.text
    return str(r.json()["user"]["guid"])


def widget_url(api: httpx.Client, user: str, **options: Any) -> str:
    r = api.post(
        f"/users/{user}/widget_urls",
        json={"widget_url": {"widget_type": "connect_widget", **options}},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["widget_url"]["url"])


# From docs/sandbox.md (MX's v20111101 institution body has no guid).
INSTITUTION_GUIDS = {
    "mxbank": "INS-1572a04c-912b-59bf-5841-332c7dfafaef",
    "sandbox_bank": "INS-0b7e5d2c-6f1a-4c3e-9a8d-5e2f7c1b4a90",
}


def institution(api: httpx.Client, code: str) -> dict[str, Any]:
    r = api.get(f"/institutions/{code}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()["institution"]
    return {**body, "guid": INSTITUTION_GUIDS[code]}


def assert_no_stray_words(frame: Any, where: str) -> None:
    """A null or undefined handed to the DOM shows up as that word on the page."""
    stray = frame.evaluate(
        """() => {
            const walk = document.createTreeWalker(document.querySelector("main"), 4);
            const bad = [];
            while (walk.nextNode()) {
                const text = walk.currentNode.textContent.trim();
                if (text === "null" || text === "undefined") bad.push(text);
            }
            return bad;
        }"""
    )
    assert stray == [], f"stray {stray} on {where}"


@dataclass
class Widget:
    """The widget embedded in the host page, with the events it has sent."""

    page: Any
    user_guid: str
    shots: Path
    count: int = 0
    last_view: int = 0
    iframe: str = "#widget"

    @property
    def frame(self) -> Any:
        return self.page.frame_locator(self.iframe)

    def content(self) -> Any:
        """The widget's frame (a Playwright ``Frame``)."""
        return self.page.locator(self.iframe).element_handle().content_frame()

    def screen(self, name: str, timeout: float = 15_000) -> Any:
        """Wait for the next showing of a screen, then save a screenshot of it."""
        view = (
            self.content()
            .wait_for_function(
                """([name, last]) => {
                const main = document.querySelector("main");
                const view = Number(main && main.dataset.view || 0);
                return main && main.dataset.screen === name && view > last ? view : 0;
            }""",
                arg=[name, self.last_view],
                timeout=timeout,
            )
            .json_value()
        )
        self.last_view = int(view)
        assert_no_stray_words(self.content(), f"the {name} screen")
        self.count += 1
        self.page.screenshot(path=str(self.shots / f"{self.count:02d}-{name}.png"))
        return self.frame.locator("main")

    def received(self) -> list[dict[str, Any]]:
        """The events the host has received so far."""
        got: list[dict[str, Any]] = self.page.evaluate("window.__events")
        return got

    def events(self, at_least: int = 0, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.received()
            if len(got) >= at_least or time.monotonic() > deadline:
                return got
            self.page.wait_for_timeout(50)

    @property
    def session_guid(self) -> str:
        loaded = next(e for e in self.events(2) if e["type"] == "mx/connect/loaded")
        guid = loaded["metadata"]["session_guid"]
        assert isinstance(guid, str) and guid.startswith("WSN-")
        return guid

    def event(self, event_name: str, /, **fields: Any) -> dict[str, Any]:
        """An expected Connect event: the session fields plus ``fields``."""
        meta = {"user_guid": self.user_guid, "session_guid": self.session_guid, **fields}
        return {"mx": True, "type": f"mx/connect/{event_name}", "metadata": meta}

    def step(self, previous: str, current: str) -> dict[str, Any]:
        return self.event("stepChange", previous=previous, current=current)

    def assert_events(self, expected: list[dict[str, Any]]) -> None:
        got = self.events(len(expected))
        assert got == expected


def choose(w: Widget, name: str) -> None:
    """On the search screen, pick an institution by name."""
    w.frame.locator("#oa-search").fill(name)
    w.frame.locator(".oa-institution", has_text=name).first.click()


def sign_in(w: Widget, username: str, password: str) -> None:
    w.screen("enterCreds")
    w.frame.get_by_label("Username").fill(username)
    w.frame.get_by_label("Password").fill(password)
    w.frame.get_by_role("button", name="Connect").click()


def artifacts_dir(request: pytest.FixtureRequest) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    path = ARTIFACTS / request.node.module.__name__.rsplit(".", 1)[-1] / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 480, "height": 760})
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    yield pg
    context.close()


@pytest.fixture
def open_widget(
    page: Any, api: httpx.Client, host_origin: str, request: pytest.FixtureRequest
) -> Any:
    """Embed a new widget URL for ``user`` in the host page (another origin)."""

    def opener(user: str, **options: Any) -> Widget:
        url = widget_url(api, user, **options)
        page.goto(f"{host_origin}/app?{urlencode({'widget': url})}")
        return Widget(page, user, artifacts_dir(request))

    return opener


# --- the widget in a mobile WebView ---------------------------------------------------------
#
# With ``is_mobile_webview`` the widget is the top-level page and tells the app about each
# event by navigating to ``<scheme>://<namespace>/<event>?metadata=<JSON>``; the app's
# WebView (Android ``shouldOverrideUrlLoading``, iOS ``WKNavigationDelegate``) cancels
# these navigations and reads the URL. Chromium hands such a navigation to the operating
# system instead, and by default first asks in a tab-modal "Open xdg-open?" dialog that,
# invisible in headless mode, swallows every later click and key press. So the browser
# below plays the app: its profile lets the widget's origin open the scheme without asking
# (what "Always allow" in that dialog stores), its ``xdg-open`` is a no-op, and every
# navigation is observed in the DevTools Network events (Playwright's "request" event),
# where it ends aborted while the page stays as it was. Chromium hands a navigation to the
# OS only after a recent user gesture (else it logs "Not allowed to launch"); the
# navigation itself, which is what a WebView sees, happens either way.

WEBVIEW_SCHEME = "myapp"


@dataclass
class WebviewWidget(Widget):
    """The widget as a WebView's top-level page; its events are the navigations it made."""

    navigations: list[str] = field(default_factory=list)

    @property
    def frame(self) -> Any:
        return self.page

    def content(self) -> Any:
        return self.page.main_frame

    def received(self) -> list[dict[str, Any]]:
        return [decode_navigation(url) for url in self.navigations]


def decode_navigation(url: str) -> dict[str, Any]:
    """``myapp://connect/loaded?metadata=…`` as the postMessage it stands for."""
    parts = urlsplit(url)
    assert parts.scheme == WEBVIEW_SCHEME, url
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    assert list(query) == ["metadata"] and len(query["metadata"]) == 1, url
    return {
        "mx": True,
        "type": f"mx/{parts.netloc}{parts.path}",
        "metadata": json.loads(query["metadata"][0]),
    }


@pytest.fixture
def open_webview(
    browser: Any, api: httpx.Client, server: LiveServer, tmp_path: Path, request: Any
) -> Iterator[Any]:
    """Open a new ``is_mobile_webview`` widget URL for ``user`` as a top-level page."""
    profile = tmp_path / "profile"
    (profile / "Default").mkdir(parents=True)
    prefs = {
        "protocol_handler": {"allowed_origin_protocol_pairs": {server.url: {WEBVIEW_SCHEME: True}}}
    }
    (profile / "Default" / "Preferences").write_text(json.dumps(prefs))
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "xdg-open").write_text("#!/bin/sh\nexit 0\n")
    (shim / "xdg-open").chmod(0o755)
    context = browser.browser_type.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        args=LAUNCH_ARGS,
        env={**os.environ, "PATH": f"{shim}:{os.environ.get('PATH', '/usr/bin:/bin')}"},
        viewport={"width": 390, "height": 760},
    )
    page = context.pages[0] if context.pages else context.new_page()
    page.set_default_timeout(10_000)

    def opener(user: str, **options: Any) -> WebviewWidget:
        url = widget_url(
            api,
            user,
            is_mobile_webview=True,
            ui_message_webview_url_scheme=WEBVIEW_SCHEME,
            **options,
        )
        w = WebviewWidget(page, user, artifacts_dir(request))
        page.on(
            "request",
            lambda r: (
                w.navigations.append(r.url)
                if r.is_navigation_request() and r.url.startswith(f"{WEBVIEW_SCHEME}:")
                else None
            ),
        )
        # The hand-over never "loads": wait for the screens, not for the load event.
        page.goto(url, wait_until="commit")
        return w

    yield opener
    context.close()


# --- the demo host page -----------------------------------------------------------------


@dataclass
class DemoServer:
    url: str
    client_id: str  # the demo client `openagg serve --demo` created
    api_key: str


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """``openagg serve --demo``, as ``make run`` starts it."""
    tmp = tmp_path_factory.mktemp("demo")
    url = f"http://127.0.0.1:{free_port()}"
    env = openagg_env(
        tmp, OPENAGG_WIDGET_POLL_INTERVAL_MS="100", OPENAGG_CONNECTOR_SANDBOX_LATENCY_MS="0"
    )
    with (tmp / "server.log").open("ab") as log:
        process = subprocess.Popen(
            [str(VENV_BIN / "openagg"), "serve", "--demo", "--port", url.rsplit(":", 1)[1]],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(url, process)
        creds = json.loads((tmp / "data" / "demo-client.json").read_text())
        yield DemoServer(url, creds["client_id"], creds["api_key"])
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class DemoWidget(Widget):
    """The widget in the demo page's iframe; its events are the ones the page lists."""

    iframe: str = "#demo-widget"

    def received(self) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = self.page.evaluate(
            """() => [...document.querySelectorAll("#demo-events li")].map((li) => ({
                mx: true,
                type: li.querySelector("strong").textContent,
                metadata: JSON.parse(li.querySelector("code").textContent),
            }))"""
        )
        return got


# --- the platform's command line, against a live server's database ------------------------


def run_cli(server: LiveServer, *args: str, **env: str) -> str:
    """``openagg <args>`` with the server's database and data dir; its standard output."""
    done = subprocess.run(
        [str(VENV_BIN / "openagg"), *args],
        env={**server.env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def new_operator(server: LiveServer, email: str) -> str:
    """An aggregation engineer (``openagg operators create``); returns their email."""
    run_cli(server, "operators", "create", "--name", "Eve Engineer", "--email", email)
    return email


# The sizes the static pages (home, /docs) are looked at in.
PAGE_SIZES = {"phone": (390, 844), "desktop": (1280, 800)}


@dataclass
class LocalPage:
    """A page of the live server in its own context, with every request it made to
    another origin (a page must load nothing from elsewhere)."""

    context: Any
    page: Any
    elsewhere: list[str]


def open_local_page(browser: Any, server: LiveServer, size: str, scheme: str) -> LocalPage:
    width, height = PAGE_SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    page = context.new_page()
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith(server.url) else elsewhere.append(r.url),
    )
    return LocalPage(context, page, elsewhere)


def assert_fits_in_its_theme(page: Any, scheme: str) -> None:
    """No sideways scroll, and the theme's background for ``scheme``."""
    assert page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    ), "the page scrolls sideways"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == ("rgb(13, 17, 23)" if scheme == "dark" else "rgb(255, 255, 255)")
