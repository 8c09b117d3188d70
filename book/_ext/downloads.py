"""Make the landing page's downloads at build time, so they always match the book being built.

The HTML build writes, under `downloads/` of its output folder:

- `dgm-notebooks.zip`: every notebook of `notebooks/` as stored in the repository, without outputs
  (a staged test book holds executed notebooks; their outputs and execution counts are removed);
- `dgm-notebooks-student.zip`: the student editions, each notebook passed through
  `student_notebook(nb)` of `scripts/make_student.py` (solution code replaced by stubs). The script
  is loaded by path; without it this zip is not made and the build says so.

Each zip also holds a short README.txt with the install command. A whole-book PDF made earlier by
`jupyter-book build . --builder pdflatex` (`_build/latex/book.pdf`) is copied next to them.

The preface links each file inside an `{only}` block: the extension sets the Sphinx tags
`dgm_student_zip` and `dgm_pdf` when those files will exist, so a build never links a missing file.
The zips are written with fixed timestamps, so the same notebooks give byte-identical zips.

For the PDF (the LaTeX builder) the extension also defines the book's math macros in the LaTeX
preamble, from the same `mathjax3_config` the HTML uses (one list of macros), and, where the TeX
installation has no `bbm.sty` (Debian ships it only in texlive-fonts-extra, 1.4 GB), writes a
two-line stand-in next to book.tex: Jupyter Book's LaTeX class loads `bbm` for `\\mathbbm`, which
the book never uses. Finally it makes LaTeX's chapter numbers those of the chapter titles
("6. Score matching ..." becomes chapter 6, "B. Probability toolbox" appendix B; pages without a
number, such as the notation page and the back matter, are unnumbered chapters), so the PDF's
"Chapter 6", "(6.3)" and "(B.32)" agree with the page titles (and with the HTML's numbers) instead
of counting the notation page as chapter 1.
"""
import importlib.util
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import nbformat
from docutils import nodes
from sphinx import addnodes
from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)
FOLDER = "downloads"  # under the HTML output folder; the preface (book/preface.html) links ../downloads/
NOTEBOOKS_ZIP = "dgm-notebooks.zip"
STUDENT_ZIP = "dgm-notebooks-student.zip"
PDF = "dgm-book.pdf"
ZIP_DATE = (2026, 1, 1, 0, 0, 0)
CHAPTER_NUMBER = re.compile(r"(\d{1,2}|[A-Z])\.\s+")  # "7. Denoising ...", "B. Probability toolbox"
BBM_STANDIN = r"""% Written by book/_ext/downloads.py: no bbm.sty was found. jupyterBook.cls loads bbm only for
% \mathbbm (its \RR, \NN, \PP), which the book does not use; amssymb's \mathbb stands in.
\ProvidesPackage{bbm}[2026/01/01 stand-in]
\providecommand{\mathbbm}[1]{\mathbb{#1}}
"""
README = """\
{title}

{edition}

To run a notebook in Google Colab, upload it there; its first cell installs the book's package.
To run them on your own computer, install the package first (Python >= 3.10):

    pip install "dgm @ git+{url}"

The notebooks, the derivation pages they accompany and the tests are in that repository.
"""


