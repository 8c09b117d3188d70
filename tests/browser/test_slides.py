"""The lecture decks of `make slides` as an instructor shows them: headless Chromium, no network.

Every request that leaves localhost is refused, so the check also proves the decks work offline.
Each slide is visited in turn: its content must lie inside the 1280 x 720 slide (no overflow in
height or width), its images must have loaded and lie inside it, and its math must be typeset.
Each deck has a title slide with an outline and a PDF handout with one page per slide. The last
tests build small synthetic books to check that make_slides.py names the mistake it finds.
"""
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import make_slides  # noqa: E402

DECKS = [f"ch{int(Path(page).name[:2]):02d}" for page, _ in make_slides.chapters(ROOT)]
# one screenshot from each of three decks: (deck, which kind of slide)
SHOTS = {"ch01": "title-slide", "ch04": "notebook", "ch07": "page"}
MIN_FONT_PX = make_slides.FONT_PX * make_slides.FIT_FLOOR - 0.5

SLIDE_STATE = """(h) => {
    Reveal.slide(h, 0);
    const s = Reveal.getCurrentSlide();
    const box = s.getBoundingClientRect();
    const inside = r => r.left >= box.left - 1 && r.right <= box.right + 1
        && r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
    // MathJax's own inner boxes (parts of stretchy delimiters) are skipped; their container is checked.
    const checked = Array.from(s.querySelectorAll('*')).filter(el =>
        !el.tagName.startsWith('MJX-') || el.tagName === 'MJX-CONTAINER');
    const outside = checked.filter(el => {
        const r = el.getBoundingClientRect();
        return (r.width > 0 || r.height > 0) && !inside(r);
    }).map(el => el.tagName.toLowerCase() + (el.className ? '.' + el.className : ''));
    const body = s.querySelector('.slide-body') || s;
    const over = el => ({h: el.scrollHeight - el.clientHeight, w: el.scrollWidth - el.clientWidth});
    const maths = Array.from(s.querySelectorAll('.math'));
    return {
        h: h, cls: s.className, title: (s.querySelector('h1, h2') || s).innerText.slice(0, 70),
        size: [s.offsetWidth, s.offsetHeight], slide: over(s), body: over(body), outside: outside.slice(0, 5),
        images: Array.from(s.querySelectorAll('img')).map(i => ({src: i.getAttribute('src'),
            loaded: i.complete && i.naturalWidth > 0, inside: inside(i.getBoundingClientRect())})),
        math: maths.length, untypeset: maths.filter(e => !e.querySelector('mjx-container')).length,
        errors: s.querySelectorAll('mjx-merror, [data-mjx-error]').length,
        font: parseFloat(getComputedStyle(s).fontSize),
    };
}"""


