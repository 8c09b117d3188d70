"""Serve MathJax from a local copy, so the book reads (and is tested) without a network.

`make book` and `make test` install the npm package `mathjax@3` into `_vendor/`
(scripts/install_vendor.sh); the environment variable DGM_VENDOR_DIR points at its `node_modules`.
When it is there, the book loads `_static/mathjax/tex-chtml.js`; otherwise it falls back to
Sphinx's default CDN URL and says so. The copy is listed as an extra static path, not put under
`_static/`, because Jupyter Book adds every `.js` file under the source `_static/` folder to every
page. (Notebook widgets need no JavaScript: `nb_ipywidgets_js` is empty in _config.yml.)
"""
import os
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)
ASSETS = {"mathjax": "mathjax/es5"}  # name under _static/ -> folder inside node_modules


def _use_local_assets(app, config):
    modules = Path(os.environ.get("DGM_VENDOR_DIR", Path(app.confdir) / "_vendor/node_modules"))
    folders = {name: modules / sub for name, sub in ASSETS.items()}
    missing = [str(f) for f in folders.values() if not f.is_dir()]
    if missing:
        # Not a warning: a build without npm is still a correct (online) book.
        logger.info(f"offline_assets: {missing} not found; MathJax loads from its CDN")
        return
    staging = Path(app.outdir).parent / "_offline_static"
    staging.mkdir(parents=True, exist_ok=True)
    for name, folder in folders.items():
        link = staging / name
        if not link.exists():
            link.symlink_to(folder.resolve(), target_is_directory=True)
    config.html_static_path = list(config.html_static_path) + [str(staging)]
    config.mathjax_path = "mathjax/tex-chtml.js"
    logger.info(f"offline_assets: serving MathJax from {modules}")


def setup(app):
    app.connect("config-inited", _use_local_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
