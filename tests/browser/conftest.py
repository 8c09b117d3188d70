"""Options of the browser check: where the built HTML is, and where screenshots go."""
import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def pytest_addoption(parser):
    parser.addoption("--book-html", default=None, help="folder of the built HTML book (e.g. _build/html)")
    parser.addoption("--screenshots", default="_build/screenshots", help="where to keep one screenshot per chapter")
    parser.addoption("--slides-dir", default=None, help="folder of the lecture decks (`make slides`: _build/slides)")


@pytest.fixture(scope="session")
def html_dir(request) -> Path:
    given = request.config.getoption("--book-html")
    path = Path(given or "_build/html")
    if not (path / "index.html").is_file():
        message = f"no built book at {path} (run `make book`, or `make test`, which builds one)"
        if given:  # asked explicitly: a missing build is a failure, not a skip
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def screenshots_dir(request) -> Path:
    path = Path(request.config.getoption("--screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def server(html_dir):
    """Serve the book on a free localhost port (as a reader's browser would load it)."""
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        pytest.fail("Chromium is needed for the browser check of the built book. Install it with "
                    "`sudo apt-get install chromium` (Debian/Ubuntu) or `brew install --cask chromium` (macOS).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def slides_dir(request) -> Path:
    given = request.config.getoption("--slides-dir")
    path = Path(given or "_build/slides")
    if not (path / "index.html").is_file():
        message = f"no lecture decks at {path} (run `make slides`, or `make test`, which builds them)"
        if given:  # asked explicitly: missing decks are a failure, not a skip
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def slides_server(slides_dir):
    """Serve the decks on a free localhost port, as a lecture laptop without a network would."""
    handler = functools.partial(_QuietHandler, directory=str(slides_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
