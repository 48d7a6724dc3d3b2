"""Browser tests: the real pages in headless Chromium (Debian's `chromium-headless-shell`, driven by Playwright).

The app of the ordinary `app` fixture (same test database, same factories) is served by
werkzeug in a thread on 127.0.0.1 and a free port. The browser is Debian's headless shell,
/usr/bin/chromium-headless-shell (`make test` and `.ci/run` install it; `GI_CHROMIUM` points elsewhere,
e.g. at /usr/bin/chromium), never a downloaded build. The headless shell is the same Chromium (same
version, Blink and V8, from the same Debian source) without the desktop browser around it — what Playwright
itself runs for headless tests — and takes about half the time per page of the full browser's headless mode.
Every page may reach only that server: any other request is aborted and fails the test, so a
page that needed a CDN, a web font or map tiles would be caught.

Under CI=true a missing chromium stops the run (UsageError); elsewhere the browser tests fail
with a message saying `make test` installs it. They are never skipped.
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from tests.factories import Actor

CHROMIUM = os.environ.get("GI_CHROMIUM", "/usr/bin/chromium-headless-shell")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PASSWORD = "password-123456"  # the factories' password
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True, "has_touch": True,
         "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "Chrome/120.0 Mobile Safari/537.36"}
MISSING = (f"Debian's chromium headless shell is not installed at {CHROMIUM}: `make test` installs it "
           "(or run `sudo apt-get install chromium-headless-shell`, or set GI_CHROMIUM)")


def _chromium_present() -> bool:
    return os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)


def pytest_configure(config):
    if IN_CI and not _chromium_present():
        raise pytest.UsageError(f"CI=true but {MISSING}")


def chromium_args(*extra: str) -> list[str]:
    args = ["--disable-background-networking", "--disable-component-update", "--disable-default-apps",
            "--disable-sync", "--no-first-run", "--disable-extensions", "--disable-dev-shm-usage", *extra]
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox (CI runs as root)
    return args


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session; each test gets its own context (cookies, storage)."""
    if not _chromium_present():
        pytest.fail(MISSING, pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright for Python is missing: `make test` installs the dev extras (pip install -e '.[dev]')",
                    pytrace=False)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args())
        yield browser
        browser.close()


class LiveServer:
    """The test app served by werkzeug on 127.0.0.1 in a thread, for the browser."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        # serve_forever looks for shutdown() every poll_interval (0.5 s by default): every test waited for it.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       name="live-server", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=30)


@pytest.fixture
def live_server(app):
    server = LiveServer(app)
    yield server
    server.stop()


@dataclass
class Browsing:
    """Open pages of one browser context (desktop or phone) against the live server."""

    context: object
    base: str
    foreign: list

    def new_page(self):
        page = self.context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())  # data-confirm questions: answer yes
        return page

    def login(self, actor: Actor, page=None, password: str = PASSWORD):
        page = page or self.new_page()
        page.goto(self.base + "/login")
        page.fill("input[name=username]", actor.principal.username)
        page.fill("input[name=password]", password)
        page.click("#login-form button[type=submit]")
        page.wait_for_url(re.compile(r"/app$"))
        return page


def _browsing(browser, live_server, **options):
    context = browser.new_context(base_url=live_server.url, locale="zh-CN", accept_downloads=True, **options)
    foreign: list[str] = []

    def only_the_live_server(route):
        if urlsplit(route.request.url).netloc == urlsplit(live_server.url).netloc:
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_live_server)
    return Browsing(context, live_server.url, foreign)


@pytest.fixture
def desktop(browser, live_server):
    b = _browsing(browser, live_server, viewport={"width": 1280, "height": 900})
    yield b
    b.context.close()
    assert b.foreign == [], f"pages asked for something outside the service: {b.foreign}"


@pytest.fixture
def phone(browser, live_server):
    b = _browsing(browser, live_server, **PHONE)
    yield b
    b.context.close()
    assert b.foreign == [], f"pages asked for something outside the service: {b.foreign}"


def follow(page, link) -> None:
    """Click a link (a selector or a locator) and return once the page it leads to has loaded.

    A bare click returns as soon as the click is dispatched; a read right after it (a `count()`, or an element
    both pages have) could otherwise land on the page being left."""
    with page.expect_navigation():
        if isinstance(link, str):
            page.click(link)
        else:
            link.click()


def no_horizontal_scroll(page) -> bool:
    """Does the page fit the phone's width (tables may scroll inside their own box)?

    Measured once the current document has loaded: right after a click the old document may be half torn down."""
    page.wait_for_load_state("load")
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def fresh(session) -> None:
    """Read what the server committed: end the test session's snapshot and forget the rows it loaded."""
    session.rollback()
    session.expire_all()


@pytest.fixture
def camera_phone(browser, live_server):
    """Open a phone whose camera films a .y4m video: `camera_phone(video, geolocation=(lat, lon))`.

    The video is a launch flag of Chromium's fake capture device, so each call starts its own headless
    Chromium (from the session's Playwright) with the camera and location allowed for the live server only.
    """
    opened = []

    def open_with(video, *, geolocation: tuple[float, float] | None = None) -> Browsing:
        camera = browser.browser_type.launch(
            executable_path=CHROMIUM, headless=True,
            args=chromium_args("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                               f"--use-file-for-fake-video-capture={video}"))
        options = dict(PHONE)
        if geolocation is not None:
            options.update(geolocation={"latitude": geolocation[0], "longitude": geolocation[1], "accuracy": 8},
                           permissions=["geolocation", "camera"])
        b = _browsing(camera, live_server, **options)
        opened.append((camera, b))
        return b

    yield open_with
    for camera, b in opened:
        b.context.close()
        camera.close()
        assert b.foreign == [], f"pages asked for something outside the service: {b.foreign}"


def with_location(b: Browsing, lat: float, lon: float) -> Browsing:
    """Let the pages of `b` read the phone's location, fixed at (lat, lon)."""
    b.context.grant_permissions(["geolocation"], origin=b.base)
    b.context.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": 8})
    return b
