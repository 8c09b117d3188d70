"""Serve MathJax from a local copy so the built book reads (and is tested) without a network.

`make book` and `make test` install the npm package `mathjax@3` into `_mathjax/` and point the
environment variable DGM_MATHJAX_DIR at its `es5/` folder. When that folder exists the book loads
`_static/mathjax/tex-chtml.js`; otherwise it falls back to Sphinx's default CDN URL and says so.
The copy is listed as an extra static path, not put under `_static/`, because Jupyter Book adds
every `.js` file under the source `_static/` folder to every page.
"""
import os
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)


def _use_local_mathjax(app, config):
    es5 = Path(os.environ.get("DGM_MATHJAX_DIR", Path(app.confdir) / "_mathjax/node_modules/mathjax/es5"))
    if not (es5 / "tex-chtml.js").is_file():
        # Not a warning: a build without npm is still a correct (online) book.
        logger.info(f"offline_mathjax: no local MathJax at {es5}; using the CDN")
        return
    staging = Path(app.outdir).parent / "_mathjax_static"
    target = staging / "mathjax"
    if not target.exists():
        staging.mkdir(parents=True, exist_ok=True)
        target.symlink_to(es5.resolve(), target_is_directory=True)
    config.html_static_path = list(config.html_static_path) + [str(staging)]
    config.mathjax_path = "mathjax/tex-chtml.js"
    logger.info(f"offline_mathjax: serving MathJax from {es5}")


def setup(app):
    app.connect("config-inited", _use_local_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
