"""The built book as a reader sees it, in headless Chromium: math rendered, images loaded, no JS errors.

Every request that leaves localhost is refused, so the check also proves the book reads offline
(MathJax comes from the local copy that `make test` installs).
"""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ([f"book/{p.stem}.html" for p in sorted((ROOT / "book").glob("*.md"))]
         + [f"notebooks/{p.stem}.html" for p in sorted((ROOT / "notebooks").glob("*.ipynb"))])
HAS_MATH = {"book/01_maximum_likelihood.html", "book/B_probability_toolbox.html", "book/notation.html",
            "notebooks/01_maximum_likelihood.html"}


def open_page(browser, url):
    """Load a page offline; return it with the JS errors and failed requests it produced."""
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    problems = []
    page.on("pageerror", lambda exc: problems.append(f"uncaught exception: {exc}"))
    page.on("console", lambda msg: problems.append(f"console error: {msg.text}") if msg.type == "error" else None)
    page.on("requestfailed", lambda req: problems.append(f"failed request: {req.url}"))
    page.route(lambda u: not u.startswith("http://127.0.0.1"), lambda route: route.abort())
    page.goto(url, wait_until="load")
    page.evaluate("""async () => {
        if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
        await Promise.all(Array.from(document.images).map(img => { img.loading = 'eager';
            return img.complete ? null : new Promise(r => { img.onload = img.onerror = r; }); }));
    }""")
    return page, problems


@pytest.mark.parametrize("name", PAGES)
def test_page_renders(browser, server, html_dir, screenshots_dir, name):
    assert (html_dir / name).is_file(), f"{name} was not built"
    page, problems = open_page(browser, f"{server}/{name}")
    try:
        state = page.evaluate("""() => ({
            mathjax: document.querySelectorAll('mjx-container').length,
            untypeset: Array.from(document.querySelectorAll('.math'))
                .filter(e => !e.querySelector('mjx-container')).length,
            errors: document.querySelectorAll('mjx-merror, [data-mjx-error]').length,
            raw: (document.querySelector('main') || document.body).innerText.includes('$$'),
            broken: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
            figures: document.querySelectorAll('.cell_output img').length,
        })""")
        assert not problems, problems
        assert not state["broken"], f"images that did not load: {state['broken']}"
        assert not state["raw"], "raw $$ left in the page text: a display equation did not parse"
        assert state["untypeset"] == 0 and state["errors"] == 0, state
        if name in HAS_MATH:
            assert state["mathjax"] > 5, f"MathJax rendered only {state['mathjax']} expressions"
        if name.startswith("notebooks/"):
            assert state["figures"] >= 2, f"a notebook page should show its figures, found {state['figures']}"
        if name.startswith(("book/preface", "book/0", "book/B", "notebooks/")):
            page.screenshot(path=str(screenshots_dir / (name.replace("/", "_").removesuffix(".html") + ".png")))
    finally:
        page.close()


def test_index_redirects_to_the_preface(html_dir):
    assert 'url=book/preface.html' in (html_dir / "index.html").read_text()


@pytest.mark.parametrize("name", [p for p in PAGES if p.startswith("notebooks/")])
def test_notebook_pages_have_launch_buttons(browser, server, name):
    """Every notebook page offers Colab and Binder launch buttons pointing at the book's repository."""
    page, _ = open_page(browser, f"{server}/{name}")
    try:
        links = page.evaluate("() => Array.from(document.querySelectorAll('a')).map(a => a.href)")
    finally:
        page.close()
    stem = Path(name).stem
    assert any("colab.research.google.com" in link and f"notebooks/{stem}.ipynb" in link for link in links), links
    assert any("mybinder.org" in link for link in links)
