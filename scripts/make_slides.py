"""`make slides`: one reveal.js deck per executed notebook (cells carry `slideshow` metadata).

The decks are made from the notebooks that `make book` executed, so they show the figures without
running anything again. Open `_build/slides/<name>.slides.html` in a browser; reveal.js and MathJax
load from their CDNs, as nbconvert's slide template does.
"""
import sys
from pathlib import Path

import nbformat
from nbconvert import SlidesExporter


def main(src: str, dest: str) -> None:
    src, dest = Path(src), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    exporter = SlidesExporter()
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    notebooks = sorted(src.glob("*.ipynb"))
    if not notebooks:
        sys.exit(f"no executed notebooks in {src}: run `make book` first")
    for nb_path in notebooks:
        body, _ = exporter.from_notebook_node(nbformat.read(nb_path, as_version=4))
        out = dest / f"{nb_path.stem}.slides.html"
        out.write_text(body)
        print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python scripts/make_slides.py EXECUTED_NOTEBOOKS_DIR OUT_DIR")
    main(sys.argv[1], sys.argv[2])
