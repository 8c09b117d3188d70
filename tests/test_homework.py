"""Homework from the tests (scripts/make_homework.py), for every homework of the instructor's guide.

Each homework is generated in a temporary folder and its tests run there in a subprocess, against
the copy of dgm in that folder: they must fail with the body removed and pass again once the
reference module is copied back over the student's (all homeworks in one subprocess, as the package is
then the book's byte for byte).
"""
import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_homework", ROOT / "scripts" / "make_homework.py")
make_homework = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_homework)


def guide_homeworks() -> list[tuple[str, list[str]]]:
    """(function, test ids) of each row of the guide's homework table."""
    rows = []
    for line in (ROOT / "book" / "instructor_guide.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"H\d+", cells[0]):
            target = re.fullmatch(r"`(dgm(?:\.\w+)+)`", cells[2])
            tests = re.findall(r"`(tests/[\w/]+\.py::[^`]+)`", cells[3])
            assert target and tests, f"unreadable homework row: {line}"
            rows.append((target.group(1), tests))
    return rows


HOMEWORKS = guide_homeworks()


def test_the_guide_lists_homeworks():
    assert 8 <= len(HOMEWORKS) <= 12, [h for h, _ in HOMEWORKS]
    assert len({h for h, _ in HOMEWORKS}) == len(HOMEWORKS), "a function is listed twice"


def _pytest(folder: Path, tests: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(folder / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("target, tests", HOMEWORKS, ids=[h for h, _ in HOMEWORKS])
def test_homework_fails_before_the_student_writes_it(tmp_path, target, tests):
    folder = make_homework.make_homework(target, tests, tmp_path / "hw")
    qualname = make_homework.find_function(target)[2]
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert f"PYTHONPATH=src python -m pytest {' '.join(tests)}" in readme
    before = _pytest(folder, tests)
    assert before.returncode == 1, before.stdout[-3000:]  # 1: tests ran and failed (not a collection error)
    assert f"Homework: implement {qualname}" in before.stdout, before.stdout[-3000:]  # the stub, from this copy


def test_every_homework_passes_with_the_reference_body(tmp_path):
    """Copy the reference module back into each homework: the package is then the book's, byte for byte,
    and all the homeworks' tests pass there (one subprocess for all of them: torch imports once)."""
    folders = []
    for k, (target, tests) in enumerate(HOMEWORKS):
        folder = make_homework.make_homework(target, tests, tmp_path / f"hw{k}")
        path = make_homework.find_function(target)[0]
        shutil.copy(path, folder / path.relative_to(ROOT))
        for src in sorted((ROOT / "src" / "dgm").glob("*.py")):
            assert (folder / "src" / "dgm" / src.name).read_bytes() == src.read_bytes(), (target, src.name)
        folders.append(folder)
    for folder in folders[1:]:  # one folder holds every test file the homeworks need
        for test_file in (folder / "tests").glob("*.py"):
            shutil.copy(test_file, folders[0] / "tests" / test_file.name)
    after = _pytest(folders[0], sorted({t for _, tests in HOMEWORKS for t in tests}))
    assert after.returncode == 0, after.stdout[-3000:]


def test_only_the_body_changes(tmp_path):
    folder = make_homework.make_homework("dgm.flows.AffineCoupling.forward",
                                         ["tests/test_flows.py::test_affine_coupling_log_det"], tmp_path / "hw")
    original = (ROOT / "src" / "dgm" / "flows.py").read_text(encoding="utf-8")
    student = (folder / "src" / "dgm" / "flows.py").read_text(encoding="utf-8")
    cls = next(n for n in ast.parse(original).body if isinstance(n, ast.ClassDef) and n.name == "AffineCoupling")
    node = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "forward")
    lines, new = original.splitlines(keepends=True), student.splitlines(keepends=True)
    start, end = node.body[0].lineno - 1, node.end_lineno  # forward has no docstring: the whole body goes
    assert new[:start] == lines[:start] and new[start + 1:] == lines[end:]
    assert new[start] == ("        raise NotImplementedError('Homework: implement AffineCoupling.forward in "
                          "src/dgm/flows.py (see README.md)')\n")
    for other in (ROOT / "src" / "dgm").glob("*.py"):
        if other.name != "flows.py":
            assert (folder / "src" / "dgm" / other.name).read_bytes() == other.read_bytes()
    assert sorted(p.name for p in (folder / "tests").iterdir()) == ["conftest.py", "test_flows.py"]
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "eq-flows-realnvp" in readme and "book/02_flows.md" in readme


def test_a_docstring_is_kept(tmp_path):
    folder = make_homework.make_homework("dgm.diffusion.posterior",
                                         ["tests/test_diffusion.py::test_posterior_matches_gaussian_conditioning"],
                                         tmp_path / "hw")
    tree = ast.parse((folder / "src" / "dgm" / "diffusion.py").read_text(encoding="utf-8"))
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "posterior")
    assert ast.get_docstring(node).startswith("Mean (shape of x0) and variance (B,) of q(x_{t-1} | x_t, x_0).")
    assert len(node.body) == 2 and isinstance(node.body[1], ast.Raise)
    assert [a.arg for a in node.args.args] == ["x0", "xt", "t", "betas"]


@pytest.mark.parametrize("target, test, message", [
    ("dgm.nope.f", "tests/test_flows.py::test_affine_coupling_log_det", "unknown module"),
    ("numpy.linalg.norm", "tests/test_flows.py::test_affine_coupling_log_det", "unknown module"),
    ("dgm.flows.nope", "tests/test_flows.py::test_affine_coupling_log_det",
     "dgm.flows has no function or class 'nope'"),
    ("dgm.flows.AffineCoupling.nope", "tests/test_flows.py::test_affine_coupling_log_det",
     "dgm.flows.AffineCoupling has no function or class 'nope'"),
    ("dgm.flows.AffineCoupling", "tests/test_flows.py::test_affine_coupling_log_det", "is a class"),
    ("dgm.flows.realnvp", "tests/test_flows.py::test_nope", "tests/test_flows.py has no test 'test_nope'"),
    ("dgm.flows.realnvp", "tests/test_nope.py::test_a", "expected tests/<file>.py::<test>"),
    ("dgm.flows.realnvp", "tests/test_flows.py", "expected tests/<file>.py::<test>"),
])
def test_clear_errors(tmp_path, target, test, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make_homework.make_homework(target, [test], tmp_path / "hw")
    assert not (tmp_path / "hw").exists()


def test_command_line(tmp_path):
    script = str(ROOT / "scripts" / "make_homework.py")
    ok = subprocess.run([sys.executable, script, "dgm.vdm.prior_term", "--tests",
                         "tests/test_vdm.py::test_prior_and_reconstruction_terms", "--out", str(tmp_path / "hw")],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and (tmp_path / "hw" / "README.md").is_file(), ok.stderr
    again = subprocess.run([sys.executable, script, "dgm.vdm.prior_term", "--tests",
                            "tests/test_vdm.py::test_prior_and_reconstruction_terms", "--out", str(tmp_path / "hw")],
                           capture_output=True, text=True)
    assert again.returncode == 1 and "exists and is not empty" in again.stderr
    bad = subprocess.run([sys.executable, script, "dgm.vdm.nope", "--tests", "tests/test_vdm.py::test_bad_input",
                          "--out", str(tmp_path / "hw2")], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error: dgm.vdm has no function or class 'nope'")
