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
def test_notebook_setup_cell_uses_the_repository_url(nb):
    url = CONFIG["repository"]["url"]
    setup = source(cells(nb, "code")[0])
    assert "google.colab" in setup and f"git+{url}" in setup, \
        f"{nb.name}: the first code cell must install dgm from git+{url} in Colab"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_in_the_toc_and_has_slides(nb):
    assert f"notebooks/{nb.stem}" in (ROOT / "_toc.yml").read_text()
    kinds = [c.get("metadata", {}).get("slideshow", {}).get("slide_type") for c in cells(nb)]
    assert kinds.count("slide") >= 3, f"{nb.name}: mark section cells with slide metadata"
    intro = source(cells(nb, "markdown")[0])
    assert re.search(r"\d+\s*s\b.*CPU|CPU.*\d+\s*s\b", intro), f"{nb.name}: the first cell must state the CPU run time"


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
