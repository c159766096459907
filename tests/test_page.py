"""tad.book (page, glue, format, ranking): data discovery with its fallback, the results vocabulary, formatting, glue and downloads."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from conftest import make_synthetic_mvtec
from tad.data import MVTEC_CATEGORIES, load_elpv
from tad.book.page import FALLBACK, keep_needed, open_page, download_notice, resolve_data, save_csv
from tad.book.glue import glue_text, read_glued, restate
from tad.book.format import auroc_entry, ci_text, config_label, format_value, show_table
from tad.book.ranking import select_trials

pytestmark = pytest.mark.filterwarnings("ignore::tad.data.DataWarning")  # synthetic classes have few images


@pytest.fixture
def mvtec_root(tmp_path):
    """Two official class names (synthetic images, 32 px) and one user folder."""
    for name in ("screw", "bottle", "my_parts"):
        make_synthetic_mvtec(tmp_path, name, n_train=4, n_test_good=2, n_test_defective=3, size=32)
    return tmp_path


# --- data discovery ------------------------------------------------------------------------------------


def test_resolve_data_without_classes_takes_every_class_present_official_ones_first(mvtec_root):
    (mvtec_root / "notes").mkdir()  # not in MVTec layout: not a class
    names, notices = resolve_data(mvtec_root, None)
    assert names == ["bottle", "screw", "my_parts"]  # official order, then the user's own folder
    assert notices == []


@pytest.mark.parametrize("root", [None, "empty", "missing"])
def test_resolve_data_falls_back_to_elpv_with_one_notice_when_no_class_is_present(tmp_path, root):
    if root == "empty":
        root = tmp_path
    elif root == "missing":
        root = tmp_path / "nope"
    names, notices = resolve_data(root, None)
    assert names == [FALLBACK]
    assert len(notices) == 1 and "ELPV" in notices[0] and "\n" not in notices[0]


def test_resolve_data_drops_absent_requested_classes_with_a_notice_naming_them(mvtec_root):
    names, notices = resolve_data(mvtec_root, ["hazelnut", "bottle", "my_parts", "elpv_poly"])
    assert names == ["bottle", "my_parts", "elpv_poly"]
    assert len(notices) == 1 and "hazelnut" in notices[0]


def test_resolve_data_rejects_a_name_that_is_no_class_anywhere(mvtec_root):
    with pytest.raises(ValueError, match="botle"):
        resolve_data(mvtec_root, ["botle"])


def test_keep_needed_leaves_out_data_without_masks_and_says_which(mvtec_root):
    from tad.data import load_mvtec

    bottle = load_mvtec(mvtec_root, "bottle")
    elpv = load_elpv("mono")
    kept, missing = keep_needed([bottle, elpv], ["masks"])
    assert [s.name for s in kept] == ["bottle"]
    assert "elpv_mono" in missing and "mask" in missing and missing.count(".") == 1
    kept, missing = keep_needed([elpv], ["mvtec"])
    assert kept == [] and "elpv_mono" in missing
    assert keep_needed([bottle], ["masks", "mvtec"]) == ([bottle], "")


def test_open_page_on_an_empty_data_root_runs_on_elpv_and_creates_its_folders(tmp_path, capsys):
    page = open_page("demo", data_root=tmp_path / "empty", cache_dir=tmp_path / "c",
                     results=tmp_path / "r" / "grid.jsonl", download_dir=tmp_path / "d")
    assert page.names == [FALLBACK]
    assert all(p.is_dir() for p in (page.cache_dir, page.results.parent, page.download_dir))
    out = " ".join(capsys.readouterr().out.split())  # printed lines are wrapped
    assert "ELPV" in out and "none of the 15 MVTec AD classes" in out
    assert "tf_efficientnet_lite0.in1k" in out and "tf_efficientnet_b5" in out
    assert page.input_size == page.backbone.input_size and "native size" in out


def test_open_page_reports_classes_present_and_their_image_size(mvtec_root, tmp_path, capsys):
    page = open_page("demo", data_root=mvtec_root, needs="masks", input_size=64, cache_dir=tmp_path / "c",
                     results=tmp_path / "r.jsonl", download_dir=tmp_path / "d")
    assert page.names == ["bottle", "screw", "my_parts"] and page.missing == ""
    assert f"2 of the {len(MVTEC_CATEGORIES)} MVTec AD classes (bottle, screw) at 32x32 px; my_parts at 32x32 px" \
        in page.summary
    assert "Input: 64x64 px" in page.summary and page.input_size == 64


def test_open_page_writes_downloads_beside_its_output_notebook_not_into_the_book(mvtec_root, tmp_path, monkeypatch):
    monkeypatch.delenv("TAD_PAGE_OUTPUT", raising=False)
    monkeypatch.chdir(tmp_path)  # a page run by hand: the working directory is where its output notebook goes
    page = open_page("demo", data_root=mvtec_root, classes=["bottle"], cache_dir=tmp_path / "c", verbose=False)
    assert page.download_dir == tmp_path / "data"
    monkeypatch.setenv("TAD_PAGE_OUTPUT", str(tmp_path / "book"))  # the book build names its output folder
    page = open_page("demo", data_root=mvtec_root, classes=["bottle"], cache_dir=tmp_path / "c", verbose=False)
    assert page.download_dir == tmp_path / "book" / "data" and page.download_dir.is_dir()


def test_open_page_rejects_unknown_needs(tmp_path):
    with pytest.raises(ValueError, match="pixels"):
        open_page("demo", data_root=tmp_path, needs="pixels")


# --- results vocabulary ------------------------------------------------------------------------------


@pytest.fixture
def trials():
    rows = [{"dataset": d, "layer": lay, "pooling": "avg", "reduction": red, "ratio": r, "estimator": e,
             "auroc": 0.5}
            for d in ("bottle", "screw") for lay in ("6", "7", "all")
            for red, r in (("none", None), ("npca", 0.1), ("npca", 0.5), ("pca", 0.5)) for e in ("mvg", "knn1")]
    # the float a JSON round trip gives back, as run_grid's table holds it
    return pd.DataFrame([json.loads(json.dumps(r)) for r in rows])


def test_select_trials_matches_a_brute_force_filter(trials):
    got = select_trials(trials, layer=7, reduction="npca", ratio=0.5, estimator="mvg")
    want = [i for i, r in trials.iterrows() if r.layer == "7" and r.reduction == "npca"
            and r.ratio is not None and not (isinstance(r.ratio, float) and math.isnan(r.ratio))
            and abs(r.ratio - 0.5) < 1e-12 and r.estimator == "mvg"]
    assert list(got.index) == want and len(want) == 2  # one per dataset


def test_select_trials_finds_reduction_none_whose_ratio_is_missing(trials):
    got = select_trials(trials, reduction="none", layer="all")
    assert len(got) == 2 * 2 and got["ratio"].isna().all()


def test_select_trials_with_a_ratio_leaves_out_reduction_none(trials):
    got = select_trials(trials, ratio=0.5)
    assert set(got.reduction) == {"npca", "pca"}


def test_select_trials_refuses_a_ratio_for_reduction_none_and_unknown_choices(trials):
    with pytest.raises(ValueError, match="no ratio"):
        select_trials(trials, reduction="none", ratio=0.5)
    with pytest.raises(ValueError, match="knn7"):
        select_trials(trials, estimator="knn7")


@pytest.mark.parametrize("config, label", [
    ({"layer": "7", "pooling": "avg", "reduction": "npca", "ratio": 0.5, "estimator": "mvg"},
     "layer 7, avg, NPCA 50 %, MVG"),
    ({"layer": "all", "pooling": "min+avg", "reduction": "none", "ratio": None, "estimator": "knn1"},
     "all layers, min+avg, no reduction, 1-NN"),
    ({"layer": 3, "pooling": "max", "reduction": "pca", "ratio": 0.1, "estimator": "flow"},
     "layer 3, max, PCA 10 %, flow"),
])
def test_config_label_writes_configurations_as_the_book_does(config, label):
    assert config_label(config) == label


def test_config_label_takes_a_results_row_and_a_choice_of_parts(trials):
    row = select_trials(trials, dataset="bottle", layer=6, reduction="none", estimator="mvg").iloc[0]
    assert config_label(row, parts=("reduction", "estimator")) == "no reduction, MVG"


@pytest.mark.parametrize("value, kind, text", [
    (0.93449, "auroc", "0.934"), (1, "auroc", "1.000"), (0.0125, "diff", "+0.013"), (-0.0125, "diff", "−0.013"),
    (-0.0001, "diff", "+0.000"), (3.0, "count", "3"), (np.int64(15), "count", "15"), (0.5, "percent", "50 %"),
    (0.125, "percent", "12.5 %"), (2.46, "seconds", "2.5 s"),
])
def test_format_value_writes_each_kind_as_specified(value, kind, text):
    assert format_value(value, kind) == text


def test_format_value_rejects_a_fractional_count_and_unknown_kinds():
    with pytest.raises(ValueError, match="2.5"):
        format_value(2.5, "count")
    with pytest.raises(ValueError, match="roc"):
        format_value(0.5, "roc")


def test_ci_text_rounds_the_interval_outward_so_it_contains_the_computed_one():
    assert ci_text(0.9341, 0.9049, 0.9551) == "0.934 [0.90, 0.96]"
    assert ci_text(0.9, 0.9, 0.95) == "0.900 [0.90, 0.95]"  # exact bounds stay
    text = ci_text(0.8, 0.7612, 0.8388, ci_digits=3)
    lo, hi = (float(x) for x in text.split("[")[1].rstrip("]").split(", "))
    assert lo <= 0.7612 and hi >= 0.8388 and text.startswith("0.800 ")


# --- glue and downloads ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["layer 7", "+0.405", "0.950", "3", "−0.024"])
def test_glued_text_pastes_back_unchanged_through_myst_nb(monkeypatch, text):
    from myst_nb.core.variables import format_plain_text  # what {glue:text} applies to text/plain

    shown = []
    monkeypatch.setattr("myst_nb.ext.glue.ipy_display", lambda data, **kw: shown.append((data, kw)))
    assert glue_text("best", text) == text
    ((data, kw),) = shown
    assert format_plain_text(data["application/papermill.record/text/plain"], "s") == text
    assert data["application/papermill.record/text/markdown"] == text
    assert kw["metadata"]["scrapbook"]["name"] == "best"


def test_save_csv_writes_the_table_and_links_it_relative_to_the_generated_page(tmp_path):
    df = pd.DataFrame({"auroc": [0.9, 0.8]}, index=pd.Index(["bottle", "screw"], name="dataset"))
    link = save_csv(df, "02_layers", tmp_path / "data")
    assert link == "{download}`Download these results (CSV) <data/02_layers.csv>`"
    back = pd.read_csv(tmp_path / "data" / "02_layers.csv", index_col="dataset")
    pd.testing.assert_frame_equal(back, df)


def _shown(call):
    """The display outputs (mime bundles) of ``call()`` under an IPython shell."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    with capture_output() as captured:
        call()
    return [o.data for o in captured.outputs]


