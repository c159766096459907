"""The `tad` command line: fast help, defaults shown, and every expected failure as one line with exit code 2."""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tad.backbones
import tad.cost
import tad.data
import tad.features
import tad.reduce
import tad.results
import tad.sweep
from conftest import make_synthetic_mvtec
from tad.cli import UsageError, main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def toy(tmp_path):
    """Data root with a tiny category ``toy``, and a cache folder, both under ``tmp_path``."""
    make_synthetic_mvtec(tmp_path / "data", "toy", n_train=5, n_test_good=3, n_test_defective=3, size=32)
    return tmp_path / "data", tmp_path / "cache"


def run(capsys, *argv):
    """Exit code, stdout and stderr lines of ``tad *argv`` run in this process."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def assert_one_line_error(code, err, *words):
    """Exit 2; the error is the last stderr line and the only one saying error; it holds every word."""
    assert code == 2
    assert [line for line in err if "error" in line] == err[-1:], err
    assert all(w in err[-1] for w in words), (words, err[-1])


# ------------------------------------------------------------------------------------------ first contact


def test_top_level_help_is_fast_and_imports_no_heavy_library():
    code = ("import sys, time; t = time.perf_counter(); from tad.cli import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "heavy = {'torch', 'timm', 'zuko', 'sklearn', 'pandas'} & set(sys.modules)\n"
            "print(time.perf_counter() - t, *sorted(heavy))")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.splitlines()[-1]
    wall = time.perf_counter() - t0
    inner, *heavy = out.split()
    print(f"tad --help: {float(inner):.3f} s in the process, {wall:.2f} s with interpreter start")
    assert heavy == []
    assert wall < 3  # the target is 1 s; the bound is loose because the test machines are shared


def test_tad_init_imports_no_heavy_library():
    code = "import sys, tad; print(sorted({'torch', 'timm', 'zuko', 'sklearn', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "[]"


def test_help_shows_every_default_and_device_help(capsys):
    code, out, _ = run(capsys, "evaluate", "--help")
    assert code == 0
    text = " ".join(out.split())
    for option, default in [("--backbone", "tf_efficientnet_lite0"), ("--reduction", "npca"), ("--ratio", "0.5"),
                            ("--pooling", "avg"), ("--estimator", "mvg"), ("--layer", "7"),
                            ("--batch-size", "32, fewer above 512 px: 8 at 1024 px"),
                            ("--basis", tad.reduce.DEFAULT_BASIS)]:
        assert option in text and f"(default: {default})" in text, option
    assert "(default: cuda when present, else cpu)" in text
    assert "torch device" in text and "--weights PATH" in text and "(default: None)" not in text


def test_grid_help_offers_filters_and_leaves_flow_out_by_default(capsys):
    code, out, _ = run(capsys, "grid", "--help")
    text = " ".join(out.split())
    assert code == 0
    for option in ("--layers", "--reductions", "--poolings", "--estimators", "--scheduler", "--workers"):
        assert option in text
    assert "(default: ['mvg', 'knn1', 'knn5', 'knn10'])" in text


def test_ratio_given_as_percent_is_explained(capsys):
    code, _, err = run(capsys, "evaluate", "--category", "toy", "--ratio", "50")
    assert_one_line_error(code, err, "ratio 50 must be a fraction in (0, 1], e.g. 0.5")


@pytest.mark.parametrize("value", ["2000", "16", "big"])
def test_input_size_outside_limits_is_refused_with_reason(capsys, value):
    code, _, err = run(capsys, "evaluate", "--category", "toy", "--input-size", value)
    assert_one_line_error(code, err, f"input size {value}", "32 to 1024", "memory")


@pytest.mark.parametrize("value", ["0", "-3", "x"])
def test_batch_size_must_be_positive(capsys, value):
    code, _, err = run(capsys, "evaluate", "--category", "toy", "--batch-size", value)
    assert_one_line_error(code, err, f"batch size {value} must be a whole number >= 1")


@pytest.mark.parametrize("value", ["npca", "npca:50", "none:0.5", "lda:0.5"])
def test_bad_reduction_names_format(capsys, value):
    code, _, err = run(capsys, "grid", "--categories", "toy", "--results", "r.jsonl", "--reductions", value)
    assert_one_line_error(code, err, "--reductions")


# ------------------------------------------------------------------------------------------ data folder


def test_data_on_missing_folder_exits_2(capsys, tmp_path):
    code, out, err = run(capsys, "data", "--data", tmp_path / "nonexistent")
    assert out == ""
    assert_one_line_error(code, err, "--data", "nonexistent", "no such folder", "TAD_DATA")


def test_no_data_speaks_of_option_and_variable_not_python(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TAD_DATA", str(tmp_path / "unset"))
    code, _, err = run(capsys, "evaluate", "--category", "toy")
    assert_one_line_error(code, err, "--data", "TAD_DATA")
    assert "root=" not in err[-1]


def test_data_shows_own_category_without_failure_words(capsys, toy):
    code, out, err = run(capsys, "data", "--data", toy[0])
    assert code == 0 and err == []
    assert "own category" in out and "False" not in out and "NA" not in out
    row = next(line.split() for line in out.splitlines() if line.startswith("toy"))
    assert row[1:4] == ["5", "3", "3"]


def test_data_folder_without_categories_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, "data", "--data", tmp_path)
    assert_one_line_error(code, err, "no category folder")


def test_test_folder_linked_to_good_is_refused(capsys, toy):
    (toy[0] / "toy" / "test" / "dup").symlink_to("good")
    code, _, err = run(capsys, "data", "--data", toy[0])
    assert_one_line_error(code, err, "test/dup is a link to", "test/good")


@pytest.mark.parametrize("name", ["../other/x", "toy/../toy"])
def test_category_that_is_a_path_is_refused(capsys, toy, name):
    make_synthetic_mvtec(toy[0].parent / "other", "x", n_train=2, n_test_good=1, n_test_defective=1, size=16)
    code, _, err = run(capsys, "evaluate", "--data", toy[0], "--cache", toy[1], "--category", name)
    assert_one_line_error(code, err, repr(name), "not a folder name")
    assert not toy[1].exists()  # refused before any work


@pytest.mark.parametrize("device, reason", [("xyz", "not a device"), ("cuda:x", "not a device"),
                                            ("cuda:99", "not present on this machine")])
def test_bad_device_is_refused_naming_the_option_and_the_valid_ones(capsys, toy, device, reason):
    code, _, err = run(capsys, "evaluate", "--data", toy[0], "--cache", toy[1], "--category", "toy",
                       "--device", device)
    assert_one_line_error(code, err, f"--device {device}: {reason}", "valid here: cpu")
    assert not toy[1].exists()  # refused before any work


@pytest.mark.parametrize("size, batch", [("224", 32), ("512", 32), ("724", 16), ("1024", 8)])
def test_default_batch_shrinks_with_the_input_and_says_so(capsys, toy, monkeypatch, size, batch):
    seen = []

    def fake_extract(bb, paths, *, batch_size, **kw):
        seen.append(batch_size)
        raise UsageError("stop after the first extraction")

    monkeypatch.setattr(tad.features, "extract", fake_extract)
    _, _, err = run(capsys, "evaluate", "--data", toy[0], "--cache", toy[1], "--category", "toy", "--input-size", size)
    assert seen == [batch]  # at most 8 images of 1024 x 1024 px per pass, scaled by pixels
    said = [line for line in err if line.startswith("batch size")]
    assert said == ([] if batch == 32 else [f"batch size {batch} (not 32) for {size} px inputs, so the activations "
                                            "fit in memory; --batch-size N to choose"])
    run(capsys, "evaluate", "--data", toy[0], "--cache", toy[1], "--category", "toy", "--input-size", size,
        "--batch-size", "3")
    assert seen[-1] == 3  # an explicit batch is kept


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(UsageError, match="no such folder"):
        main(["data", "--data", str(tmp_path / "nonexistent"), "--debug"])


# ------------------------------------------------------------------------------------------ files


def test_cache_that_is_a_file_is_refused(capsys, toy):
    toy[1].write_text("not a folder")
    code, _, err = run(capsys, "evaluate", "--data", toy[0], "--cache", toy[1], "--category", "toy")
    assert_one_line_error(code, err, f"--cache {toy[1]} is a file")
    assert toy[1].read_text() == "not a folder"


@pytest.mark.parametrize("command", ["layers", "evaluate", "grid"])
def test_results_that_is_a_folder_is_refused(capsys, toy, command):
    folder = toy[0].parent / "results"
    folder.mkdir()
    which = ["--categories", "toy"] if command == "grid" else ["--category", "toy"]
    code, _, err = run(capsys, command, "--data", toy[0], "--cache", toy[1], *which, "--results", folder)
    assert_one_line_error(code, err, f"--results {folder} is a folder")
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("content", ["truncated", "unrelated"])
def test_download_with_bad_hand_placed_archive_exits_2_and_keeps_it(capsys, tmp_path, content):
    from tad.download import MVTEC_SHA256

    placed = b"\xfd7zXZ\x00" + b"\x00" * 100 if content == "truncated" else b"<html>login page</html>"
    archive = tmp_path / "mvtec_anomaly_detection.tar.xz"
    archive.write_bytes(placed)
    code, _, err = run(capsys, "download", "--data", tmp_path)
    assert_one_line_error(code, err, "SHA-256 mismatch", str(archive), MVTEC_SHA256,
                          hashlib.sha256(placed).hexdigest())
    assert archive.read_bytes() == placed and sorted(p.name for p in tmp_path.iterdir()) == [archive.name]


def test_unavailable_weights_suggest_the_weights_option(capsys, toy, monkeypatch):
    def unavailable(name, weights="pretrained"):
        raise tad.backbones.WeightsUnavailable(
            f"pretrained weights 'x' for {name!r} could not be loaded (offline). Alternatives: the offline "
            "backbones [...]; weights=<path to a x state_dict>; or weights='random' for testing layer logic only.")

    monkeypatch.setattr(tad.backbones, "load_backbone", unavailable)
    code, _, err = run(capsys, "evaluate", "--data", toy[0], "--cache", toy[1], "--category", "toy",
                       "--backbone", "tf_efficientnet_b5")
    assert_one_line_error(code, err, "could not be loaded", "--weights PATH", "tf_efficientnet_b5.aa_in1k",
                          "tf_efficientnet_lite0")
    assert "weights=" not in err[-1]


def test_missing_weights_file_is_named(capsys, toy):
    code, _, err = run(capsys, "evaluate", "--data", toy[0], "--cache", toy[1], "--category", "toy",
                       "--weights", toy[0] / "nope.pth")
    assert_one_line_error(code, err, "nope.pth", "does not exist")


def _png_claiming(path, width, height):
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)))


@pytest.mark.parametrize("case", ["truncated", "182 megapixels"])
def test_unreadable_image_is_one_line_naming_the_file(capsys, toy, case):
    bad = toy[0] / "toy" / "train" / "good" / "002.png"
    if case == "truncated":
        bad.write_bytes(bad.read_bytes()[:60])
    else:
        _png_claiming(bad, 14000, 13000)
    code, _, err = run(capsys, "evaluate", "--data", toy[0], "--cache", toy[1], "--category", "toy", "--layer", "1")
    assert_one_line_error(code, err, str(bad))
    assert "Traceback" not in "\n".join(err)
    assert not any(toy[1].glob("*.npz"))  # no cache file written for the failed extraction


# ------------------------------------------------------------------------------------------ runs


def test_evaluate_appends_its_row_to_results(capsys, toy):
    results = toy[0].parent / "r.jsonl"
    argv = ["evaluate", "--data", toy[0], "--cache", toy[1], "--category", "toy", "--layer", "2",
            "--reduction", "none", "--estimator", "knn1", "--batch-size", "4", "--results", results]
    code, out, err = run(capsys, *argv)
    assert code == 0
    assert "toy train: 5 images" in err and "toy test: 6 images" in err  # labelled progress
    (row,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert (row["dataset"], row["layer"], row["reduction"], row["estimator"]) == ("toy", "2", "none", "knn1")
    assert 0 <= row["auroc"] <= 1 and f"{round(row['auroc'], 4)}" in out
    code, _, err = run(capsys, *argv)
    assert code == 0 and f"0 row(s) appended to {results}; 1 already there" in err
    assert results.read_text().splitlines() == [json.dumps(row)]  # one row per trial, like the grid's table


def test_evaluate_row_is_the_grids_row_of_that_trial(capsys, toy):
    results = toy[0].parent / "r.jsonl"
    common = ["--data", toy[0], "--cache", toy[1], "--batch-size", "4", "--results", results]
    run(capsys, "evaluate", "--category", "toy", "--layer", "2", "--reduction", "none", "--estimator", "knn1", *common)
    (row,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert row["data_key"] == tad.results.data_key(tad.data.load_split("toy", toy[0]))
    code, _, err = run(capsys, "grid", "--categories", "toy", "--layers", "2", "--reductions", "none",
                       "--estimators", "knn1", "knn5", "--workers", "1", *common)
    assert code == 0, err
    assert [json.loads(line)["estimator"] for line in results.read_text().splitlines()] == ["knn1", "knn5"]


def test_evaluate_after_a_killed_writer_cuts_its_half_line_and_the_grid_runs(capsys, toy):
    results = toy[0].parent / "r.jsonl"
    half = json.dumps({"dataset": "toy", "layer": "1", "auroc": 0.5})[:20]
    results.write_text(half)
    common = ["--data", toy[0], "--cache", toy[1], "--batch-size", "4", "--results", results]
    code, _, err = run(capsys, "evaluate", "--category", "toy", "--layer", "2", "--reduction", "none",
                       "--estimator", "knn1", *common)
    assert code == 0 and any(f"{results} line 1 is cut short" in line for line in err), err
    assert [json.loads(line)["layer"] for line in results.read_text().splitlines()] == ["2"]
    code, _, err = run(capsys, "grid", "--categories", "toy", "--layers", "2", "--reductions", "none",
                       "--estimators", "knn1", "--workers", "1", *common)
    assert code == 0, err


def test_layers_writes_one_row_per_layer(capsys, toy):
    results = toy[0].parent / "layers.jsonl"
    code, out, _ = run(capsys, "layers", "--data", toy[0], "--cache", toy[1], "--category", "toy",
                       "--reduction", "npca", "--ratio", "0.5", "--results", results)
    assert code == 0
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["layer"] for r in rows] == [*map(str, range(1, 8)), "all"]
    assert "npca 0.5" in out
    run(capsys, "layers", "--data", toy[0], "--cache", toy[1], "--category", "toy", "--reduction", "npca",
        "--ratio", "0.5", "--results", results)
    assert [json.loads(line) for line in results.read_text().splitlines()] == rows  # nothing written twice


def test_grid_on_one_training_image_gives_one_warning_counting_the_failed_trials(capsys, tmp_path):
    make_synthetic_mvtec(tmp_path / "data", "one", n_train=1, n_test_good=2, n_test_defective=2, size=32)
    code, _, err = run(capsys, "grid", "--data", tmp_path / "data", "--cache", tmp_path / "cache", "--categories",
                       "one", "--results", tmp_path / "r.jsonl", "--layers", "1", "2", "--workers", "1")
    assert code == 0
    (warning,) = [line for line in err if "warning" in line]
    # 2 layers x (10 PCA/NPCA reductions x 4 estimators + MVG, 5-NN and 10-NN without reduction) = 86 failures
    assert "86 trial(s) failed, no row written" in warning
    assert "and 79 more: ValueError: a PCA/NPCA reduction needs at least 2 training images" in warning


def test_grid_passes_filters_and_prints_rounded_aurocs(capsys, toy, monkeypatch):
    seen = {}

    def fake_run_grid(splits, backbone, results, *, layers, poolings, reductions, estimators, basis, input_size,
                      cache_dir, device, batch_size, scheduler=None, workers=None):
        seen.update(layers=layers, poolings=poolings, reductions=reductions, estimators=estimators,
                    scheduler=scheduler, workers=workers, names=[s.name for s in splits])
        return pd.DataFrame([{"dataset": "toy", "layer": "1", "pooling": "max", "reduction": "npca", "ratio": 0.5,
                              "estimator": "mvg", "auroc": 0.123456789, "ci_low": 0.1, "ci_high": 0.2}])

    monkeypatch.setattr(tad.sweep, "run_grid", fake_run_grid)
    code, out, err = run(capsys, "grid", "--data", toy[0], "--cache", toy[1], "--categories", "toy",
                         "--results", toy[0].parent / "g.jsonl", "--layers", "1", "all", "--poolings", "max",
                         "--reductions", "npca:0.5", "none", "--estimators", "mvg", "--workers", "2",
                         "--scheduler", "threads")
    assert code == 0, err
    assert seen == {"layers": ["1", "all"], "poolings": ["max"], "reductions": [("npca", 0.5), ("none", None)],
                    "estimators": ["mvg"], "scheduler": "threads", "workers": 2, "names": ["toy"]}
    assert "0.123" in out and "0.1234" not in out
    assert not any("flow" in line for line in err)


def test_grid_with_flow_prints_its_estimate_first(capsys, toy, monkeypatch):
    def fake_run_grid(*args, **kwargs):
        print("RUN", file=sys.stderr)
        return pd.DataFrame(columns=["dataset", "layer", "pooling", "reduction", "ratio", "estimator", "auroc",
                                     "ci_low", "ci_high"])

    monkeypatch.setattr(tad.sweep, "run_grid", fake_run_grid)
    code, _, err = run(capsys, "grid", "--data", toy[0], "--cache", toy[1], "--categories", "toy",
                       "--results", toy[0].parent / "g.jsonl", "--layers", "1", "2", "--estimators", "flow")
    assert code == 0
    estimate = next(i for i, line in enumerate(err) if line.startswith("flow: 22 trials"))  # 2 layers x 11
    # Lite0's layers 1 and 2 have 16 and 24 channels; PCA/NPCA keep round(r d) of them, r = 0.1 .. 0.5
    dims = [16, 2, 3, 5, 6, 8, 2, 3, 5, 6, 8, 24, 2, 5, 7, 10, 12, 2, 5, 7, 10, 12]
    x, y = np.array(tad.cost.FLOW_S, dtype=float).T
    slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    seconds = sum(y.mean() + slope * (d - x.mean()) for d in dims)
    assert f"about {round(seconds)} s on a CPU" in err[estimate] and estimate < err.index("RUN")
