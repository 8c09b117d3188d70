"""The student editions (scripts/make_student.py): stubs fail their checks, solutions pass them.

For every notebook with "Your turn" exercises, one fresh kernel runs the setup cell (the first code
cell) and then, exercise by exercise, the student's stub with its check (which must stop with the
stub's NotImplementedError and nothing else) and the reference solution with its check (which must
pass and print a line starting with ✓). The static tests check the exercise layout, that no later
cell depends on an exercise, and that the student edition differs only in its solution lines.
A small notebook built here tests the same machinery even where no notebook has exercises yet.
"""
import ast
import copy
import importlib.util
import symtable
import zipfile
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_student", ROOT / "scripts" / "make_student.py")
make_student = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_student)


def _tags(cell) -> list:
    return cell.get("metadata", {}).get("tags", [])


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


NOTEBOOKS = [p for p in sorted((ROOT / "notebooks").glob("*.ipynb"))
             if any("solution" in _tags(c) for c in _read(p).cells)]


def exercises(nb) -> list[tuple[int, int]]:
    """(solution cell index, check cell index) of each exercise; the check must come right after."""
    pairs = []
    for i, cell in enumerate(nb.cells):
        if "solution" in _tags(cell):
            after = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
            assert after is not None and after.cell_type == "code" and "check" in _tags(after), (
                f"cell {i} (solution) must be followed by a code cell tagged 'check'")
            pairs.append((i, i + 1))
    return pairs


def _run(client: NotebookClient, cell, index: int):
    """Execute one cell; return the CellExecutionError it raised, or None."""
    try:
        client.execute_cell(cell, index)
    except CellExecutionError as error:
        return error
    return None


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def run_exercises(instructor, student, name: str) -> None:
    """Setup cell, then each exercise as a student and as the instructor, in one fresh kernel."""
    first = next(i for i, c in enumerate(instructor.cells) if c.cell_type == "code")
    client = NotebookClient(copy.deepcopy(instructor), kernel_name="python3", timeout=120,  # a scratch copy
                            resources={"metadata": {"path": str(ROOT / "notebooks")}})
    with client.setup_kernel():
        error = _run(client, copy.deepcopy(instructor.cells[first]), first)
        assert error is None, f"{name}: the setup cell failed: {error}"
        for sol, chk in exercises(instructor):
            where = f"{name}, exercise in cell {sol}"
            # 1. the student's stub: running it or its check must stop at the stub
            error = _run(client, copy.deepcopy(student.cells[sol]), sol)
            if error is None:
                error = _run(client, copy.deepcopy(student.cells[chk]), chk)
            assert error is not None, f"{where}: the check passed on the student's stub"
            assert error.ename == "NotImplementedError" and "Your turn" in error.evalue, (
                f"{where}: the stub should stop with its NotImplementedError, got {error.ename}: {error.evalue}")
            # 2. the reference solution passes its check and says so
            assert (error := _run(client, copy.deepcopy(instructor.cells[sol]), sol)) is None, f"{where}: {error}"
            check = copy.deepcopy(instructor.cells[chk])
            assert (error := _run(client, check, chk)) is None, f"{where}: the check fails on the solution: {error}"
            assert any(line.startswith("✓") for line in _stdout(check).splitlines()), (
                f"{where}: the check printed no line starting with ✓: {_stdout(check)!r}")


def _python(source: str) -> ast.Module:
    return ast.parse(TransformerManager().transform_cell(source))  # `!pip`, `%time` become Python