def test_show_table_keeps_short_tables_plain_and_makes_long_ones_interactive_without_network(monkeypatch):
    import re

    import tad.book.format

    monkeypatch.setattr(tad.book.format, "_ITABLES_READY", False)
    short = pd.DataFrame({"auroc": np.linspace(0.5, 1, 20)})
    (plain,) = _shown(lambda: show_table(short))
    assert "<table" in plain["text/html"] and "itables" not in plain["text/html"]
    long = pd.DataFrame({"auroc": np.linspace(0.5, 1, 21)})
    html = "\n".join(o.get("text/html", "") for o in _shown(lambda: show_table(long)))
    assert '<table id="itables_' in html
    assert re.search(r"window\._itables_\w+\s*=", html)  # the library itself is defined on the page
    loads = re.findall(r"""(?:src=|import\s*(?:[^'"]*from\s*)?)["'](https?://[^"']+)""", html)
    assert loads == []  # the library is embedded, nothing is fetched


# --- ranking and cost ------------------------------------------------------------------------------------

def _grid_rows(aurocs):
    """Result rows: {(config, dataset): auroc}, configs differing in their estimator."""
    return pd.DataFrame([{"backbone": "b", "layer": "7", "pooling": "avg", "reduction": "none", "ratio": np.nan,
                          "estimator": est, "dataset": ds, "auroc": a} for (est, ds), a in aurocs.items()])


