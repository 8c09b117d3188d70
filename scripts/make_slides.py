"""`make slides`: one reveal.js lecture deck per chapter, made from the built HTML book.

The source stays the book. A chapter page's YAML front matter lists its slides,

    slides:
      - title: The forward process
        show: [eq-ddpm-forward, prop-ddpm-marginal]

and each slide shows the rendered elements with those labels (display equations, prf boxes,
figures), copied from the built page. A notebook code cell tagged `slide` gives one slide with its
outputs (figures and printed lines), titled by the nearest heading above it; the tag `slide-code`
adds its code. myst-nb writes cell tags as CSS classes (`tag_slide`), so everything is read from
the built HTML; nothing is executed or re-rendered (figure captions are left to the lecturer; a
cell whose code would leave its figures too small gets a code slide and a figure slide). A deck
is: a title slide with an outline, the page's slides, then for each of the chapter's notebooks
(in _toc.yml order) a divider and its slides.

The decks load reveal.js 5 (`bash scripts/install_vendor.sh slides`) and the book's MathJax 3
(`bash scripts/install_vendor.sh`) from lib/ beside them, with the book's TeX macros, so the folder
works offline (copy it to a USB stick for a lecture). Every slide is 1280 x 720 (16:9); a slide
whose content is still too tall or wide has its font and figures reduced step by step, down to a
floor, before reveal.js starts. `--pdf` (the default) prints each deck to a PDF handout with the
system Chromium through Playwright (reveal's `?print-pdf` view, one page per slide).

    python scripts/make_slides.py --html _build/html --out _build/slides [--no-pdf]
"""
import argparse
import copy
import html
import json
import re
import shutil
import sys
import time
from pathlib import Path

import yaml
from bs4 import BeautifulSoup, Tag
from local_browser import CHROMIUM_FLAGS, find_chromium, serve  # scripts/local_browser.py

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1280, 720      # reveal.js slide size in CSS pixels (16:9)
FONT_PX = 30                   # body text at 1280 x 720
FIT_FLOOR = 0.75               # the fit script never shrinks a slide's text below FONT_PX * FIT_FLOOR
REVEAL = ROOT / "_vendor/slides/node_modules/reveal.js"
MATHJAX = [ROOT / "_vendor/slides/node_modules/mathjax/es5", ROOT / "_vendor/node_modules/mathjax/es5"]
KINDS = ("math", "proof", "figure", "table")   # what a page label may name


class SlideError(Exception):
    """A problem with the book's slide markup or the build, reported without a traceback."""


# --- reading the book ---------------------------------------------------------------------------

def book_root_for(html_dir: Path) -> Path:
    """The book's source folder: the one whose `_build/html` is `html_dir`, else the repository."""
    candidate = html_dir.resolve().parents[1]
    return candidate if (candidate / "_toc.yml").is_file() else ROOT


def chapters(book_root: Path) -> list[tuple[str, list[str]]]:
    """[(page, [notebook, ...])] for each numbered chapter of _toc.yml, e.g. ("book/07_ddpm", [...])."""
    toc = yaml.safe_load((book_root / "_toc.yml").read_text())
    found = []
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            page = chapter["file"]
            if re.fullmatch(r"book/\d\d_\w+", page):
                found.append((page, [s["file"] for s in chapter.get("sections", [])
                                     if s["file"].startswith("notebooks/")]))
    return found


def front_matter(md: Path) -> dict:
    text = md.read_text()
    if not text.startswith("---\n"):
        return {}
    end = text.find("\n---\n", 4)
    if end < 0:
        raise SlideError(f"{md}: the front matter opened by '---' on line 1 is never closed")
    return yaml.safe_load(text[4:end]) or {}


