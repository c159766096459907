"""Sphinx extension: drop duplicate <script> entries from every page.

sphinx-thebe's configuration script is registered twice under Jupyter Book 1.0 with sphinx-book-theme 1.3,
(Sphinx 7.4 re-adds inline scripts with filename '' beside the original with None), so every page
declares `const THEBE_JS_URL` twice and the browser reports a SyntaxError. Keep one of each.
"""


def _dedupe(app, pagename, templatename, context, doctree) -> None:
    seen, unique = set(), []
    for js in context.get("script_files", []):
        # Sphinx re-adds registry scripts with filename '' where the first copy has None: same script.
        key = (str(getattr(js, "filename", js) or ""), repr(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)  # after MathJax adds its script (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
