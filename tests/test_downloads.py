"""The landing page's downloads (book/_ext/downloads.py): zips of the notebooks, made at build time.

A small Sphinx project holding a copy of notebooks/ (one of them given outputs, as an executed
staged notebook has) is built with the extension; the zips must hold every notebook exactly as the
repository stores it, and the student zip the student edition of each, and a page must show a
download's link exactly when its file was made.
"""
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = "https://github.com/example/dgm"
STUDENT_SCRIPT = ROOT / "scripts" / "make_student.py"
spec = importlib.util.spec_from_file_location("downloads", ROOT / "book" / "_ext" / "downloads.py")
downloads = importlib.util.module_from_spec(spec)
spec.loader.exec_module(downloads)

INDEX = """\
Test book
=========

.. only:: html and dgm_student_zip

   student zip linked

.. only:: html and dgm_pdf

   pdf linked
"""


def build(tmp_path: Path, with_student: bool) -> Path:
    src, out = tmp_path / "src", tmp_path / "out"
    shutil.copytree(ROOT / "notebooks", src / "notebooks")
    executed = sorted((src / "notebooks").glob("*.ipynb"))[0]  # as nbmake --overwrite leaves it
    nb = json.loads(executed.read_text())
    nb["metadata"]["language_info"] = {"name": "python"}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["execution_count"] = 1
            cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": ["ran\n"]}]
            cell["metadata"]["execution"] = {"iopub.status.idle": "2026-01-01T00:00:00Z"}
    executed.write_text(json.dumps(nb))
    if with_student:
        (src / "scripts").mkdir()
        shutil.copy(STUDENT_SCRIPT, src / "scripts")
    (src / "index.rst").write_text(INDEX)
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'book' / '_ext')!r})\n"
        "project = 'Test book'\nextensions = ['downloads']\nexclude_patterns = ['notebooks', 'scripts']\n"
        "html_theme = 'sphinx_book_theme'\n"
        f"html_theme_options = {{'repository_url': {REPOSITORY!r}}}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(src), str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_notebooks_zip_holds_every_notebook_as_stored(tmp_path):
    with_student = STUDENT_SCRIPT.is_file()
    out = build(tmp_path, with_student)
    stored = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert stored
    with zipfile.ZipFile(out / "downloads" / downloads.NOTEBOOKS_ZIP) as archive:
        assert sorted(archive.namelist()) == sorted(["README.txt"] + [f"notebooks/{p.name}" for p in stored])
        assert REPOSITORY in archive.read("README.txt").decode()
        for path in stored:
            data = archive.read(f"notebooks/{path.name}")
            assert data == path.read_bytes(), f"{path.name} differs from the stored notebook"
            cells = [c for c in json.loads(data)["cells"] if c["cell_type"] == "code"]
            assert all(c["outputs"] == [] and c["execution_count"] is None for c in cells), path.name

    page = (out / "index.html").read_text()
    assert "pdf linked" not in page  # no PDF was built, so none is linked
    assert ("student zip linked" in page) == with_student
    assert (out / "downloads" / downloads.STUDENT_ZIP).is_file() == with_student
    if with_student:
        student_notebook = downloads.load_student_notebook(STUDENT_SCRIPT)
        with zipfile.ZipFile(out / "downloads" / downloads.STUDENT_ZIP) as archive:
            assert sorted(archive.namelist()) == sorted(["README.txt"] + [f"notebooks/{p.name}" for p in stored])
            for path in stored:
                expected = downloads.student_edition(student_notebook, json.loads(path.read_text()))
                assert archive.read(f"notebooks/{path.name}").decode() == expected, path.name
                assert "### BEGIN SOLUTION" not in expected, path.name


def test_zips_are_reproducible(tmp_path):
    files = {"notebooks/a.ipynb": "{}\n", "README.txt": "read me\n"}
    downloads.write_zip(tmp_path / "one.zip", files)
    downloads.write_zip(tmp_path / "two.zip", dict(reversed(files.items())))
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()


