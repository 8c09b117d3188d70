"""Drop repeated inline <script> blocks from every page.

Jupyter Book registers the inline scripts of sphinx-togglebutton and sphinx-thebe twice (once with
filename None, once with ''); the second thebe copy redeclares `const THEBE_JS_URL` and throws a
SyntaxError in the browser, which the browser check of `make test` reports. Identical scripts are
kept once.
"""


def _dedupe(app, pagename, templatename, context, doctree):
    if "script_files" not in context:
        return
    seen, unique = set(), []
    for script in context["script_files"]:
        attributes = getattr(script, "attributes", {})
        key = (getattr(script, "filename", script) or None, tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique


def setup(app):
    app.connect("html-page-context", _dedupe, priority=100)  # before handlers that return a template
    return {"parallel_read_safe": True, "parallel_write_safe": True}
