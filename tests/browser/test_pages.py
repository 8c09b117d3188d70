"""The built book as a reader sees it, in headless Chromium: math rendered, images loaded, no JS errors.

Every request that leaves localhost is refused, so the check also proves the book reads offline
(MathJax comes from the local copy that `make test` installs).
"""
import base64
import io
import json
import re
import urllib.parse
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


# --- Reading checks (issue 11): figures, code, numbering, search, phones, proofs, tables, progress bars ---

NOTEBOOK_PAGES = [p for p in PAGES if p.startswith("notebooks/")]
CHAPTER_PAGES = [p for p in PAGES if re.match(r"book/(\d\d|[A-Z])_", p)]
TICK_PT = 10  # matplotlib's default tick-label size (the notebooks keep it: convention C of the book)
DIGIT_EM = 0.73  # the height of a digit in DejaVu Sans (matplotlib's default font), in ems
X_HEIGHT = """() => {  // the x-height of the body text, in CSS pixels
    const style = getComputedStyle(document.querySelector('article p') || document.body);
    const ctx = document.createElement('canvas').getContext('2d');
    ctx.font = `${style.fontSize} ${style.fontFamily}`;
    return ctx.measureText('x').actualBoundingBoxAscent;
}"""


def _png_dpi(html_dir, page_name, src):
    """The dpi matplotlib wrote into a figure's PNG (its pHYs chunk), for a page's <img src>."""
    from PIL import Image

    if src.startswith("data:"):
        data = base64.b64decode(src.split(",", 1)[1])
    else:
        data = (html_dir / Path(page_name).parent / urllib.parse.unquote(urllib.parse.urlparse(src).path)).read_bytes()
    return Image.open(io.BytesIO(data)).info.get("dpi", (72, 72))[0]


@pytest.mark.parametrize("name", NOTEBOOK_PAGES)
def test_figures_are_legible_at_the_column_width(browser, server, html_dir, screenshots_dir, name):
    """A figure's tick labels, as rendered, are at least as tall as the body text's x-height.

    A figure wider than the text column is shrunk to fit, and its labels with it (a 1x4 row of panels
    ends with labels ~6 px high); at 100 dpi and 10 pt, that leaves room for about 7 inches.
    """
    page, _ = open_page(browser, f"{server}/{name}")
    try:
        x_height = page.evaluate(X_HEIGHT)
        images = page.evaluate("""() => Array.from(document.querySelectorAll('.cell_output img'))
            .filter(i => i.naturalWidth > 0 && i.clientWidth > 0)
            .map(i => ({src: i.getAttribute('src'), natural: i.naturalWidth, shown: i.clientWidth}))""")
        if images:  # the first figure as the reader sees it, at the column's width
            figure = page.locator(".cell_output img").first
            figure.scroll_into_view_if_needed()
            figure.screenshot(path=str(screenshots_dir / f"figure_{Path(name).stem}.png"))
    finally:
        page.close()
    assert images, f"{name} shows no figures"
    small = []
    for img in images:
        dpi = _png_dpi(html_dir, name, img["src"])
        digit_px = TICK_PT / 72 * dpi * DIGIT_EM * img["shown"] / img["natural"]
        if digit_px < x_height - 0.25:  # a quarter pixel for rounding
            small.append(f"{img['src'][-20:]}: {img['natural']} px shown at {img['shown']} px, "
                         f"tick digits {digit_px:.1f} px < x-height {x_height:.1f} px")
    assert not small, small


@pytest.mark.parametrize("name", NOTEBOOK_PAGES)
def test_code_lines_are_not_cut_off(browser, server, name):
    page, _ = open_page(browser, f"{server}/{name}")
    try:
        cut = page.evaluate("""() => Array.from(document.querySelectorAll('.cell_input pre'))
            .filter(p => p.scrollWidth > p.clientWidth + 1)
            .map(p => p.innerText.split('\\n').reduce((a, b) => a.length > b.length ? a : b))""")
    finally:
        page.close()
    assert not cut, f"{len(cut)} code cells run past the column, e.g. {cut[0]!r}"


def test_no_progress_bars_in_the_book(html_dir):
    """tqdm is off in the book's runs (TQDM_DISABLE=1), so no bar splits a cell's printed lines or
    leaves widget data behind. Read from the executed notebooks: the static page hides a bar's widget."""
    executed = sorted((html_dir.parent / "jupyter_execute" / "notebooks").glob("*.ipynb"))
    assert executed, "no executed notebooks next to the built book"
    bars = []
    for nb_path in executed:
        for i, cell in enumerate(json.loads(nb_path.read_text())["cells"]):
            for out in cell.get("outputs", []):
                text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
                if re.search(r"\d+/\d+ \[[\d:<?]+|\bit/s\]", text):
                    bars.append(f"{nb_path.name} cell {i}")
    assert not bars, f"progress bars in the book's outputs: {bars}"