def test_rank_configs_orders_by_mean_and_drops_configs_missing_a_data_set():
    from tad.book.ranking import rank_configs

    df = _grid_rows({("mvg", "a"): 0.9, ("mvg", "b"): 0.8, ("knn1", "a"): 1.0, ("knn1", "b"): 0.9,
                     ("flow", "a"): 1.0})
    ranked = rank_configs(df, {"a": (50, 50), "b": (50, 50)})
    assert list(ranked.estimator) == ["knn1", "mvg"]  # flow ran on one data set only
    assert list(ranked.index) == [1, 2]
    assert ranked.auroc.tolist() == pytest.approx([0.95, 0.85])
    assert ranked.worst_class.tolist() == pytest.approx([0.9, 0.8])


def test_rank_configs_standard_error_stays_open_at_auroc_one_and_pools_over_data_sets():
    from scipy.stats import norm

    from tad.book.ranking import rank_configs
    from tad.stats import auroc_ci

    # An independent route to each data set's interval: auroc_ci on images that separate perfectly.
    y = np.r_[np.zeros(20), np.ones(60)]
    low_a, _ = auroc_ci(y, y)
    y2 = np.r_[np.zeros(40), np.ones(30)]
    low_b, _ = auroc_ci(y2, y2)
    z = norm.ppf(0.975)
    ranked = rank_configs(_grid_rows({("mvg", "a"): 1.0, ("mvg", "b"): 1.0}), {"a": (20, 60), "b": (40, 30)})
    assert ranked.se.iloc[0] > 0
    assert ranked.se.iloc[0] == pytest.approx(np.hypot((1 - low_a) / z, (1 - low_b) / z) / 2, rel=1e-6)


