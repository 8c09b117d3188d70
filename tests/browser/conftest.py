"""Options of the browser check: where the built HTML and the decks are, and where screenshots go."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from local_browser import CHROMIUM_FLAGS, find_chromium, serve  # scripts/local_browser.py


def pytest_addoption(parser):
    parser.addoption("--book-html", default=None, help="folder of the built HTML book (e.g. _build/html)")
    parser.addoption("--screenshots", default="_build/screenshots", help="where to keep one screenshot per chapter")
    parser.addoption("--slides-dir", default=None, help="folder of the lecture decks (`make slides`: _build/slides)")


def _built_folder(request, option: str, default: str, what: str, hint: str) -> Path:
    """The folder `option` names (or `default`), holding an index.html; missing is a failure when the
    option was given explicitly, and a skip otherwise."""
    given = request.config.getoption(option)
    path = Path(given or default)
    if not (path / "index.html").is_file():
        message = f"no {what} at {path} ({hint})"
        if given:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def html_dir(request) -> Path:
    return _built_folder(request, "--book-html", "_build/html", "built book",
                         "run `make book`, or `make test`, which builds one")


@pytest.fixture(scope="session")
def screenshots_dir(request) -> Path:
    path = Path(request.config.getoption("--screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def server(html_dir):
    """Serve the book on a free localhost port (as a reader's browser would load it)."""
    with serve(html_dir) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    chromium = find_chromium()
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
    return _built_folder(request, "--slides-dir", "_build/slides", "lecture decks",
                         "run `make slides`, or `make test`, which builds them")


@pytest.fixture(scope="session")
def slides_server(slides_dir):
    """Serve the decks on a free localhost port, as a lecture laptop without a network would."""
    with serve(slides_dir) as url:
        yield url
