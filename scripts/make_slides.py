"""`make slides`: one reveal.js deck per executed notebook (cells carry `slideshow` metadata).

The decks are made from the notebooks that `make book` executed, so they show the figures without
running anything again. When `scripts/install_vendor.sh slides` has installed reveal.js, jQuery,
require.js and MathJax 2 (nbconvert's slide template expects these versions), the decks load them
from `lib/` beside them, so the folder works offline (copy it to a USB stick for a lecture);
otherwise they load them from their CDNs.
"""
import shutil
import sys
from pathlib import Path

import nbformat
from nbconvert import SlidesExporter

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "_vendor" / "slides" / "node_modules"
# what to copy into lib/: (source inside node_modules, destination inside lib/)
LIBRARIES = [("reveal.js/dist", "reveal.js/dist"), ("reveal.js/plugin", "reveal.js/plugin"),
             ("jquery/dist/jquery.min.js", "jquery.min.js"), ("requirejs/require.js", "require.js"),
             ("mathjax2/MathJax.js", "mathjax/MathJax.js"), ("mathjax2/config", "mathjax/config"),
             ("mathjax2/extensions", "mathjax/extensions"), ("mathjax2/jax/input/TeX", "mathjax/jax/input/TeX"),
             ("mathjax2/jax/output/CommonHTML", "mathjax/jax/output/CommonHTML"),
             ("mathjax2/jax/element", "mathjax/jax/element"),
             ("mathjax2/fonts/HTML-CSS/TeX/woff", "mathjax/fonts/HTML-CSS/TeX/woff")]


def exporter_for(dest: Path) -> SlidesExporter:
    exporter = SlidesExporter()
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    if not all((VENDOR / src).exists() for src, _ in LIBRARIES):
        print("note: no local reveal.js/MathJax 2 (run `bash scripts/install_vendor.sh slides`); the decks use CDNs")
        return exporter
    for src, dst in LIBRARIES:
        target = dest / "lib" / dst
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if (VENDOR / src).is_dir() else shutil.copy2)(VENDOR / src, target)
    exporter.reveal_url_prefix = "lib/reveal.js"
    exporter.jquery_url = "lib/jquery.min.js"
    exporter.require_js_url = "lib/require.js"
    exporter.mathjax_url = "lib/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe"
    return exporter


def main(src: str, dest: str) -> None:
    src, dest = Path(src), Path(dest)
    notebooks = sorted(src.glob("*.ipynb"))
    if not notebooks:
        sys.exit(f"no executed notebooks in {src}: run `make book` first")
    dest.mkdir(parents=True, exist_ok=True)
    exporter = exporter_for(dest)
    for nb_path in notebooks:
        body, _ = exporter.from_notebook_node(nbformat.read(nb_path, as_version=4))
        out = dest / f"{nb_path.stem}.slides.html"
        out.write_text(body)
        print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python scripts/make_slides.py EXECUTED_NOTEBOOKS_DIR OUT_DIR")
    main(sys.argv[1], sys.argv[2])