def test_rank_configs_ties_small_gaps_and_separates_large_ones():
    from tad.book.ranking import rank_configs

    df = _grid_rows({("mvg", "a"): 0.900, ("knn1", "a"): 0.899, ("flow", "a"): 0.70})
    ranked = rank_configs(df, {"a": (1000, 1000)})
    assert ranked.set_index("estimator").within_noise.to_dict() == {"mvg": True, "knn1": True, "flow": False}
    with pytest.raises(ValueError, match="sizes lacks"):
        rank_configs(df, {"b": (10, 10)})


def test_rank_configs_merges_configurations_that_are_the_same_model_and_counts_ties_over_models():
    from tad.book.ranking import rank_configs

    # Layer 7, d 320, 48 training rows (47 non-null axes, 273 null): under the block reading NPCA 10-50 % all
    # keep axes 46..320 (kept axes written here by hand, not by tad); PCA 10 % keeps 0..32: another model.
    rows = [{"backbone": "b", "layer": "7", "pooling": "avg", "reduction": "npca", "ratio": r, "estimator": "mvg",
             "dataset": ds, "auroc": 0.95, "kept_start": 46, "kept_stop": 320} for r in (0.1, 0.2, 0.3, 0.4, 0.5)
            for ds in ("a", "b")]
    rows += [{"backbone": "b", "layer": "7", "pooling": "avg", "reduction": "pca", "ratio": 0.1, "estimator": "mvg",
              "dataset": ds, "auroc": 0.94, "kept_start": 0, "kept_stop": 32} for ds in ("a", "b")]
    ranked = rank_configs(pd.DataFrame(rows), {"a": (50, 50), "b": (50, 50)})
    assert len(ranked) == 2 and ranked.attrs["n_configs"] == 6
    assert ranked.n_configs.tolist() == [5, 1] and int(ranked.within_noise.sum()) == 2
    assert ranked.same_as.iloc[0].count("NPCA") == 5 and ranked.ratio.iloc[0] == 0.1