def test_preface_links_each_download_under_its_tag():
    """Each link of the preface's Downloads section names a file the extension writes, inside an
    `{only}` block whose tag says that file exists (the notebooks zip is always made)."""
    preface = (ROOT / "book" / "preface.md").read_text()
    blocks = re.findall(r"```\{only\} (.+?)\n(.*?)```", preface, re.DOTALL)
    href = re.compile(r'href="\.\./downloads/([^"]+)"')
    links = {name: condition for condition, body in blocks for name in href.findall(body)}
    assert links == {
        downloads.NOTEBOOKS_ZIP: "html",
        downloads.STUDENT_ZIP: "html and dgm_student_zip",
        downloads.PDF: "html and dgm_pdf",
    }
    assert preface.count('href="../downloads/') == len(links)  # no link outside those blocks


@pytest.mark.skipif(shutil.which("xelatex") is None, reason="needs xelatex (Debian: texlive-xetex)")
def test_latex_preamble_defines_every_mathjax_macro(tmp_path):
    """The PDF's preamble, made from the HTML's MathJax macros, compiles and defines each of them
    (also where LaTeX already has the name), and an appendix's equations are numbered (B.n)."""
    macros = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]
    uses = []
    for name, value in macros.items():
        arity = value[1] if isinstance(value, list) else 0
        uses.append("$\\" + name + "{x}" * arity + "$")
    # what sphinx.sty (numfigreset=1, mathnumfig) does at \begin{document}: (2.1) in appendix B
    sphinx_numbering = "\\AtBeginDocument{\\def\\theequation{\\arabic{chapter}.\\arabic{equation}}}\n"
    appendix = "\\appendix\\setcounter{chapter}{1}\\chapter{Toolbox}\\begin{equation}x\\label{eq}\\end{equation}"
    (tmp_path / "macros.tex").write_text(
        "\\documentclass{report}\\usepackage{amsmath,amssymb}\n"
        + sphinx_numbering
        + downloads.latex_macros(macros) + "\n" + downloads.CHAPTER_PREFIXES
        + "\n\\begin{document}\n" + " ".join(uses) + "\n" + appendix + "\n\\end{document}\n"
    )
    result = subprocess.run(
        ["xelatex", "-interaction=nonstopmode", "-halt-on-error", "macros.tex"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "\\newlabel{eq}{{B.1}" in (tmp_path / "macros.aux").read_text()  # appendix B's equation is (B.1)


def test_latex_chapters_take_the_numbers_of_their_titles(tmp_path):
    """In the PDF, "6. Score matching" is chapter 6 (so its equations read (6.n)), "B. ..." is
    appendix B, and a page without a number (notation, back matter) is an unnumbered chapter."""
    src = tmp_path / "src"
    src.mkdir()
    pages = {"notation": "Notation", "one": "1. One", "seven": "7. Seven", "toolbox": "B. Toolbox"}
    pages["results"] = "Results"
    for name, title in pages.items():
        (src / f"{name}.rst").write_text(f"{title}\n{'=' * len(title)}\n\nText of {name}.\n")
    (src / "index.rst").write_text("Book\n====\n\n.. toctree::\n\n   " + "\n   ".join(pages) + "\n")
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'book' / '_ext')!r})\n"
        "project = 'Book'\nextensions = ['downloads']\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "latex", str(src), str(tmp_path / "latex")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tex = next((tmp_path / "latex").glob("*.tex")).read_text()
    chapters = re.findall(r"^(\\setcounter.*)\n+\\chapter\{(.*?)\}", tex, re.MULTILINE)
    assert chapters == [
        (r"\setcounter{secnumdepth}{-1}", "Notation"),
        (r"\setcounter{secnumdepth}{2}\setcounter{chapter}{0}", "One"),
        (r"\setcounter{secnumdepth}{2}\setcounter{chapter}{6}", "Seven"),
        (r"\setcounter{secnumdepth}{2}\appendix\setcounter{chapter}{1}", "Toolbox"),
        (r"\setcounter{secnumdepth}{-1}", "Results"),
    ], tex[tex.find(r"\chapter"):][:2000]
