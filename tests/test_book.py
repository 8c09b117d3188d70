"""The book keeps its promises: named tests exist and name their equations back, notebooks are
stored clean, listed in the TOC, use the repository URL of _config.yml, and carry slide metadata."""
import ast
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
PAGES = sorted((ROOT / "book").glob("*.md"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TEST_REF = re.compile(r"tests/([\w/]+\.py)::(\w+)")
CHAPTER_PAGES = [p for p in PAGES if re.match(r"(\d\d|[A-Z])_", p.name)]
HEADER_TIME = re.compile(r"Runs in (\d+(?:\.\d+)?) to (\d+(?:\.\d+)?) s on a 2-core CPU")
LABEL = re.compile(r"\((?:eq|thm|lem|prop|def|cor|exa|ex|rem|sec)-[\w-]+\)")


def cells(nb_path, kind=None):
    nb = json.loads(nb_path.read_text())
    return [c for c in nb["cells"] if kind is None or c["cell_type"] == kind]


def source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def functions_in(path):
    tree = ast.parse(path.read_text())
    return {n.name: ast.get_docstring(n) or "" for n in tree.body if isinstance(n, ast.FunctionDef)}


def book_text():
    return "\n".join(p.read_text() for p in PAGES) + "\n".join(source(c) for nb in NOTEBOOKS for c in cells(nb))


def defined_labels():
    text = "\n".join(p.read_text() for p in PAGES)
    return set(re.findall(r"\$\$\s*\((eq-[\w-]+)\)", text)) | set(re.findall(r":label:\s*([\w-]+)", text)) \
        | set(re.findall(r"^\((sec-[\w-]+)\)=", text, re.M))


def test_every_test_named_in_the_book_exists():
    refs = set(TEST_REF.findall(book_text()))
    assert len(refs) >= 10, f"the book names only {len(refs)} tests"
    missing = [f"tests/{f}::{name}" for f, name in sorted(refs)
               if not (ROOT / "tests" / f).is_file() or name not in functions_in(ROOT / "tests" / f)]
    assert not missing, f"tests named in the book but not found: {missing}"


def test_named_tests_name_their_result_back():
    """Each test the book names has a docstring that cites an equation/theorem label defined in the book."""
    labels = defined_labels()
    bad = []
    for f, name in sorted(set(TEST_REF.findall(book_text()))):
        doc = functions_in(ROOT / "tests" / f).get(name, "")
        cited = {m.strip("()") for m in LABEL.findall(doc)}
        if not cited or not cited <= labels:
            bad.append(f"{f}::{name} cites {sorted(cited) or 'no label'}")
    assert not bad, bad


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(nb):
    dirty = [i for i, c in enumerate(cells(nb, "code")) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, f"{nb.name}: code cells {dirty} hold outputs (strip them before committing)"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_cells_have_unique_ids(nb):
    """nbformat 4.5 cell ids: without them every read warns, and tools cannot point at a cell."""
    ids = [c.get("id") for c in cells(nb)]
    assert None not in ids and len(set(ids)) == len(ids), f"{nb.name}: missing or repeated cell ids"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_setup_cell_uses_the_repository_url(nb):
    url = CONFIG["repository"]["url"]
    setup = source(cells(nb, "code")[0])
    assert "google.colab" in setup and f"git+{url}" in setup, \
        f"{nb.name}: the first code cell must install dgm from git+{url} in Colab"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_in_the_toc_and_marks_its_slides(nb):
    """The deck of a chapter shows the outputs of the cells tagged `slide` (scripts/make_slides.py)."""
    assert f"notebooks/{nb.stem}" in (ROOT / "_toc.yml").read_text()
    tags = [c.get("metadata", {}).get("tags", []) for c in cells(nb)]
    assert sum("slide" in t for t in tags) >= 2, f"{nb.name}: tag the cells whose outputs go on slides `slide`"
    assert all("slide" in t for t in tags if "slide-code" in t), f"{nb.name}: `slide-code` without `slide`"
    old = [i for i, c in enumerate(cells(nb)) if "slideshow" in c.get("metadata", {})]
    assert not old, f"{nb.name}: cells {old} still carry nbconvert's slideshow metadata (the decks use tags)"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_a_run_this_box(nb):
    """The first cell tells a student how to run the notebook: Colab link, local command, expected time."""
    intro = source(cells(nb, "markdown")[0])
    repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/{nb.name}"
    assert "> **Run this notebook.**" in intro, f"{nb.name}: the first cell needs the 'Run this notebook' box"
    assert colab in intro, f"{nb.name}: the box must link {colab}"
    assert "make env" in intro and f"notebooks/{nb.name}" in intro, f"{nb.name}: the box must give the local command"
    assert HEADER_TIME.search(intro), f"{nb.name}: the box must say 'Runs in X to Y s on a 2-core CPU'"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_header_time_matches_the_measured_time(nb):
    """The time a notebook's header promises brackets the wall time `make bench` last measured."""
    rows = json.loads((ROOT / "benchmarks/results.json").read_text())["notebooks"]
    measured = {r["notebook"]: r["wall_s"] for r in rows}
    assert nb.stem in measured, f"{nb.name} has no measured time: run `make bench`"
    low, high = map(float, HEADER_TIME.search(source(cells(nb, "markdown")[0])).groups())
    assert low <= measured[nb.stem] <= high, \
        f"{nb.name}: the header says {low:g} to {high:g} s, `make bench` measured {measured[nb.stem]:.1f} s"


def test_instructor_guide_times_are_the_measured_ones():
    """The syllabus gives each notebook's time as `make bench` last measured it (rounded to seconds)."""
    rows = json.loads((ROOT / "benchmarks/results.json").read_text())["notebooks"]
    measured = {r["notebook"]: r["wall_s"] for r in rows}
    listed = dict(re.findall(r"<\.\./notebooks/(\w+)>` \((\d+) s\)", (ROOT / "book/instructor_guide.md").read_text()))
    assert set(listed) == {nb.stem for nb in NOTEBOOKS}, f"the syllabus lists {sorted(listed)}"
    wrong = {stem: (int(t), round(measured[stem])) for stem, t in listed.items() if int(t) != round(measured[stem])}
    assert not wrong, f"syllabus time vs measured (s): {wrong}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_code_lines_fit_the_page(nb):
    """At most 88 characters per code line: longer lines are cut off in the book's text column."""
    long = [(i, line) for i, c in enumerate(cells(nb, "code")) for line in source(c).splitlines() if len(line) > 88]
    assert not long, f"{nb.name}: {len(long)} code lines over 88 characters, e.g. cell {long[0][0]}: {long[0][1]!r}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_figures_fit_the_text_column(nb):
    """At most two panels per row and at most 7 inches wide (100 dpi: the 688 px column shows them unshrunk).

    The browser check measures the rendered tick labels too; this catches the figure in the source.
    """
    code = "\n".join(source(c) for c in cells(nb, "code"))
    wide = [float(w) for w in re.findall(r"figsize=\(\s*([\d.]+)\s*,", code) if float(w) > 7.0]
    rows = [int(n) for n in re.findall(r"subplots\(\s*\d+\s*,\s*(\d+)", code) + re.findall(r"ncols=(\d+)", code)]
    assert not wide, f"{nb.name}: figures wider than 7 in: {wide}"
    assert all(n <= 2 for n in rows), f"{nb.name}: more than two panels in a row: {rows}"


@pytest.mark.parametrize("page", CHAPTER_PAGES, ids=lambda p: p.name)
def test_chapter_opens_with_prerequisites_and_objectives(page):
    text = page.read_text()
    box = re.search(r":::\{admonition\} Before you start\n(.*?)\n:::\n", text, re.S)
    assert box, f"{page.name}: open with a 'Before you start' admonition (prerequisites, learning objectives)"
    assert text.index(box.group(0)) < text.index("\n## "), f"{page.name}: the box belongs before the first section"
    body = box.group(1)
    assert "**Prerequisites.**" in body and "**Learning objectives.**" in body, body
    objectives = re.findall(r"^- ", body.split("**Learning objectives.**")[1], re.M)
    assert 3 <= len(objectives) <= 8, f"{page.name}: {len(objectives)} learning objectives"


@pytest.mark.parametrize("page", CHAPTER_PAGES, ids=lambda p: p.name)
def test_slide_labels_exist_on_their_page(page):
    """Every label a page's `slides:` front matter shows is defined on that page."""
    text = page.read_text()
    if not text.startswith("---\n"):
        pytest.skip(f"{page.name} has no slides front matter (appendices have no deck)")
    front = yaml.safe_load(text.split("---\n")[1])
    slides = front["slides"]
    assert 3 <= len(slides) <= 12 and all(s["title"] and s["show"] for s in slides), slides
    here = set(re.findall(r"\$\$\s*\(([\w-]+)\)", text)) | set(re.findall(r":label:\s*([\w-]+)", text)) \
        | set(re.findall(r"^\(([\w-]+)\)=", text, re.M)) | set(re.findall(r":name:\s*([\w-]+)", text))
    missing = [label for s in slides for label in s["show"] if label not in here]
    assert not missing, f"{page.name}: slides show labels not defined on the page: {missing}"


def test_chapter_numbers_prefix():
    """Equations, theorems and exercises are numbered per chapter: (7.8), Theorem 4.2, Exercise B.3."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("chapter_numbers", ROOT / "book/_ext/chapter_numbers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.chapter_of("book/07_ddpm") == "7" and module.chapter_of("notebooks/02b_coupling_flows") == "2"
    assert module.chapter_of("book/B_probability_toolbox") == "B" and module.chapter_of("book/preface") is None
    assert CONFIG["sphinx"]["config"]["math_numfig"] is True, "equations must be numbered through numfig"
    assert "chapter_numbers" in CONFIG["sphinx"]["local_extensions"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_use_no_book_only_macros(nb):
    """Book macros live in _config.yml (MathJax); Colab, Jupyter and the slides do not know them."""
    macros = CONFIG["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]
    text = "\n".join(source(c) for c in cells(nb, "markdown"))
    used = sorted(m for m in macros if re.search(rf"\\{m}(?![A-Za-z])", text))
    standard = {"tr"}  # \tr is not standard LaTeX, but guard against false hits on e.g. \triangle
    assert not [m for m in used if m not in standard], f"{nb.name} uses book-only macros {used}"


def test_toc_files_exist():
    toc = (ROOT / "_toc.yml").read_text()
    for entry in re.findall(r"(?:root|file):\s*(\S+)", toc):
        assert (ROOT / f"{entry}.md").is_file() or (ROOT / f"{entry}.ipynb").is_file(), entry


def test_requirements_pin_and_pyproject_stays_loose():
    reqs = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    reqs = [r for r in reqs if r]
    assert "torch==2.13.0" in reqs
    assert all("==" in r for r in reqs), [r for r in reqs if "==" not in r]
    pyproject = (ROOT / "pyproject.toml").read_text()
    deps = re.search(r"dependencies = \[(.*?)\]", pyproject, re.S).group(1)
    assert "==" not in deps and "torch>=" in deps


def test_labels_cited_in_code_exist():
    """Every equation/theorem label cited in a docstring of dgm or of a test is defined in the book."""
    labels = defined_labels()
    cited = {}
    for path in sorted((ROOT / "src" / "dgm").glob("*.py")) + sorted((ROOT / "tests").rglob("*.py")):
        for m in LABEL.findall(path.read_text()):
            cited.setdefault(m.strip("()"), path.name)
    unknown = {label: where for label, where in cited.items() if label not in labels}
    assert not unknown, f"labels cited in code but not defined in book/: {unknown}"