def glued_output(name: str, plain: str, prefix: str = "application/papermill.record/") -> dict:
    """A display_data output as MyST-NB's glue writes it into an executed notebook."""
    return {"output_type": "display_data", "metadata": {"scrapbook": {"name": name, "mime_prefix": prefix}},
            "data": {f"{prefix}text/plain": plain, f"{prefix}text/markdown": plain.strip("'")}}


def test_read_glued_returns_each_name_once_unquoted_and_last_wins(tmp_path):
    cells = [{"cell_type": "code", "source": "", "metadata": {}, "outputs": [
                 glued_output("best", "'0.950'"), {"output_type": "stream", "name": "stdout", "text": "x"}]},
             {"cell_type": "markdown", "source": "text", "metadata": {}},
             {"cell_type": "code", "source": "", "metadata": {}, "outputs": [
                 glued_output("best", "'0.961'"), glued_output("n", "3"), glued_output("word", "higher", "")]}]
    path = tmp_path / "page.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert read_glued(path) == {"best": "0.961", "n": "3", "word": "higher"}
    assert read_glued(tmp_path / "absent.ipynb") == {}


def test_download_notice_says_how_to_place_the_data_only_when_classes_are_missing():
    from tad.download import MVTEC_URL

    full = download_notice("/data", ["bottle", "screw"], [])
    assert full == "MVTec AD under /data: 2 of 2 classes present."
    offline = download_notice("/data", ["bottle"], ["cable", "screw"], "Name or service not known")
    assert "\n" not in offline and "1 of 3 classes present" in offline
    assert "place MVTec AD by hand" in offline and MVTEC_URL in offline and "TAD_DATA=/data" in offline
    assert "Name or service not known" in offline
    assert "not tried" in download_notice("/data", [], ["screw"])


def test_pages_print_paths_relative_to_their_folder_or_home(tmp_path, monkeypatch):
    from tad.book.page import shown_path

    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    monkeypatch.chdir(repo / "notebooks")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert shown_path(repo / "notebooks" / "out.csv") == "out.csv"
    assert shown_path(repo / "book" / "generated" / "data") == "../book/generated/data"
    assert shown_path(tmp_path / "home" / ".cache" / "tad") == "~/.cache/tad"
    assert shown_path("/elsewhere/x") == "/elsewhere/x"


def test_download_notice_keeps_only_the_cause_of_a_failed_download():
    from tad.download import MVTEC_URL

    warning = (f"MVTec AD categories ['cable', 'screw'] unavailable under /data (download failed: could not "
               f"download MVTec AD from {MVTEC_URL}: <urlopen error [Errno -2] Name or service not known>. To "
               f"place MVTec AD by hand: download {MVTEC_URL} (or the archive), extract it so that ...); "
               "continuing with ['bottle']")
    line = download_notice("/data", ["bottle"], ["cable", "screw"], warning)
    assert "; the download failed ([Errno -2] Name or service not known). To place" in line
    assert "urlopen" not in line and "['cable'" not in line
    assert line.count("place MVTec AD by hand") == 1 and line.count(MVTEC_URL) == 1


def test_restate_fills_references_from_each_page():
    glued = {"02_layers": {"best_mean": "0.956", "best_layer": "all layers"}, "01_data": {}}
    assert restate("{02_layers/best_layer} gives {02_layers/best_mean}.", glued) == "all layers gives 0.956."
    assert restate("no reference", glued) == "no reference"


def test_restate_drops_a_line_whose_page_did_not_run_or_did_not_compute_the_value():
    glued = {"02_layers": {"best_mean": "0.956"}, "01_data": {}}
    assert restate("{01_data/grey} but {02_layers/best_mean}", glued) is None  # page ran, value absent
    assert restate("{09_maps/pro} but {02_layers/best_mean}", glued) is None  # page did not run


def test_restate_pastes_values_as_they_are_even_when_they_look_like_references():
    glued = {"a": {"x": "{b/y} and \\1", "y": "2"}}
    assert restate("{a/x} then {a/y}", glued) == "{b/y} and \\1 then 2"


