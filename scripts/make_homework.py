"""Homework from the tests: a copy of dgm with one function's body removed, and the tests that check it.

    python scripts/make_homework.py dgm.diffusion.posterior \\
        --tests tests/test_diffusion.py::test_posterior_matches_gaussian_conditioning --out DIR

writes DIR/src/dgm (the package, byte for byte, except that the function's body is replaced by
`raise NotImplementedError(...)`; its signature and docstring stay), DIR/tests (the named tests'
files, tests/conftest.py and the local modules they import), DIR/pytest.ini and DIR/README.md
(what to implement, which equation of the book it is, and the command that checks it). The function
is found with `ast`, and only the lines of its body are edited. `make homework FUNC=... TESTS=...`
calls this script.
"""
import argparse
import ast
import io
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABEL = re.compile(r"\beq-[A-Za-z0-9-]*[A-Za-z0-9]")


def find_function(target: str, src: Path = ROOT / "src"):
    """(module file, qualified name, ast node, enclosing class or None) of `dgm.module.name[.method]`."""
    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        path = src.joinpath(*parts[:i]).with_suffix(".py")
        if parts[0] == "dgm" and path.is_file():
            break
    else:
        modules = ", ".join(sorted(p.stem for p in (src / "dgm").glob("*.py")))
        raise ValueError(f"unknown module in {target!r}: expected dgm.<module>.<function>, with a file "
                         f"src/dgm/<module>.py (modules: {modules})")
    module, names = ".".join(parts[:i]), parts[i:]
    scope, owner = ast.parse(path.read_text(encoding="utf-8")), None
    for depth, name in enumerate(names):
        defs = {n.name: n for n in scope.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
        if name not in defs:
            where = module + "".join(f".{n}" for n in names[:depth])
            raise ValueError(f"{where} has no function or class {name!r} (it defines: {', '.join(sorted(defs))})")
        owner, scope = (scope if depth else None), defs[name]
    if not isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
        raise ValueError(f"{target} is a class: name one of its methods, e.g. {target}.forward")
    return path, module, ".".join(names), scope, owner if isinstance(owner, ast.ClassDef) else None


def remove_body(text: str, node: ast.FunctionDef, message: str) -> tuple[str, str]:
    """`text` with the body of `node` (after its docstring) replaced by one raise line; also the removed lines."""
    lines = io.StringIO(text, newline="").readlines()  # split where ast counts lines
    body = node.body[1:] if ast.get_docstring(node, clean=False) is not None else node.body
    if not body:
        raise ValueError(f"{node.name} has only a docstring: there is no body to remove")
    if body[0].lineno == node.lineno:
        raise ValueError(f"{node.name} is written on one line: put its body on lines of its own")
    start = node.body[0].end_lineno if body is not node.body else body[0].lineno - 1  # 0-based first line
    while body is node.body and start > node.lineno and lines[start - 1].strip().startswith("#"):
        start -= 1  # comments just above the first statement belong to the body
    end = node.end_lineno  # 1-based last line, so lines[start:end] is the body
    indent = " " * body[0].col_offset
    newline = "\r\n" if lines[end - 1].endswith("\r\n") else "\n"
    stub = f"{indent}raise NotImplementedError({message!r}){newline}"
    return "".join(lines[:start] + [stub] + lines[end:]), "".join(lines[start:end])


def check_test_id(test_id: str) -> Path:
    """The test file of `tests/test_x.py::test_a[param]`, after checking that the test exists."""
    file, *names = test_id.split("::")
    path = ROOT / file
    if not names or not path.is_file() or path.parent != ROOT / "tests":
        raise ValueError(f"test id {test_id!r}: expected tests/<file>.py::<test>, with an existing file")
    scope = ast.parse(path.read_text(encoding="utf-8"))
    for name in names:
        name = name.split("[", 1)[0]  # a parametrised case: the function is what must exist
        defs = {n.name: n for n in scope.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
        if name not in defs:
            raise ValueError(f"test id {test_id!r}: {file} has no test {name!r}")
        scope = defs[name]
    return path


def local_imports(path: Path) -> set[Path]:
    """The modules of tests/ that a test file imports (such as conftest), found with ast."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        names += [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
        found |= {path.parent / f"{n}.py" for n in names if (path.parent / f"{n}.py").is_file()}
    return found


def equation_notes(text: str) -> list[str]:
    """For each equation label in `text`, the chapter page of the book that defines it."""
    notes = []
    for label in dict.fromkeys(LABEL.findall(text)):
        for page in sorted((ROOT / "book").glob("*.md")):
            source = page.read_text(encoding="utf-8")
            if f"$$ ({label})" in source:
                title = next((line[2:].strip() for line in source.splitlines() if line.startswith("# ")), page.stem)
                notes.append(f"- the equation labelled `{label}` in chapter \"{title}\" (`book/{page.name}`)")
                break
        else:
            notes.append(f"- `{label}` (named in the docstring)")
    return notes


def make_homework(target: str, tests: list[str], out: Path, force: bool = False) -> Path:
    path, module, qualname, node, owner = find_function(target)
    test_files = {check_test_id(t) for t in tests}
    if not tests:
        raise ValueError("name at least one test with --tests tests/test_x.py::test_a")
    if out.exists() and any(out.iterdir()) and not force:
        raise ValueError(f"{out} exists and is not empty (pass --force to replace it)")
    for old in (out / "src", out / "tests"):
        shutil.rmtree(old, ignore_errors=True)
    with open(path, encoding="utf-8", newline="") as f:  # keep the file's line endings as they are
        text = f.read()
    relative = path.relative_to(ROOT)
    stub, removed = remove_body(text, node, f"Homework: implement {qualname} in {relative} (see README.md)")
    shutil.copytree(ROOT / "src" / "dgm", out / "src" / "dgm", ignore=shutil.ignore_patterns("__pycache__"))
    with open(out / relative, "w", encoding="utf-8", newline="") as f:
        f.write(stub)
    (out / "tests").mkdir()
    files = test_files | {ROOT / "tests" / "conftest.py"}
    for file in list(files):
        files |= local_imports(file)
    for file in sorted(files):
        shutil.copy2(file, out / "tests" / file.name)
    (out / "pytest.ini").write_text("[pytest]\naddopts = -ra\n", encoding="utf-8")
    docstring = ast.get_docstring(node) or ""
    if not docstring and owner is not None:
        docstring = f"(The method has no docstring of its own; its class {owner.name} says:)\n\n"
        docstring += ast.get_docstring(owner) or ""
    equations = equation_notes(docstring + "\n" + removed) or [
        f"- the docstring names no labelled equation: see the chapter whose code is in `{module}`"]
    command = "PYTHONPATH=src python -m pytest " + " ".join(tests)
    readme = [f"# Homework: `{target}`", "",
              f"Write the body of `{qualname}` in `{relative}` (line {node.lineno}); its signature and docstring "
              "are kept, and the rest of the package is the book's reference code. Other functions that call "
              "this one fail until it is written.", "", "What it should do (its docstring):", "", "```text",
              docstring.strip(), "```", "", "The mathematics it implements:", "", *equations, "",
              "Check your answer from this folder (the test fails until the body is right):", "", "```bash",
              command, "```", ""]
    (out / "README.md").write_text("\n".join(readme), encoding="utf-8")
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="dgm.module.function or dgm.module.Class.method")
    parser.add_argument("--tests", nargs="+", required=True, help="test ids, tests/test_x.py::test_a")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--force", action="store_true", help="replace an existing homework folder")
    args = parser.parse_args(argv)
    try:
        out = make_homework(args.target, args.tests, args.out, args.force)
    except ValueError as error:
        sys.exit(f"error: {error}")
    print(f"homework in {out}/: see {out}/README.md")


if __name__ == "__main__":
    main()