def test_every_widget_has_a_static_figure_beside_it(html_dir):
    """The static book cannot run ipywidgets: the code cell next to a widget shows a figure instead."""
    executed = html_dir.parent / "jupyter_execute" / "notebooks"
    assert executed.is_dir(), f"no executed notebooks in {executed}"
    missing, widgets = [], 0
    for nb_path in sorted(executed.glob("*.ipynb")):
        code = [c for c in json.loads(nb_path.read_text())["cells"] if c["cell_type"] == "code"]
        has = lambda c, mime: any(mime in o.get("data", {}) for o in c.get("outputs", []))  # noqa: E731
        for i, cell in enumerate(code):
            if has(cell, "application/vnd.jupyter.widget-view+json"):
                widgets += 1
                beside = code[max(i - 1, 0):i] + code[i + 1:i + 2]
                if not any(has(c, "image/png") for c in beside):
                    missing.append(f"{nb_path.name} code cell {i}")
    assert widgets >= 1, "notebook 01's widget was not found (the check would pass vacuously)"
    assert not missing, f"widgets without a static figure in the cell before or after: {missing}"


@pytest.mark.parametrize("name", CHAPTER_PAGES)
def test_numbers_carry_the_chapter(html_dir, name):
    """Equations, theorems and exercises read "(7.8)", "Theorem 7.2", "Exercise B.3"."""
    html = (html_dir / name).read_text()
    chapter = re.match(r"book/0*(\d+|[A-Z])_", name).group(1)
    eqnos = re.findall(r'<span class="eqno">\(([^)<]+)\)', html)
    captions = re.findall(r'<span class="caption-number">\w+ ([^ <]+) ?</span>', html)
    assert eqnos, f"{name} has no numbered equations"
    wrong = [n for n in eqnos + captions if not re.fullmatch(rf"{chapter}\.\d+", n)]
    assert not wrong, f"{name}: numbers without the chapter prefix {chapter}: {wrong[:5]}"
    assert len(set(eqnos)) == len(eqnos), f"{name}: an equation number repeats"


def test_one_search_bar(browser, server):
    page, _ = open_page(browser, f"{server}/book/07_ddpm.html")
    try:
        page.mouse.wheel(0, 3000)  # the duplicate bar of an unpinned theme appears in a top band when scrolling
        page.wait_for_timeout(200)
        visible = page.evaluate("""() => Array.from(document.querySelectorAll(
            'input[type=search], .search-button, .search-button-field'))
            .filter(e => e.offsetParent !== null && e.getBoundingClientRect().width > 0).length""")
    finally:
        page.close()
    assert visible == 1, f"{visible} search bars or buttons are visible"


def test_equations_scroll_on_a_phone(browser, server):
    """On a 390 px wide phone the page itself never scrolls sideways; a display equation wider than the
    screen scrolls inside its own box, which shows a shadow at the cut edge."""
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    page.route(lambda u: not u.startswith("http://127.0.0.1"), lambda route: route.abort())
    try:
        page.goto(f"{server}/book/07_ddpm.html", wait_until="load")
        page.evaluate("async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }")
        state = page.evaluate("""() => {
            const wide = Array.from(document.querySelectorAll('div.math mjx-container[display="true"]'))
                .filter(m => m.scrollWidth > m.clientWidth + 1);
            return {page: document.documentElement.scrollWidth, wide: wide.length,
                    unmarked: wide.filter(m => { const s = getComputedStyle(m);
                        return !['auto', 'scroll'].includes(s.overflowX)
                            || !s.backgroundImage.includes('gradient'); }).length};
        }""")
    finally:
        page.close()
    assert state["page"] <= 391, f"the page scrolls sideways on a phone ({state['page']} px)"
    assert state["wide"] > 0, "no equation is wider than a phone: the check would pass vacuously"
    assert state["unmarked"] == 0, state


def test_proofs_end_with_a_tombstone(browser, server):
    page, _ = open_page(browser, f"{server}/book/07_ddpm.html")
    try:
        ends = page.evaluate("""() => Array.from(document.querySelectorAll('div.proof'))
            .filter(d => d.className === 'proof admonition')
            .map(d => getComputedStyle(d, '::after').content)""")
    finally:
        page.close()
    assert ends and all(e == '"∎"' for e in ends), ends


def test_results_table_reads(browser, server):
    """The Results table fits the column and breaks names only between words, never letter by letter."""
    page, _ = open_page(browser, f"{server}/book/results.html")
    try:
        state = page.evaluate("""() => { const t = document.querySelector('table');
            const broken = Array.from(t.querySelectorAll('td code')).filter(c =>
                c.getClientRects().length > c.innerText.trim().split(/\\s+/).length).map(c => c.innerText);
            return {width: t.scrollWidth, room: t.parentElement.clientWidth, broken}; }""")
    finally:
        page.close()
    assert state["width"] <= state["room"] + 1, state
    assert not state["broken"], f"names broken inside a word: {state['broken'][:5]}"


RAW_TEX = re.compile(r"\\(?:frac|log|mathcal|mathbb|Sigma|sigma|mu|sum|prod|hat|top|alpha|beta|epsilon|nabla|int)"
                     r"(?![A-Za-z])|\$[^$\s][^$]*\$")


@pytest.mark.parametrize("name", PAGES)
def test_no_raw_tex_in_the_text(html_dir, name):
    """TeX outside math means the parser did not see it as math (e.g. a line of an inline formula
    that starts with "- " became a list item); MathJax then leaves it as it is, backslashes and all."""
    from bs4 import BeautifulSoup

    main = BeautifulSoup((html_dir / name).read_text(), "html.parser").find("main")
    for element in main.select(".math, code, pre, script, style, .cell_output, .highlight"):
        element.decompose()
    raw = [m.group(0) for m in RAW_TEX.finditer(main.get_text(" "))]
    assert not raw, f"{name}: TeX outside math: {raw[:5]}"