def test_auroc_entry_gives_the_auroc_its_interval_and_their_text():
    from tad.evaluate import auroc
    from tad.stats import auroc_ci

    labels = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.3, 0.7])
    entry = auroc_entry(labels, scores)
    low, high = auroc_ci(labels, scores)
    assert entry["auroc"] == auroc(labels, scores) == 13 / 16  # one positive (0.2) outranks one negative only
    assert (entry["ci_low"], entry["ci_high"]) == (low, high) and low < entry["auroc"] < high
    assert entry["interval"] == ci_text(13 / 16, low, high)


def test_readable_table_writes_headers_counts_and_p_values_for_readers():
    from tad.book.format import readable_table

    df = pd.DataFrame({"trials_here": [2310.0, 4.0], "mean_seconds": [0.5, 1.25], "p": [0.300159, 0.00041234],
                       "p_value": [1.0, np.nan], "auroc": [1.0, 1.0], "worst_class": [0.5, 0.75]},
                      index=pd.Index(["mvg", "knn1"], name="estimator"))
    out = readable_table(df)
    assert list(out.columns) == ["trials run here", "mean seconds per trial", "p", "p", "AUROC",
                                 "lowest AUROC of a data set"]
    assert out.iloc[:, 0].tolist() == [2310, 4] and str(out.iloc[:, 0].dtype) == "Int64"
    assert out.iloc[:, 2].tolist() == ["0.30", "0.00041"] and out.iloc[:, 3].tolist() == ["1.0", ""]
    assert out["AUROC"].dtype == float and out.iloc[:, 1].tolist() == [0.5, 1.25]
    assert out.index.name == "estimator"


@pytest.fixture
def offered():
    return pd.DataFrame({"dataset": ["a", "a", "b", "b"], "layer": ["1", "all", "1", "all"],
                         "auroc": [0.6, 0.9, 0.7, 0.95], "ratio": [0.5, 0.5, np.nan, np.nan]})


def test_csv_value_filters_as_text_and_aggregates(offered):
    from tad.book.glue import csv_value

    assert csv_value(offered, "auroc", where={"dataset": "a", "layer": 1}) == 0.6
    assert csv_value(offered, "auroc", "mean", where={"layer": "all"}) == pytest.approx(0.925)
    assert csv_value(offered, "auroc", "argmax", by="layer") == "all"  # means: 1 -> 0.65, all -> 0.925
    assert csv_value(offered, "auroc", "argmin", by="dataset") == "a"
    assert csv_value(offered, "dataset", "nunique") == 2 and csv_value(offered, "auroc", "count") == 4
    assert csv_value(offered, "auroc", "max", where={"ratio": 0.5}) == 0.9
    assert csv_value(offered, "auroc", "count", where={"layer": "7"}) == 0  # a count of nothing is 0


@pytest.mark.parametrize(("kwargs", "message"), [({"how": "median"}, "not in"), ({"where": {"layer": "9"}}, "no row"),
                                                 ({"where": {"dataset": "a"}}, "exactly one"),
                                                 ({"how": "argmax"}, "needs by"), ({"column": "p"}, "not in the table")])
def test_csv_value_refuses_what_it_cannot_read(offered, kwargs, message):
    from tad.book.glue import csv_value

    with pytest.raises(ValueError, match=message):
        csv_value(offered, **({"column": "auroc"} | kwargs))


def test_glue_csv_glues_the_value_read_from_the_pages_csv_and_its_rule(tmp_path, offered, monkeypatch):
    import json

    import tad.book.glue as page_module

    glued = {}
    monkeypatch.setattr(page_module, "glue_text", lambda name, text: glued.setdefault(name, text))
    offered.to_csv(tmp_path / "05_x.csv", index=False)
    page = page_module.Page("05_x", [], None, 224, tmp_path, tmp_path / "r.jsonl", tmp_path, summary="")
    assert page_module.glue_csv(page, "best", "auroc", "mean", layer="all") == "0.925"
    assert json.loads(glued["best.csv_rule"]) == {"column": "auroc", "how": "mean", "kind": "auroc", "by": None,
                                                  "where": {"layer": "all"}}
