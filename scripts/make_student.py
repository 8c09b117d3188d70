"""Write the student edition of every notebook: `make student` (or `python scripts/make_student.py`).

The notebooks hold their "Your turn" exercises with the solutions in place (the book shows this
instructor edition, the solutions collapsed). A code cell tagged `solution` marks its reference
answer with nbgrader's markers `### BEGIN SOLUTION` ... `### END SOLUTION`; the student edition
replaces those lines by `raise NotImplementedError("Your turn: <title>")` at the marker's
indentation, keeps the signature and docstring around them, drops the cell's `hide-input` tag
and clears every output. The check cell after it (tagged `check`) is kept as it is, so running it
tells the student whether the answer agrees with the book's oracle.

Why a small script and not nbgrader or otter-grader, although both make student versions from
the same kind of markers: nbgrader (0.9) works on a course directory (`source/`, `release/`,
`submitted/` per assignment) with a SQL gradebook (SQLAlchemy, alembic), and pulls JupyterLab 4,
Notebook 7 and the Jupyter server extensions into the pinned environment of the book build; a book
needs none of that to hand out notebooks. otter-grader (7.0) pulls pandas, jupytext, a Docker
client and a PDF exporter, and its assign format puts questions, solutions and tests in raw
`# BEGIN QUESTION` / `# BEGIN TESTS` cells that the published book would show. Because the markers
are nbgrader's, an instructor who does use nbgrader can still take these notebooks as its source.

Usage: python scripts/make_student.py [--notebooks notebooks] [--out _build/student]
writes OUT/notebooks/*.ipynb and OUT/student-notebooks.zip.
"""
import argparse
import copy
import json
import re
import zipfile
from pathlib import Path

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
TITLE = re.compile(r"^###\s+Your turn:\s*(.+?)\s*$")


def _tags(cell) -> list:
    return list(cell.get("metadata", {}).get("tags", []))


def _stub_source(source: str, where: str, title: str) -> str:
    """The cell's source with every BEGIN ... END block replaced by one `raise` line."""
    out, inside, found = [], False, False
    for number, line in enumerate(source.splitlines(keepends=True), 1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"{where}: line {number} opens a second '{BEGIN}' before '{END}'")
            inside = found = True
            indent = line[: len(line) - len(line.lstrip())]
            message = json.dumps(f"Your turn: {title}", ensure_ascii=False)
            out.append(f"{indent}raise NotImplementedError({message})\n")
        elif marker == END:
            if not inside:
                raise ValueError(f"{where}: line {number} has '{END}' without a '{BEGIN}' above it")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: '{BEGIN}' is never closed by '{END}'")
    if not found:
        raise ValueError(f"{where}: a cell tagged 'solution' needs its answer between '{BEGIN}' and '{END}'")
    return "".join(out).rstrip("\n")


def student_notebook(nb: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The student edition of `nb` (a copy): solutions replaced by stubs, outputs cleared.

    Raises ValueError naming `name` and the cell for a solution cell without markers, unmatched
    markers, or markers in a cell not tagged `solution`.
    """
    nb = copy.deepcopy(nb)
    title = "write this function"
    for index, cell in enumerate(nb.cells):
        where = f"{name}, cell {index}" + (f" (id {cell['id']})" if cell.get("id") else "")
        source, tags = cell.source, _tags(cell)
        if cell.cell_type == "markdown" and TITLE.match(source.split("\n", 1)[0]):
            title = TITLE.match(source.split("\n", 1)[0]).group(1)
        if "solution" in tags and cell.cell_type == "code":
            cell.source = _stub_source(source, where, title)
            cell.metadata["tags"] = [tag for tag in tags if tag != "hide-input"]
        elif any(line.strip() in (BEGIN, END) for line in source.splitlines()):
            raise ValueError(f"{where}: solution markers in a cell not tagged 'solution' (tags: {tags})")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", type=Path, default=Path("notebooks"), help="instructor notebooks")
    parser.add_argument("--out", type=Path, default=Path("_build/student"), help="output folder")
    args = parser.parse_args(argv)
    paths = sorted(args.notebooks.glob("*.ipynb"))
    if not paths:
        raise SystemExit(f"error: no notebooks in {args.notebooks}")
    folder = args.out / "notebooks"
    folder.mkdir(parents=True, exist_ok=True)
    archive = args.out / "student-notebooks.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in paths:
            try:
                student = student_notebook(nbformat.read(path, as_version=4), name=str(path))
            except ValueError as error:
                raise SystemExit(f"error: {error}") from None
            nbformat.write(student, folder / path.name)
            zf.write(folder / path.name, f"notebooks/{path.name}")
    print(f"{len(paths)} student notebooks in {folder}/ and {archive}")


if __name__ == "__main__":
    main()
