"""Copy the book's sources into a staging folder for the test build (`make test`).

nbmake then executes the staged notebooks in place (`--overwrite`), and the staged book is built
with `-W` and execution switched off: every notebook runs once per test run, and the HTML the
browser check opens shows the outputs of exactly that run. The working tree is never touched.
"""
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["_config.yml", "_toc.yml", "references.bib", "_static", "book", "notebooks", "benchmarks/results.md",
           "scripts/make_student.py"]


def main(dest: str) -> None:
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    for name in SOURCES:
        src, dst = ROOT / name, dest / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        else:
            shutil.copy2(src, dst)
    config = yaml.safe_load((dest / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"  # nbmake has already run them, outputs saved
    (dest / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"staged the book sources in {dest}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/stage_test_book.py DEST")
    main(sys.argv[1])
