"""Playwright (Python) driving Debian's Chromium against pytest-django's live server."""

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make
# between page actions are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("TIKTING_CHROMIUM", "/usr/bin/chromium")


def _serial_live_server_on_sqlite() -> None:
    """On SQLite in memory the live server's threads share the tests' one connection (Django's
    LiveServerThread), so two requests at once (a page's own htmx request, the bell's count, next
    to a click's POST) used one connection from two threads: one POST in several went unanswered.
    There the live server answers one request at a time (and closes each connection, as Django's
    server does when it is not threaded); PostgreSQL keeps the threaded server.

    Serving one connection at a time, the server would wait on a connection Chromium opened ahead
    of need (a preconnect) and sent nothing on, while the click's POST waited on another: each
    connection is given 2 s to send its request, then closed (an idle connection, not a request)."""
    if "sqlite" not in os.environ.get("DATABASE_URL", "sqlite"):
        return
    from django.core.servers.basehttp import WSGIServer
    from django.test import testcases

    class SerialRequestHandler(testcases.QuietWSGIRequestHandler):
        timeout = 2  # seconds for a connection to send its request (socket timeout)

    class SerialWSGIServer(WSGIServer):
        def __init__(
            self, address: Any, _handler: Any, *args: Any, connections_override: Any = None, **kwargs: Any
        ) -> None:
            super().__init__(address, SerialRequestHandler, *args, **kwargs)
            self.connections_override = connections_override

    testcases.LiveServerThread.server_class = SerialWSGIServer


_serial_live_server_on_sqlite()
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-results"

# Content-Security-Policy violations (tikting/core/csp.py) fail the test like JavaScript errors:
# Chromium reports each on the console ("Refused to execute inline script because it violates …"),
# and the page's `securitypolicyviolation` event is logged too, in case a message is worded otherwise.
# Init scripts are injected by the browser itself, outside the page's policy.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline code"}`
    + ` at ${event.sourceFile || document.location.href}:${event.lineNumber}`);
});
"""


def watch(page: Any, errors: list[str]) -> None:
    """Collect the page's JavaScript errors and CSP violations into `errors`."""
    page.add_init_script(CSP_LISTENER)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def on_console(message: Any) -> None:
        text = message.text
        csp = "Content Security Policy" in text or text.startswith("CSP violation")
        if message.type == "error" and csp:
            errors.append(text)

    page.on("console", on_console)


@pytest.fixture(scope="session", autouse=True)
def _expect_timeout() -> None:
    """Assertions wait as long as actions do (10 s, not Playwright's 5 s for `expect`): on a loaded
    2-core machine a live server's answer can take longer than 5 s, which is slowness, not a bug."""
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium (`.ci/run` does).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    watch(page, errors)
    yield page
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not errors, f"JavaScript errors or CSP violations on the page: {errors}"


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def sign_in(page, live_server):
    def _sign_in(user, password):
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login/" not in url)
        return page

    return _sign_in


def log_in(page, base_url, user, password):
    """Sign `user` in on `page` through the login form."""
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)
    return page


@pytest.fixture
def new_page(browser, request):
    """Pages in their own browser contexts (one per person), failing the test on JavaScript errors."""
    opened = []

    def _new_page():
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        context.set_default_timeout(10_000)
        page = context.new_page()
        errors: list[str] = []
        watch(page, errors)
        opened.append((context, page, errors))
        return page

    yield _new_page
    failed = request.node.rep_call.failed if hasattr(request.node, "rep_call") else False
    all_errors = []
    for n, (context, page, errors) in enumerate(opened):
        if failed:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{n}.png"), full_page=True)
        context.close()
        all_errors.extend(errors)
    assert not all_errors, f"JavaScript errors or CSP violations on the page: {all_errors}"