def open_deck(browser, url):
    """Load a deck offline; return it with the JS errors and failed requests it produced."""
    page = browser.new_page(viewport={"width": make_slides.WIDTH, "height": make_slides.HEIGHT})
    problems = []
    page.on("pageerror", lambda exc: problems.append(f"uncaught exception: {exc}"))
    page.on("console", lambda msg: problems.append(f"console error: {msg.text}") if msg.type == "error" else None)
    page.on("requestfailed", lambda req: problems.append(f"failed request: {req.url}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    page.route(lambda u: not u.startswith("http://127.0.0.1"), lambda route: route.abort())
    page.goto(url, wait_until="load")
    page.wait_for_function("window.deckReady === true", timeout=60_000)
    return page, problems


def test_decks_exist_and_are_listed(slides_dir):
    index = (slides_dir / "index.html").read_text()
    for name in DECKS:
        assert (slides_dir / f"{name}.html").is_file(), f"{name}.html was not built"
        assert f'href="{name}.html"' in index, f"index.html does not list {name}"
    assert (slides_dir / "lib/reveal.js/dist/reveal.js").is_file()
    assert (slides_dir / "lib/mathjax/tex-chtml.js").is_file()


@pytest.mark.parametrize("name", DECKS)
def test_every_slide_fits_and_renders(browser, slides_server, slides_dir, screenshots_dir, name):
    page, problems = open_deck(browser, f"{slides_server}/{name}.html")
    try:
        number = int(name[2:])
        assert page.title().startswith(f"Chapter {number}: "), page.title()
        n = page.evaluate("Reveal.getTotalSlides()")
        first = page.evaluate("""() => { const s = Reveal.getSlides()[0];
            const outline = s.querySelector('.outline');
            const titles = Reveal.getSlides().filter(x => x.matches('.page, .notebook, .divider'))
                .map(x => x.querySelector('h2').innerText.trim());
            return {cls: s.className, h1: (s.querySelector('h1') || {}).innerText, titles: titles,
                    missing: titles.filter(t => !outline || !outline.innerText.includes(t))}; }""")
        assert "title-slide" in first["cls"] and first["h1"], "the first slide should be the chapter's title slide"
        assert first["titles"] and not first["missing"], f"the outline should list every slide: {first}"
        states = [page.evaluate(SLIDE_STATE, h) for h in range(n)]
        for state in states:
            where = f"{name} slide {state['h'] + 1} ('{state['title']}')"
            assert state["size"] == [make_slides.WIDTH, make_slides.HEIGHT], f"{where}: slide size {state['size']}"
            assert state["slide"]["h"] <= 1 and state["body"]["h"] <= 1, f"{where}: content too tall: {state}"
            assert state["slide"]["w"] <= 1 and state["body"]["w"] <= 1, f"{where}: content too wide: {state}"
            assert not state["outside"], f"{where}: elements outside the slide: {state['outside']}"
            for image in state["images"]:
                assert image["loaded"] and image["inside"], f"{where}: image {image}"
            if state["math"]:
                assert state["untypeset"] == 0 and state["errors"] == 0, f"{where}: math not typeset: {state}"
            assert state["font"] >= MIN_FONT_PX, f"{where}: text shrunk to {state['font']} px"
        kinds = [s["cls"] for s in states]
        assert any("page" in k for k in kinds) and any("notebook" in k for k in kinds), kinds
        dividers = [s["title"] for s in states if "divider" in s["cls"].split()]
        assert dividers and all(t.startswith("Notebook ") for t in dividers), f"notebook dividers: {dividers}"
        assert not problems, problems
        if name in SHOTS:
            h = next(s["h"] for s in states if SHOTS[name] in s["cls"].split())
            page.evaluate("(h) => Reveal.slide(h, 0)", h)
            page.screenshot(path=str(screenshots_dir / f"slides_{name}_{h + 1}.png"))
    finally:
        page.close()


def count_pdf_pages(path: Path) -> int:
    try:
        from pypdf import PdfReader
    except ImportError:
        return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", path.read_bytes()))
    return len(PdfReader(path).pages)


@pytest.mark.parametrize("name", DECKS)
def test_pdf_handout_has_one_page_per_slide(slides_dir, name):
    pdf = slides_dir / f"{name}.pdf"
    assert pdf.is_file(), f"{pdf} is missing (make_slides.py --pdf)"
    slides = (slides_dir / f"{name}.html").read_text().count('<section class="slide')
    assert count_pdf_pages(pdf) == slides


# --- make_slides.py names the mistake it finds (synthetic books, no browser) ---------------------

PAGE = """<html><body><section><h1>1. A chapter<a class="headerlink" href="#">#</a></h1>
<div class="math notranslate nohighlight" id="equation-eq-a"><span class="eqno">(1)</span>\\[a = b\\]</div>
</section></body></html>"""
NOTEBOOK = """<html><body><h1>Notebook 1: a notebook</h1><h2>Results</h2>
<div class="cell {tags} docutils container"><div class="cell_output docutils container">
<div class="output stream highlight-myst-ansi notranslate"><div class="highlight"><pre>KL = 0.01</pre></div></div>
</div></div></body></html>"""


def synthetic_book(tmp_path, label="eq-a", tags="tag_slide"):
    root = tmp_path / "book_src"
    html = root / "_build/html"
    (html / "book").mkdir(parents=True)
    (html / "notebooks").mkdir()
    (root / "book").mkdir()
    (root / "_toc.yml").write_text(yaml.safe_dump({"format": "jb-book", "root": "book/preface", "parts": [
        {"caption": "c", "chapters": [{"file": "book/01_a", "sections": [{"file": "notebooks/01_a"}]}]}]}))
    (root / "_config.yml").write_text(yaml.safe_dump({"title": "T", "sphinx": {"config": {
        "mathjax3_config": {"tex": {"macros": {"E": "\\mathbb{E}"}}}}}}))
    (root / "book/01_a.md").write_text(f"---\nslides:\n  - title: One\n    show: [{label}]\n---\n# 1. A chapter\n")
    (html / "index.html").write_text("<html></html>")
    (html / "book/01_a.html").write_text(PAGE)
    (html / "notebooks/01_a.html").write_text(NOTEBOOK.format(tags=tags))
    return html


def test_builds_a_deck_from_a_synthetic_book(tmp_path):
    make_slides.build(synthetic_book(tmp_path), tmp_path / "out", pdf=False)
    deck = (tmp_path / "out/ch01.html").read_text()
    assert "<title>Chapter 1: A chapter</title>" in deck
    assert "KL = 0.01" in deck and "\\[a = b\\]" in deck and "(1)" in deck
    assert '"E": "\\\\mathbb{E}"' in deck  # the book's macros reach MathJax


@pytest.mark.parametrize("kwargs, message", [
    ({"label": "eq-missing"}, "eq-missing"),
    ({"tags": ""}, "no code cell tagged `slide`"),
])
def test_clear_errors(tmp_path, kwargs, message):
    with pytest.raises(make_slides.SlideError, match=re.escape(message)):
        make_slides.build(synthetic_book(tmp_path, **kwargs), tmp_path / "out", pdf=False)


def test_missing_book_is_an_error(tmp_path):
    with pytest.raises(make_slides.SlideError, match="no built book"):
        make_slides.build(tmp_path / "nothing", tmp_path / "out", pdf=False)
