"""The built-book checker (scripts/check_book.py) on crafted pages: each fault fails, a good page passes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("check_book", ROOT / "scripts" / "check_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


IMAGE = {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"},
         "metadata": {}}
GLUED_IMAGE = {"output_type": "display_data", "metadata": {"scrapbook": {"name": "hist"}},
               "data": {"application/papermill.record/image/png": "iVBORw0KGgo="}}
REASON = {"output_type": "display_data", "metadata": {},
          "data": {"text/markdown": "This run has no class with masks, so there is no map to show.",
                   "text/plain": "<IPython.core.display.Markdown object>"}}
TEXT = {"output_type": "execute_result", "data": {"text/plain": "   layer  auroc"}, "metadata": {},
        "execution_count": 1}


def _notebook(path: Path, cells: list[tuple[str, list[dict]]]) -> Path:
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "code", "source": src, "outputs": outs, "metadata": {}, "execution_count": 1}
                    for src, outs in cells]}
    path.write_text(json.dumps(nb))
    return path


def _page(body: str) -> str:
    return f"<html><head><script>var s = '{{download}}`x <y>`';</script></head><body><main>{body}</main></body></html>"


GOOD_HTML = _page("""
<p>Over 3 data sets the best mean AUROC is at layer 7 (0.956), against 0.640 at layer 1.</p>
<ul><li><p>bottle, NPCA 50 % - none under the block reading</p></li><li><p>screw - none</p></li></ul>
<p>A difference (0.01) - small, as the interval says.</p>
<table><tr><th>ci_low</th></tr><tr><td>NaN</td></tr><tr><td>nan</td></tr></table>
<p>A layer without a null space has nothing to score by, and its column is empty (NaN).</p>
<div class="cell docutils container"><div class="cell_input docutils container"><div class="highlight-ipython3">
<pre>glue_text("csv_link", save_csv(df, page))  # {download}`...` not in this build</pre></div></div>
<div class="cell_output docutils container"><div class="output stream highlight-myst-ansi"><pre>Data: 3 classes</pre>
</div></div></div>
<div class="highlight-md notranslate"><pre>```{glue:md} findings</pre></div>
<p>Paste a value with <code class="docutils literal">{glue:text}`name`</code>.</p>
<p><a href="data/02_layers.csv">Download these results (CSV)</a></p>
""")


def test_a_good_notebook_and_page_pass(check, tmp_path):
    figures = check.figure_functions()
    assert {"score_histogram", "roc_figure"} <= figures and "stage_shapes" not in figures  # a table, not a figure
    nb = _notebook(tmp_path / "good.ipynb", [
        ("fig, ax = plt.subplots()\nax.plot([1, 2])\nplt.show()", [IMAGE]),
        ("score_histogram(labels, scores)", [IMAGE]),
        ("glue('hist', roc_figure(labels, scores), display=False)", [GLUED_IMAGE]),
        ("stage_shapes(page.backbone)", [TEXT]),
        ("table.round(3)  # not plt.show()", [TEXT]),
    ])
    assert check.figureless_cells(nb, figures) == []
    assert check.html_faults(GOOD_HTML, "good.html") == []


@pytest.mark.parametrize("source", [
    "fig = score_histogram(labels, scores)\nplt.show()",  # a tad.plots figure pyplot does not hold
    "fig, ax = plt.subplots()\nsns.heatmap(table, ax=ax)\nplt.close(fig)",
    "figs = [roc_figure(l, s) for l, s in runs]",
])
def test_a_cell_that_draws_without_an_image_fails(check, tmp_path, source):
    nb = _notebook(tmp_path / "07_backbones.ipynb", [("x = 1", []), (source, [TEXT])])
    (fault,) = check.figureless_cells(nb, check.figure_functions())
    assert fault.startswith("07_backbones: cell 2 draws but shows no figure")


def test_a_cell_that_draws_only_with_the_data_passes_when_it_says_why_there_is_no_figure(check, tmp_path):
    source = "if layout:\n    display(sample_grid(layout))\nelse:\n    display(Markdown(reason))"
    nb = _notebook(tmp_path / "01_data.ipynb", [(source, [REASON])])
    assert check.figureless_cells(nb, check.figure_functions()) == []
    nb = _notebook(tmp_path / "01_data.ipynb", [(source, [])])  # silent: the reader sees a gap
    assert len(check.figureless_cells(nb, check.figure_functions())) == 1


@pytest.mark.parametrize("body, expected", [
    ('<div class="cell_output docutils container"><div class="output text_plain highlight-myst-ansi">'
     "<pre>'{download}`Download these results (CSV) &lt;data/03_reduction.csv&gt;`'</pre></div></div>",
     "raw MyST shown as text: '{download}`'"),
    ("<p>{glue:md} findings :format: myst</p>", "raw MyST shown as text: '{glue:md}'"),
    ("<p>See {doc}`08b_selection` for the choice.</p>", "raw MyST shown as text: '{doc}`'"),
    ("<p>Which layer: {02_layers/best_layer} ({02_layers/best_mean})</p>", "unfilled reference '{02_layers/best_layer}'"),
    ("<ul><li><p>01_data: not in this build (that page computed no screw_layer1).</p></li></ul>",
     "placeholder 'not in this build'"),
    ("<p>09_maps: this page did not run in this build.</p>", "placeholder 'did not run in this build'"),
    ("<p>The worst class scores nan against 0.95.</p>", "placeholder 'nan'"),
    ('<div class="cell_output docutils container"><div class="output stderr highlight-myst-ansi"><pre>'
     "findfont: Font family ['STIXGeneral'] not found. Falling back to DejaVu Sans.</pre></div></div>",
     "a library's log line in a cell's output"),
    ("<p>Cells that depend on the basis: - bottle, NPCA 50 % - none under 'dims'. - screw, NPCA 10 % - all.</p>",
     "a list rendered as one paragraph"),
    ("<p>- layer 6, none: 5 images 0.545 [0.42, 0.67], 320 images 0.869 [0.79, 0.92] - layer 6, npca 50%: 5 "
     "images 0.546 [0.42, 0.67]</p>", "a list rendered as one paragraph"),
])
def test_a_page_showing_raw_myst_a_placeholder_or_a_collapsed_list_fails(check, body, expected):
    faults = check.html_faults(_page(body), "page.html")
    assert faults and all(f.startswith("page.html: ") for f in faults) and len(set(faults)) == len(faults)
    assert any(f.startswith(f"page.html: {expected}") for f in faults), faults


def test_the_command_fails_on_a_bad_book_and_passes_on_a_good_one(check, tmp_path, capsys):
    generated, html = tmp_path / "generated", tmp_path / "html"
    generated.mkdir()
    (html / "book").mkdir(parents=True)
    _notebook(generated / "02_layers.ipynb", [("plt.show()", [IMAGE])])
    (html / "book" / "02_layers.html").write_text(GOOD_HTML)
    assert check.main(["--generated", str(generated), "--html", str(html)]) == 0
    (html / "intro.html").write_text(_page("<p>13_uncertainty: this page did not run in this build.</p>"))
    _notebook(generated / "13_uncertainty.ipynb", [("fig = roc_figure(labels, scores)\nplt.show()", [])])
    assert check.main(["--generated", str(generated), "--html", str(html)]) == 1
    out = capsys.readouterr().out
    assert "FAIL: 13_uncertainty: cell 1 draws but shows no figure" in out
    assert "FAIL: intro.html: placeholder 'did not run in this build'" in out
    assert check.main(["--generated", str(tmp_path / "none"), "--html", str(html)]) == 1