def tex_macros(book_root: Path) -> dict:
    config = yaml.safe_load((book_root / "_config.yml").read_text())
    return config["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]


def load_page(html_dir: Path, name: str) -> BeautifulSoup:
    path = html_dir / f"{name}.html"
    if not path.is_file():
        raise SlideError(f"{path} is missing: build the book first (`make book`)")
    return BeautifulSoup(path.read_text(), "html.parser")


# --- copying rendered elements ------------------------------------------------------------------

class Deck:
    """Collects the slides of one chapter and the images they use."""

    def __init__(self, html_dir: Path, out: Path):
        self.html_dir, self.out, self.slides = html_dir, out, []

    def clean(self, element: Tag, page: str) -> Tag:
        """A copy of `element` that stands alone on a slide: no anchors, ids or book-relative links."""
        element = copy.copy(element)
        for a in element.select("a.headerlink, figcaption"):
            a.decompose()  # a figure's caption is for reading: on a slide the title and the lecturer say it
        for a in element.find_all("a"):
            a.unwrap()          # cross-references point into the book; keep their text
        for tag in [element, *element.find_all(True)]:
            tag.attrs.pop("id", None)
        for inner in element.find_all("section"):
            inner.name = "div"  # reveal.js takes every <section> for a slide
        for img in [element] if element.name == "img" else element.find_all("img"):
            for attribute in ("loading", "style", "width", "height"):
                img.attrs.pop(attribute, None)  # the slide's CSS sizes figures, keeping their shape
            source = (self.html_dir / page).parent / img["src"]
            if not source.is_file():
                raise SlideError(f"{page}.html: image {img['src']} not found at {source}")
            target = self.out / "images" / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                shutil.copy2(source, target)
            img["src"] = f"images/{source.name}"
        return element

    def inner(self, heading: Tag, page: str) -> str:
        """A heading's contents (math included) as HTML, without its '#' link."""
        return "".join(str(c) for c in self.clean(heading, page).contents).strip()


def classify(element: Tag) -> str | None:
    classes = element.get("class", [])
    if element.name == "div" and "math" in classes:
        return "math"
    if "proof" in classes or "admonition" in classes:
        return "proof"
    if element.name in ("figure", "table") or "figure" in classes:
        return "figure" if element.name != "table" else "table"
    return None


def page_slides(deck: Deck, soup: BeautifulSoup, page: str, entries: list) -> list[dict]:
    slides = []
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not entry.get("title") or not entry.get("show"):
            raise SlideError(f"{page}.md: slides entry {i} needs a `title` and a non-empty `show` list")
        parts = []
        for label in entry["show"]:
            element = soup.find(id=f"equation-{label}") or soup.find(id=label)
            if element is None:
                raise SlideError(f"{page}.md: slide '{entry['title']}' shows '{label}', "
                                 f"which is not a label on the built page {page}.html")
            kind = classify(element)
            if kind is None:
                raise SlideError(f"{page}.md: '{label}' labels a <{element.name}>, not one of {KINDS}")
            parts.append(f'<div class="part part-{kind}">{deck.clean(element, page)}</div>')
        slides.append({"kind": "page", "title": html.escape(entry["title"]), "body": "".join(parts)})
    return slides


def figure_block(images: list[Tag], out: Path, code_lines: int, text_lines: int) -> tuple[str, float]:
    """Lay out a cell's figures in a row or a column, whichever shows them larger, at explicit sizes.

    The space left for figures is estimated from the number of code and text lines on the slide;
    if the estimate is short, the fit script in the deck scales the figures down with the text.
    Returns the HTML and the smallest ratio of a figure's height on the slide to its own height.
    """
    if not images:
        return "", 1.0
    from PIL import Image

    sizes = []
    for img in images:
        with Image.open(out / img["src"]) as im:
            sizes.append(im.size)
    gap = 16
    width = WIDTH - 96
    height = HEIGHT - 66 - 70 - 0.85 * FONT_PX * 1.3 * text_lines - 0.75 * FONT_PX * 1.3 * code_lines
    height = max(height, 160)
    grow = 1.4  # figures may be drawn up to 40 % larger than their pixels (100 dpi on a 7 in column)
    # one row: a common height
    aspects = [w / h for w, h in sizes]
    row_h = min(height, (width - gap * (len(sizes) - 1)) / sum(aspects), *(grow * h for _, h in sizes))
    row = [row_h] * len(sizes)
    # one column: each as wide as allowed, then all scaled to the height
    col = [min(width / a, grow * h) for a, (_, h) in zip(aspects, sizes)]
    scale = min(1.0, (height - gap * (len(sizes) - 1)) / sum(col))
    col = [scale * h for h in col]
    area = lambda hs: sum(a * h * h for a, h in zip(aspects, hs))  # noqa: E731
    layout, heights = ("row", row) if area(row) >= area(col) else ("column", col)
    for img, h in zip(images, heights):
        img["style"] = f"height: {h:.0f}px"
        img["data-h"] = f"{h:.0f}"
    shrink = min(h / natural for h, (_, natural) in zip(heights, sizes))
    return f'<div class="figures {layout}">{"".join(str(i) for i in images)}</div>', shrink


def notebook_slides(deck: Deck, soup: BeautifulSoup, page: str) -> tuple[str, list[dict]]:
    h1 = soup.find("h1")
    title = deck.inner(h1, page) if h1 else html.escape(page)
    slides = []
    for cell in soup.select("div.cell.tag_slide"):
        heading = cell.find_previous(["h1", "h2", "h3", "h4"])
        figures, lines, code = [], [], ""
        if "tag_slide-code" in cell.get("class", []):
            source = cell.select_one(".cell_input pre")
            if source is not None:
                code = f'<pre class="code mathjax_ignore">{"".join(str(c) for c in source.contents)}</pre>'
        output = cell.select_one(".cell_output")
        for child in (output.find_all(True, recursive=False) if output else []):
            classes = child.get("class", [])
            if child.name == "img":
                figures.append(deck.clean(child, page))
            elif "stream" in classes or "text_plain" in classes:
                pre = child.find("pre")
                text = pre.get_text() if pre else child.get_text()
                if text.strip():
                    lines.append(f'<pre class="lines mathjax_ignore">{html.escape(text.rstrip())}</pre>')
            elif "text_html" in classes and child.find("script") is None:
                lines.append(f'<div class="html-output">{deck.clean(child, page)}</div>')
            # JavaScript animations play in the book; the slide shows the cell's static figures.
        if not (figures or lines or code):
            raise SlideError(f"{page}.ipynb: a cell tagged `slide` under '{heading.get_text()}' has "
                             "nothing a slide can show (no figure, no printed line, no `slide-code` tag)")
        slide_title = deck.inner(heading, page)
        n_code = code.count("\n") + 1 if code else 0
        n_text = sum(line.count("\n") + 1 for line in lines)
        block, shrink = figure_block(figures, deck.out, n_code, n_text)
        if code and figures and shrink < 0.6:
            # code and figures together would leave the figures too small: one slide each
            slides.append({"kind": "notebook", "title": slide_title, "body": code})
            code, (block, _) = "", figure_block(figures, deck.out, 0, n_text)
        slides.append({"kind": "notebook", "title": slide_title, "body": code + block + "".join(lines)})
    if not slides:
        raise SlideError(f"{page}.ipynb has no code cell tagged `slide`: tag 2-5 cells whose outputs "
                         "belong in the lecture (see convention B)")
    return title, slides


# --- writing a deck -----------------------------------------------------------------------------

CSS = """
:root { --r-main-font-size: %(font)dpx; --r-heading-text-transform: none; --r-heading-font-weight: 600;
        --r-heading1-size: 1.9em; --r-heading2-size: 1.35em; --r-main-color: #1d1d1f; }
/* reveal's print view restyles <section> (block, no padding), so the layout lives on .frame */
.reveal .slides section.slide { display: block; width: %(w)dpx; height: %(h)dpx; top: 0; padding: 0; }
.reveal .frame { box-sizing: border-box; width: %(w)dpx; height: %(h)dpx; padding: 26px 48px 40px;
  display: flex; flex-direction: column; text-align: left; overflow: hidden; }
.reveal .frame > h2 { flex: 0 0 auto; margin: 0 0 0.45em; line-height: 1.15;
  border-bottom: 3px solid #2a76dd; padding-bottom: 0.15em; }
.reveal .slide-body { flex: 1 1 auto; min-height: 0; display: flex; flex-direction: column;
  gap: 0.35em; overflow: hidden; }
.reveal .slide-body p { margin: 0.25em 0; line-height: 1.3; }
.reveal .part { flex: 0 0 auto; }
.reveal div.math { position: relative; margin: 0.1em 0; }
.reveal span.eqno { float: right; margin-left: 0.5em; color: #555; line-height: 2.2; }
.reveal mjx-container[display="true"] { margin: 0.35em 0 !important; }
.reveal .proof { border-left: 6px solid #2a76dd; background: #f3f7fd; padding: 0.3em 0.7em;
  margin: 0; border-radius: 4px; }
.reveal .proof.definition { border-color: #1f9d55; background: #f1faf4; }
.reveal .proof.algorithm { border-color: #8a5cd1; background: #f6f2fc; }
.reveal .proof .admonition-title { font-weight: 600; margin: 0 0 0.2em; }
.reveal .proof section { display: block; }
.reveal figure { margin: 0; text-align: center; }
.reveal figure img { max-height: 430px; max-width: 100%%; width: auto; }
.reveal .figures { flex: 0 0 auto; display: flex; justify-content: center; align-items: center;
  gap: 16px; }
.reveal .figures.column { flex-direction: column; }
.reveal .figures img { width: auto; max-width: 100%%; margin: 0; }
.reveal pre { width: auto; margin: 0; box-shadow: none; font-size: 0.75em; line-height: 1.3;
  white-space: pre; word-wrap: normal; flex: 0 0 auto; }
.reveal pre.lines { font-size: 0.8em; white-space: pre-wrap; }
.reveal pre.code { background: #f6f8fa; border: 1px solid #d8dee4; border-radius: 4px; padding: 0.3em 0.5em; }
.reveal pre.lines { color: #222; border-left: 4px solid #bbb; padding-left: 0.6em; }
.reveal .html-output { font-size: 0.72em; flex: 0 0 auto; }
.reveal .html-output table { margin: 0; }
.reveal section.title-slide .kicker { font-size: 0.8em; color: #555; margin: 0 0 0.2em; }
.reveal section.title-slide h1 { margin: 0 0 0.3em; font-size: 1.7em; line-height: 1.1; }
.reveal ol.outline, .reveal ul.outline { columns: 2; column-gap: 2.2em; font-size: 0.8em; margin: 0;
  padding-left: 1.2em; line-height: 1.3; }
.reveal .outline li { break-inside: avoid; margin-bottom: 0.15em; }
.reveal .outline ul { margin: 0.1em 0 0.1em 0.2em; font-size: 0.92em; color: #444; }
.reveal section.divider .frame { justify-content: center; }
.reveal section.divider h2 { font-size: 1.6em; border: none; }
.reveal section.divider .slide-body { flex: 0 0 auto; }
.reveal section.divider .file { font-family: var(--r-code-font); font-size: 0.75em; color: #555; }
.reveal .slide-number { font-size: 16px; }
""" % {"font": FONT_PX, "w": WIDTH, "h": HEIGHT}

# Runs after MathJax has typeset and every image has loaded, before reveal.js starts: shrinks a
# slide that overflows (text 5 % at a time, figures with it) down to the floor, then starts reveal.
SCRIPT = """
(async () => {
  await MathJax.startup.promise;
  await document.fonts.ready;
  await Promise.all(Array.from(document.images).map(img => img.complete ? null :
    new Promise(r => { img.onload = img.onerror = r; })));
  const over = el => el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth + 1;
  for (const s of document.querySelectorAll('.reveal .slides > section')) {
    const frame = s.querySelector('.frame') || s, body = s.querySelector('.slide-body') || frame;
    let f = 1;
    while ((over(frame) || over(body)) && f > %(floor)s + 1e-9) {
      f = Math.round((f - 0.05) * 100) / 100;
      s.style.fontSize = (%(font)d * f) + 'px';
      s.querySelectorAll('figure img').forEach(img => { img.style.maxHeight = (430 * f) + 'px'; });
      s.querySelectorAll('img[data-h]').forEach(img => { img.style.height = (img.dataset.h * f) + 'px'; });
    }
    s.dataset.fit = f.toFixed(2);
    s.dataset.overflow = (over(frame) || over(body)) ? 'yes' : 'no';
  }
  await Reveal.initialize({width: %(w)d, height: %(h)d, margin: 0.04, center: false,
    hash: true, transition: 'none', backgroundTransition: 'none', slideNumber: 'c/t',
    showSlideNumber: 'all', pdfMaxPagesPerSlide: 1, pdfSeparateFragments: false});
  window.deckReady = true;
})();
""" % {"floor": FIT_FLOOR, "font": FONT_PX, "w": WIDTH, "h": HEIGHT}


def section(slide: dict) -> str:
    if slide["kind"] == "raw":
        return slide["html"]
    return (f'<section class="slide {slide["kind"]}"><div class="frame">\n<h2>{slide["title"]}</h2>\n'
            f'<div class="slide-body">{slide["body"]}</div>\n</div></section>')


def write_deck(path: Path, number: int, title_html: str, title_text: str, book_title: str,
               page_slides_: list[dict], notebooks: list[tuple[str, str, list[dict]]], macros: dict) -> int:
    outline = "".join(f"<li>{s['title']}</li>" for s in page_slides_)
    for _, nb_title, slides in notebooks:
        titles = [s["title"] for i, s in enumerate(slides) if i == 0 or s["title"] != slides[i - 1]["title"]]
        items = "".join(f"<li>{t}</li>" for t in titles)
        outline += f"<li><strong>{nb_title}</strong><ul>{items}</ul></li>"
    sections = [{"kind": "raw", "html": (
        f'<section class="slide title-slide"><div class="frame">\n'
        f'<p class="kicker">{html.escape(book_title)}</p>\n'
        f'<p class="kicker">Chapter {number}</p>\n<h1>{title_html}</h1>\n'
        f'<div class="slide-body"><ul class="outline">{outline}</ul></div>\n</div></section>')}]
    sections += page_slides_
    for name, nb_title, slides in notebooks:
        sections.append({"kind": "raw", "html": (
            f'<section class="slide divider"><div class="frame">\n<h2>{nb_title}</h2>\n'
            f'<div class="slide-body"><p class="file">{html.escape(name)}.ipynb</p></div>\n</div></section>')})
        sections += slides
    mathjax = {"tex": {"macros": macros},
               "options": {"ignoreHtmlClass": "mathjax_ignore", "processHtmlClass": "math"},
               "startup": {"typeset": True}}
    document = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chapter {number}: {html.escape(title_text)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="lib/reveal.js/dist/reset.css">
<link rel="stylesheet" href="lib/reveal.js/dist/reveal.css">
<link rel="stylesheet" href="lib/reveal.js/dist/theme/white.css">
<link rel="stylesheet" href="lib/pygments.css">
<style>{CSS}</style>
<script>window.MathJax = {json.dumps(mathjax)};</script>
<script defer src="lib/mathjax/tex-chtml.js"></script>
<script src="lib/reveal.js/dist/reveal.js"></script>
</head>
<body>
<div class="reveal"><div class="slides">
{chr(10).join(section(s) for s in sections)}
</div></div>
<script>window.addEventListener('load', () => {{{SCRIPT}}});</script>
</body>
</html>
"""
    path.write_text(document)
    return len(sections)


def copy_libraries(html_dir: Path, out: Path) -> None:
    mathjax = next((m for m in MATHJAX if (m / "tex-chtml.js").is_file()), None)
    missing = [what for what, ok in [("reveal.js 5 (bash scripts/install_vendor.sh slides)",
                                      (REVEAL / "dist/reveal.js").is_file()),
                                     ("MathJax 3 (bash scripts/install_vendor.sh)", mathjax is not None)]
               if not ok]
    if missing:
        raise SlideError("the decks load their JavaScript from local copies; missing: " + ", ".join(missing))
    lib = out / "lib"
    for src, dst in [(REVEAL / "dist", lib / "reveal.js/dist"),
                     (mathjax / "output/chtml/fonts/woff-v2", lib / "mathjax/output/chtml/fonts/woff-v2"),
                     (mathjax / "input/tex/extensions", lib / "mathjax/input/tex/extensions")]:
        if not dst.exists():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.map", "*.esm.js"))
    shutil.copy2(mathjax / "tex-chtml.js", lib / "mathjax/tex-chtml.js")
    pygments = html_dir / "_static/pygments.css"
    if pygments.is_file():
        shutil.copy2(pygments, lib / "pygments.css")
    else:
        (lib / "pygments.css").write_text("")


def write_index(out: Path, decks: list[tuple[str, str, bool]], book_title: str) -> None:
    rows = "".join(
        f'<li><a href="{name}.html">{html.escape(title)}</a>'
        + (f' (<a href="{name}.pdf">PDF</a>)' if pdf else "") + "</li>\n" for name, title, pdf in decks)
    (out / "index.html").write_text(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Lecture slides: {html.escape(book_title)}</title>
<link rel="icon" href="data:,">
<style>body {{ font-family: sans-serif; max-width: 46em; margin: 2em auto; line-height: 1.5; }}</style>
</head><body>
<h1>Lecture slides</h1>
<p>{html.escape(book_title)}: one reveal.js deck per chapter (press <kbd>F</kbd> for full screen,
<kbd>Esc</kbd> for an overview, <kbd>S</kbd> for the speaker view), and a PDF handout of each.</p>
<ul>
{rows}</ul>
</body></html>
""")


# --- PDF handouts -------------------------------------------------------------------------------

def print_pdfs(out: Path, decks: list[tuple[str, int]]) -> list[str]:
    """Print each deck to OUT/NAME.pdf with the system Chromium; returns warnings about tight fits."""
    chromium = find_chromium()
    if chromium is None:
        raise SlideError("the PDF handouts need Chromium (sudo apt-get install chromium), or pass --no-pdf")
    from playwright.sync_api import sync_playwright

    notes = []
    with serve(out) as base:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            for name, n_slides in decks:
                page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
                errors = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                page.route(lambda u: not u.startswith("http://127.0.0.1"), lambda route: route.abort())
                page.goto(f"{base}/{name}.html?print-pdf", wait_until="load")
                page.wait_for_function(f"window.deckReady && document.querySelectorAll('.pdf-page').length"
                                       f" === {n_slides}", timeout=60_000)
                if errors:
                    raise SlideError(f"{name}.html: {errors}")
                for fit, overflow, title in page.evaluate("""() => Array.from(document.querySelectorAll(
                        '.slides section')).map(s => [parseFloat(s.dataset.fit), s.dataset.overflow,
                        (s.querySelector('h2, h1') || s).innerText.slice(0, 60)])"""):
                    if overflow == "yes":
                        notes.append(f"{name}: slide '{title}' overflows even at the floor: show less on it")
                    elif fit < 0.9:
                        notes.append(f"{name}: slide '{title}' was shrunk to {fit:.0%} to fit")
                page.pdf(path=str(out / f"{name}.pdf"), prefer_css_page_size=True, print_background=True)
                page.close()
            browser.close()
    return notes


# --- main ---------------------------------------------------------------------------------------

def build(html_dir: Path, out: Path, pdf: bool) -> None:
    if not (html_dir / "index.html").is_file():
        raise SlideError(f"no built book at {html_dir}: run `make book` first (the decks are made from it)")
    book_root = book_root_for(html_dir)
    macros = tex_macros(book_root)
    book_title = yaml.safe_load((book_root / "_config.yml").read_text()).get("title", "")
    out.mkdir(parents=True, exist_ok=True)
    contents = []    # read and check every chapter before writing any deck
    for page, notebook_pages in chapters(book_root):
        number = int(Path(page).name[:2])
        entries = front_matter(book_root / f"{page}.md").get("slides")
        if not entries:
            raise SlideError(f"{page}.md has no `slides:` list in its front matter (see convention B)")
        deck = Deck(html_dir, out)
        soup = load_page(html_dir, page)
        h1 = soup.find("h1")
        title_html = re.sub(r"^\s*\d+\.\s*", "", deck.inner(h1, page))
        title_text = re.sub(r"^\s*\d+\.\s*", "", h1.get_text()).rstrip("#").strip()
        slides = page_slides(deck, soup, page, entries)
        notebooks = [(nb, *notebook_slides(deck, load_page(html_dir, nb), nb)) for nb in notebook_pages]
        contents.append((number, title_html, title_text, slides, notebooks))
    if not contents:
        raise SlideError(f"{book_root / '_toc.yml'} lists no numbered chapter (book/NN_name)")
    copy_libraries(html_dir, out)
    made = []
    for number, title_html, title_text, slides, notebooks in contents:
        name = f"ch{number:02d}"
        n = write_deck(out / f"{name}.html", number, title_html, title_text, book_title, slides, notebooks,
                       macros)
        made.append((name, f"Chapter {number}: {title_text}", n))
        print(f"wrote {out / name}.html: {n} slides")
    write_index(out, [(name, title, pdf) for name, title, _ in made], book_title)
    if pdf:
        start = time.perf_counter()
        notes = print_pdfs(out, [(name, n) for name, _, n in made])
        print(f"wrote {len(made)} PDF handouts in {time.perf_counter() - start:.0f} s")
        for note in notes:
            print(f"note: {note}")
    print(f"the decks: {out.resolve() / 'index.html'}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", required=True, type=Path, help="the built HTML book, e.g. _build/html")
    parser.add_argument("--out", required=True, type=Path, help="where the decks go, e.g. _build/slides")
    parser.add_argument("--pdf", action=argparse.BooleanOptionalAction, default=True,
                        help="also print a PDF handout of each deck (default: yes)")
    args = parser.parse_args(argv)
    try:
        build(args.html, args.out, args.pdf)
    except SlideError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