def defined_names(tree: ast.Module) -> set[str]:
    """Names a cell binds at the top level (assignments, loops, imports, def, class)."""
    names, todo = set(), list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            continue  # their bodies are another scope
        if isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        if not isinstance(node, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            todo.extend(ast.iter_child_nodes(node))
    return names


def loaded_names(tree: ast.Module) -> set[str]:
    """Global names a cell reads, at the top level or inside its functions, lambdas and comprehensions."""
    names, tables = set(), [symtable.symtable(ast.unparse(tree), "<cell>", "exec")]
    while tables:
        table = tables.pop()
        top = table.get_type() == "module"
        names |= {s.get_name() for s in table.get_symbols() if s.is_referenced() and (top or s.is_global())}
        tables.extend(table.get_children())
    return names


def exercise_leaks(nb) -> list[str]:
    """Non-exercise cells that read a name whose latest binding came from a solution or check cell."""
    from_exercise, leaks = {}, []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tree = _python(cell.source)
        defined = defined_names(tree)
        if {"solution", "check"} & set(_tags(cell)):
            from_exercise.update(dict.fromkeys(defined, i))
            continue
        for name in sorted((loaded_names(tree) - defined) & set(from_exercise)):
            leaks.append(f"cell {i} uses {name!r}, defined by the exercise cell {from_exercise[name]}")
        for name in defined:
            from_exercise.pop(name, None)
    return leaks


def solution_lines(source: str) -> tuple[set[str], set[str]]:
    """Stripped lines inside the solution markers, and those outside them."""
    inside, outside, within = set(), set(), False
    for line in source.splitlines():
        if line.strip() in (make_student.BEGIN, make_student.END):
            within = line.strip() == make_student.BEGIN
        elif line.strip():
            (inside if within else outside).add(line.strip())
    return inside, outside


def check_static(instructor, student, name: str) -> None:
    assert len(student.cells) == len(instructor.cells)
    solutions = {sol for sol, _ in exercises(instructor)}
    for i, (a, b) in enumerate(zip(instructor.cells, student.cells)):
        if i in solutions:
            inside, outside = solution_lines(a.source)
            leaked = (set(map(str.strip, b.source.splitlines())) & inside) - outside
            assert not leaked, f"{name}, cell {i}: the student edition keeps solution lines {leaked}"
            assert "hide-input" in _tags(a) and "hide-input" not in _tags(b), f"{name}, cell {i}: hide-input tag"
            heading = instructor.cells[i - 1]
            assert heading.cell_type == "markdown" and heading.source.startswith("### Your turn:"), (
                f"{name}, cell {i}: a solution cell follows a markdown cell opening with '### Your turn:'")
        else:
            assert (b.cell_type, b.source, b.metadata) == (a.cell_type, a.source, a.metadata), (
                f"{name}, cell {i} differs in the student edition")
        assert make_student.BEGIN not in b.source and make_student.END not in b.source
        assert not b.get("outputs") and b.get("execution_count") is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_edition_layout(path):
    instructor = _read(path)
    check_static(instructor, make_student.student_notebook(instructor, path.name), path.name)
    leaks = exercise_leaks(instructor)
    assert not leaks, f"{path.name}: later cells depend on exercise cells: {leaks}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_stubs_fail_and_solutions_pass(path):
    instructor = _read(path)
    run_exercises(instructor, make_student.student_notebook(instructor, path.name), path.name)


# A small notebook in the book's format, so that the machinery is tested on its own.
SETUP = "import math\n\nfrom dgm.exercises import check_close\n\nx = 4.0"
SOLUTION = '''def root(x):
    """The square root, by Newton's method."""
    ### BEGIN SOLUTION
    y = x
    for _ in range(50):
        y = 0.5 * (y + x / y)
    return y
    ### END SOLUTION'''
CHECK = 'check_close("root", root(x), math.sqrt(x), atol=1e-9)'


def synthetic(solution: str = SOLUTION, check: str = CHECK, tags=("solution", "hide-input")):
    cells = [nbformat.v4.new_markdown_cell("# Notebook 0: a test"), nbformat.v4.new_code_cell(SETUP),
             nbformat.v4.new_markdown_cell("### Your turn: a square root\nWrite it."),
             nbformat.v4.new_code_cell(solution, metadata={"tags": list(tags)}),
             nbformat.v4.new_code_cell(check, metadata={"tags": ["check"]}),
             nbformat.v4.new_code_cell("print(math.sqrt(x))")]
    cells[5].outputs = [nbformat.v4.new_output("stream", text="2.0\n")]
    return nbformat.v4.new_notebook(cells=cells)


def test_synthetic_student_edition():
    nb = synthetic()
    student = make_student.student_notebook(nb, "synthetic.ipynb")
    assert student.cells[3].source == ('def root(x):\n    """The square root, by Newton\'s method."""\n'
                                       '    raise NotImplementedError("Your turn: a square root")')
    assert _tags(student.cells[3]) == ["solution"] and student.cells[5].outputs == []
    assert nb.cells[5].outputs, "the instructor notebook itself is left alone"
    check_static(nb, student, "synthetic")
    assert exercise_leaks(nb) == []
    run_exercises(nb, student, "synthetic")  # the stub fails its check, the solution passes it


def test_synthetic_machinery_catches_bad_exercises():
    wrong = synthetic(SOLUTION.replace("return y", "return y + 1e-3"))
    with pytest.raises(AssertionError, match="the check fails on the solution"):
        run_exercises(wrong, make_student.student_notebook(wrong), "wrong")
    leaky = synthetic()
    leaky.cells[5].source = "print(root(9.0))"
    assert exercise_leaks(leaky) == ["cell 5 uses 'root', defined by the exercise cell 3"]
    leaky.cells[5].source = "def twice(y):\n    return 2 * root(y)"
    assert exercise_leaks(leaky) == ["cell 5 uses 'root', defined by the exercise cell 3"]  # inside a function
    leaky.cells[5].source = "def root(x):\n    return x\n\nprint(root(9.0))"
    assert exercise_leaks(leaky) == []  # redefined by the cell that uses it
    leaky.cells[5].source = "print([root for root in range(3)], (lambda root: root)(1))"
    assert exercise_leaks(leaky) == []  # local names of a comprehension and a lambda


@pytest.mark.parametrize("solution, tags, message", [
    ("def root(x):\n    return x ** 0.5", ("solution",), "needs its answer between"),
    ("def root(x):\n    ### BEGIN SOLUTION\n    return x ** 0.5", ("solution",), "never closed"),
    ("def root(x):\n    return x ** 0.5\n    ### END SOLUTION", ("solution",), "without a '### BEGIN SOLUTION'"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\nr = 1\n### END SOLUTION", ("solution",), "second"),
    (SOLUTION, ("hide-input",), "not tagged 'solution'"),
])
def test_bad_markers_give_clear_errors(solution, tags, message):
    nb = synthetic(solution, tags=tags)
    nb.cells[3]["id"] = "cell-abc"
    with pytest.raises(ValueError, match=message) as error:
        make_student.student_notebook(nb, "bad.ipynb")
    assert str(error.value).startswith("bad.ipynb, cell 3 (id cell-abc)")


def test_command_writes_notebooks_and_zip(tmp_path, capsys):
    src = tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(synthetic(), src / "00_test.ipynb")
    make_student.main(["--notebooks", str(src), "--out", str(tmp_path / "student")])
    written = _read(tmp_path / "student" / "notebooks" / "00_test.ipynb")
    assert "NotImplementedError" in written.cells[3].source
    with zipfile.ZipFile(tmp_path / "student" / "student-notebooks.zip") as zf:
        assert zf.namelist() == ["notebooks/00_test.ipynb"]
    nbformat.write(synthetic(tags=("check",)), src / "01_bad.ipynb")
    with pytest.raises(SystemExit, match="01_bad.ipynb, cell 3"):
        make_student.main(["--notebooks", str(src), "--out", str(tmp_path / "student")])
