"""The Colab promise: installing `dgm` from the repository keeps the torch that is already there.

Every notebook's setup cell runs `pip install -q "dgm @ git+<repository url>"` in Colab, whose
environment already holds its own CUDA build of torch. pyproject.toml gives only loose lower bounds
so that pip keeps that torch instead of replacing it with a download of several gigabytes, or with
a build for the wrong CUDA version. This test replays the setup cell offline:

- the repository is cloned into a temporary folder and installed from a `git+file://` URL, the
  way pip installs from GitHub (pip clones the URL, builds a wheel and installs it);
- a fresh virtual environment stands in for Colab's: it holds its own "torch" with a version that
  is not this machine's (a small wheel written here, `2.9.0+cu126`, like a Colab build);
- dgm's other dependencies (numpy, matplotlib, ...) and pip itself are made visible without a
  network through a `.pth` file that appends a view of this environment's site-packages; that
  view also holds this environment's real torch, so the test first checks that pip and Python take
  the new environment's own torch, which stands first on sys.path, as Colab's pip sees only Colab's.

Not covered here: build isolation (pip's default, which fetches setuptools from PyPI into a
temporary environment: here `--no-build-isolation` takes setuptools from this environment), the
network and GitHub itself, a real CUDA torch (the stand-in has no code: the test checks what pip
does, not that dgm runs on it), and Colab's own Python and pip versions (pip here is this
environment's). It installs the committed state of the repository (a clone), as Colab would.
"""
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAKE_TORCH = "2.9.0+cu126"  # a Colab-like CUDA build; this machine's torch is another version


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def write_fake_torch_wheel(folder: Path) -> Path:
    """A minimal wheel of a distribution "torch" (version FAKE_TORCH) holding torch/__init__.py."""
    dist_info = f"torch-{FAKE_TORCH}.dist-info"
    files = {
        "torch/__init__.py": f'"""A stand-in for a preinstalled torch."""\n__version__ = "{FAKE_TORCH}"\n',
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {FAKE_TORCH}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test_colab_install\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = "".join(f"{name},{_record_hash(text.encode())},{len(text.encode())}\n" for name, text in files.items())
    files[f"{dist_info}/RECORD"] = record + f"{dist_info}/RECORD,,\n"
    wheel = folder / f"torch-{FAKE_TORCH}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


def dependency_view(folder: Path) -> Path:
    """Symlinks to this environment's site-packages entries, except dgm itself (so dgm is not
    already installed in the new environment, as in Colab)."""
    folder.mkdir()
    sources = dict.fromkeys(Path(sysconfig.get_paths()[key]) for key in ("purelib", "platlib"))
    for source in sources:
        for entry in source.iterdir():
            name = entry.name.lower()
            if name.startswith(("dgm-", "dgm.", "__editable__.dgm", "__editable___dgm")) or name == "dgm":
                continue
            if not (folder / entry.name).exists():
                (folder / entry.name).symlink_to(entry)
    return folder


def run(*command, cwd=None):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def query(python: Path, code: str):
    """Run `code` (which prints one JSON value) in the new environment's interpreter."""
    result = run(python, "-c", code)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_installing_dgm_from_git_keeps_the_preinstalled_torch(tmp_path):
    # 1. The repository, cloned as pip would fetch it from GitHub.
    clone = tmp_path / "clone"
    result = run("git", "clone", "--quiet", ROOT, clone)
    assert result.returncode == 0, result.stderr

    # 2. "Colab": a fresh environment with its own torch, and the other dependencies visible.
    # It has no pip of its own: the ensurepip copy bundled with Python 3.11 (pip 23.2) rejects a
    # git+file:/// URL; the appended view supplies this environment's pip (newer, like Colab's).
    venv = tmp_path / "colab"
    result = run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert result.returncode == 0, result.stderr
    python = venv / "bin" / "python"
    site = Path(query(python, "import json, sysconfig; print(json.dumps(sysconfig.get_paths()['purelib']))"))
    view = dependency_view(tmp_path / "dependencies")
    (site / "zz_dependencies.pth").write_text(f"{view}\n")
    result = run(python, "-m", "pip", "install", "--quiet", "--no-index", write_fake_torch_wheel(tmp_path))
    assert result.returncode == 0, result.stderr

    # Two torches are now visible: the environment's own first, then this machine's, appended.
    # Python and pip (which keeps the first distribution of each name on sys.path) must take the own.
    torches = query(
        python,
        "import importlib.metadata as m, json; "
        "print(json.dumps([[d.version, str(d.locate_file(''))] for d in m.distributions(name='torch')]))",
    )
    assert len(torches) == 2 and torches[0] == [FAKE_TORCH, str(site)], torches
    assert torches[1][0] != FAKE_TORCH
    listed = run(python, "-m", "pip", "list", "--format=json")
    assert listed.returncode == 0, listed.stderr
    assert {"name": "torch", "version": FAKE_TORCH} in json.loads(listed.stdout)

    # 3. The setup cell's command, offline.
    url = f"dgm @ git+file://{clone}"
    result = run(python, "-m", "pip", "install", "--no-index", "--no-build-isolation", url)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)[1]
    installed = [line for line in output.splitlines() if line.startswith("Successfully installed")]
    assert installed == [f"Successfully installed dgm-{version}"], output  # dgm and nothing else
    assert "uninstall" not in output.lower(), output
    # pip's own view: the requirement is met by the environment's torch, not the appended one.
    kept = [line for line in output.splitlines() if line.startswith("Requirement already satisfied: torch")]
    assert len(kept) == 1 and f" in {site} " in kept[0] and kept[0].endswith(f"({FAKE_TORCH})"), output

    # 4. torch is still the environment's own; dgm's metadata is installed in the environment.
    assert query(python, "import importlib.metadata as m, json; print(json.dumps(m.version('torch')))") == FAKE_TORCH
    assert query(python, "import json, torch; print(json.dumps(torch.__version__))") == FAKE_TORCH
    dgm = query(
        python,
        "import importlib.metadata as m, json; d = m.distribution('dgm'); "
        "print(json.dumps([d.version, str(d.locate_file('')), d.requires]))",
    )
    assert dgm[0] == version
    assert dgm[1] == str(site)
    assert "torch>=2.1" in dgm[2]
    direct_url = query(
        python, "import importlib.metadata as m, json; print(m.distribution('dgm').read_text('direct_url.json'))"
    )
    assert direct_url["url"] == f"file://{clone}" and direct_url["vcs_info"]["vcs"] == "git"