def stored_notebook(path: Path) -> dict:
    """A notebook as the repository stores it: no outputs, execution counts or run metadata."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for key in ("language_info", "widgets"):  # written by the kernel and the client that ran it
        nb.get("metadata", {}).pop(key, None)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)  # nbclient's timing record
    return nb


def dumps(nb: dict) -> str:
    """The repository's notebook format: JSON, indent 1, UTF-8, final newline."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def load_student_notebook(script: Path):
    """`student_notebook(nb) -> nb` from scripts/make_student.py, loaded by path (not a package)."""
    spec = importlib.util.spec_from_file_location("dgm_make_student", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.student_notebook


def student_edition(student_notebook, nb: dict) -> str:
    """The student edition of a stored notebook, read and written the nbformat way."""
    nb = json.loads(dumps(nb))
    for index, cell in enumerate(nb["cells"]):
        cell.setdefault("id", f"cell-{index}")  # nbformat would invent random ids: keep zips reproducible
    return nbformat.writes(student_notebook(nbformat.reads(dumps(nb), as_version=4))) + "\n"


def latex_macros(macros: dict) -> str:
    """LaTeX definitions of MathJax macros ({name: body} or {name: [body, number of arguments]})."""
    lines = []
    for name, value in macros.items():
        body, arity = value if isinstance(value, list) else (value, 0)
        arguments = f"[{arity}]" if arity else ""
        # \providecommand first: \renewcommand then works whether or not LaTeX already has the name
        lines.append(f"\\providecommand{{\\{name}}}{{}}\\renewcommand{{\\{name}}}{arguments}{{{body}}}")
    return "\n".join(lines)


def write_zip(path: Path, files: dict) -> None:
    """Write {name inside the zip: text} with fixed timestamps (reproducible bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name].encode("utf-8"))


def _paths(app):
    src = Path(app.srcdir)
    return {
        "notebooks": src / app.config.downloads_notebooks,
        "student": src / app.config.downloads_student_script if app.config.downloads_student_script else None,
        "pdf": Path(app.outdir).parent / "latex" / "book.pdf",
    }


# sphinx.sty prefixes figure, table and equation numbers with \arabic{chapter}, so appendix B's
# equations would read (2.32); \thechapter gives (B.32). Run after sphinx.sty's own AtBeginDocument.
CHAPTER_PREFIXES = r"""\makeatletter
\AtBeginDocument{%
  \def\thefigure{\ifnum\c@chapter>\z@\thechapter.\fi\arabic{figure}}%
  \def\thetable{\ifnum\c@chapter>\z@\thechapter.\fi\arabic{table}}%
  \def\theequation{\ifnum\c@chapter>\z@\thechapter.\fi\arabic{equation}}%
}
\makeatother"""


# Inline code may break after "." and "/" (Sphinx's inlineliteralwraps); the long test ids of the
# "Checked numerically" notes (tests/test_x.py::test_a_long_name) also need breaks after "_".
LITERAL_BREAKS = r"""\makeatletter
\AtBeginDocument{%
  \let\dgm@upquote\sphinxupquote
  \protected\def\sphinxupquote#1{{\let\dgm@us\_\def\_{\dgm@us\discretionary{}{}{}}\dgm@upquote{#1}}}%
}
\makeatother"""


def _latex_preamble(app, config):
    macros = (config.mathjax3_config or {}).get("tex", {}).get("macros", {})
    preamble = [config.latex_elements.get("preamble", ""), latex_macros(macros)]
    if config.numfig and config.math_numfig:
        preamble.append(CHAPTER_PREFIXES)
    preamble.append(LITERAL_BREAKS)
    config.latex_elements = {**config.latex_elements, "preamble": "\n".join(preamble)}


def _latex_bbm(app):
    found = shutil.which("kpsewhich") and subprocess.run(
        ["kpsewhich", "bbm.sty"], capture_output=True, text=True
    ).stdout.strip()
    if not found:
        Path(app.outdir).mkdir(parents=True, exist_ok=True)
        (Path(app.outdir) / "bbm.sty").write_text(BBM_STANDIN)
        logger.info("downloads: no bbm.sty in the TeX installation; wrote a stand-in for \\mathbbm")


def _latex_chapter_numbers(app, doctree, docname):
    """Before each chapter of the assembled LaTeX document, set LaTeX's chapter counter to the
    number in the chapter's title and drop that number from the title (LaTeX prints its own)."""
    if app.builder.format != "latex":
        return
    chapters = set(app.env.toctree_includes.get(app.config.root_doc, []))
    in_appendix = False
    for start in list(doctree.findall(addnodes.start_of_file)):
        section = next((child for child in start.children if isinstance(child, nodes.section)), None)
        if start["docname"] not in chapters or section is None:
            continue
        text = next(iter(section[0].findall(nodes.Text)), None)
        match = CHAPTER_NUMBER.match(text.astext()) if text is not None else None
        if match is None:
            latex = r"\setcounter{secnumdepth}{-1}"  # an unnumbered chapter
        else:
            label = match.group(1)
            latex = r"\setcounter{secnumdepth}{2}"  # sphinxmanual's default: chapter.section.subsection
            if not label.isdigit() and not in_appendix:
                latex += r"\appendix"
                in_appendix = True
            latex += rf"\setcounter{{chapter}}{{{int(label) - 1 if label.isdigit() else ord(label) - ord('A')}}}"
            text.parent.replace(text, nodes.Text(text.astext()[match.end():]))
        start.insert(start.index(section), nodes.raw("", latex + "\n", format="latex"))


def _set_tags(app):
    if app.builder.format == "latex":
        _latex_bbm(app)
    if app.builder.format != "html":
        return
    paths = _paths(app)
    if paths["student"] is not None and paths["student"].is_file():
        app.tags.add("dgm_student_zip")
    else:
        logger.info(f"downloads: {paths['student']} not found; no student zip this build")
    if paths["pdf"].is_file():
        app.tags.add("dgm_pdf")
    else:
        logger.info(f"downloads: no PDF at {paths['pdf']} (make it with --builder pdflatex first)")


def _write_downloads(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    paths = _paths(app)
    notebooks = sorted(paths["notebooks"].glob("*.ipynb"))
    if not notebooks:
        logger.warning(f"downloads: no notebooks in {paths['notebooks']}")
        return
    out = Path(app.outdir) / FOLDER
    url = app.config.html_theme_options.get("repository_url", "")
    readme = {"title": app.config.html_title or app.config.project, "url": url}
    stored = {f"notebooks/{p.name}": stored_notebook(p) for p in notebooks}
    files = {name: dumps(nb) for name, nb in stored.items()}
    files["README.txt"] = README.format(edition="The notebooks, as in the book (without outputs).", **readme)
    write_zip(out / NOTEBOOKS_ZIP, files)
    made = [NOTEBOOKS_ZIP]
    if app.tags.has("dgm_student_zip"):
        student_notebook = load_student_notebook(paths["student"])
        files = {}
        for name, nb in stored.items():
            try:
                files[name] = student_edition(student_notebook, nb)
            except ValueError as error:  # a malformed "Your turn" exercise: fail the build, name it
                raise ExtensionError(f"downloads: the student edition of {name}: {error}") from error
        edition = "The student edition: each 'Your turn' solution is replaced by a stub to fill in."
        files["README.txt"] = README.format(edition=edition, **readme)
        write_zip(out / STUDENT_ZIP, files)
        made.append(STUDENT_ZIP)
    if app.tags.has("dgm_pdf"):
        shutil.copyfile(paths["pdf"], out / PDF)
        made.append(PDF)
    logger.info(f"downloads: wrote {', '.join(made)} ({len(notebooks)} notebooks) to {out}")


def setup(app):
    app.add_config_value("downloads_notebooks", "notebooks", "env")
    app.add_config_value("downloads_student_script", "scripts/make_student.py", "env")
    app.connect("config-inited", _latex_preamble)
    app.connect("builder-inited", _set_tags)
    app.connect("doctree-resolved", _latex_chapter_numbers)
    app.connect("build-finished", _write_downloads)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
