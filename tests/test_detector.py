"""Detector: fit, calibrate, save without pickle, load with every check, score new images (API and CLI)."""

import json
import math
import pickle

import numpy as np
import pandas as pd
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from conftest import make_synthetic_mvtec
from tad.cli import main
from tad.data import load_split
from tad.detector import Detector, DetectorFileError

SMALL = dict(weights="random", input_size=64, fpr=0.1)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_synthetic_mvtec(root, "toy", n_train=24, n_test_good=4, n_test_defective=4, size=64)
    return load_split("toy", root)


@pytest.fixture(scope="module")
def fitted(toy, tmp_path_factory):
    """A detector with maps, fitted on the toy training images, and its saved file."""
    det = Detector(**SMALL).fit(toy)
    path = tmp_path_factory.mktemp("det") / "toy.tad"
    det.save(path)
    return det, path


def rewrite(src, dst, header=None, arrays=None):
    """Copy a detector file, changing header fields (dict updates) and/or arrays, as a hand edit would."""
    with safe_open(str(src), framework="np") as f:
        meta = json.loads(f.metadata()["tad_detector"])
    for key, value in (header or {}).items():
        target = meta
        *parents, last = key.split(".")
        for p in parents:
            target = target[p]
        target[last] = value
    data = load_file(str(src)) | (arrays or {})
    save_file(data, str(dst), metadata={"tad_detector": json.dumps(meta)})
    return dst


def test_round_trip_scores_and_maps_equal_in_memory(fitted, toy):
    det, path = fitted
    loaded = Detector.load(path)
    np.testing.assert_allclose(loaded.score_samples(toy.test_paths), det.score_samples(toy.test_paths),
                               rtol=0, atol=1e-9)
    assert loaded.threshold_ == det.threshold_ and loaded.expected_fpr_ == det.expected_fpr_
    np.testing.assert_allclose(loaded.anomaly_maps(toy.test_paths[:2]), det.anomaly_maps(toy.test_paths[:2]),
                               rtol=0, atol=1e-9)


@pytest.fixture(scope="module")
def knn(toy):
    return Detector(**SMALL, estimator="knn1", maps=False).fit(toy)


@pytest.mark.parametrize("estimator", ["knn1", "flow"])
def test_round_trip_of_knn_and_flow(toy, knn, tmp_path, estimator):
    det = knn if estimator == "knn1" else Detector(**SMALL, estimator=estimator, maps=False).fit(toy)
    loaded = Detector.load(det.save(tmp_path / "d.tad"))
    np.testing.assert_allclose(loaded.score_samples(toy.test_paths), det.score_samples(toy.test_paths),
                               rtol=0, atol=1e-9)


def test_threshold_is_conformal_on_images_the_model_did_not_fit(toy, knn):
    det = knn
    n_cal = round(0.5 * len(toy.train))
    assert (det.n_fit_, det.n_calibration_) == (len(toy.train) - n_cal, n_cal)
    assert det.calibration_scores_.min() > 0  # 1-NN scores a fitted image exactly 0: none was calibrated on
    k = math.ceil((n_cal + 1) * (1 - 0.1))  # 12 held out, fpr 0.1: the 12th smallest, i.e. the largest
    assert det.threshold_ == np.sort(det.calibration_scores_)[k - 1]
    assert det.expected_fpr_ == pytest.approx((n_cal + 1 - k) / (n_cal + 1))


def test_too_few_good_images_for_the_target_is_refused_before_extraction(toy):
    with pytest.raises(ValueError, match="needs at least 99"):
        Detector(**{**SMALL, "fpr": 0.01}).fit(toy)


def test_file_holds_no_pickle_and_states_its_calibration(fitted):
    det, path = fitted
    with safe_open(str(path), framework="np") as f:
        header = json.loads(f.metadata()["tad_detector"])
    assert header["calibration"]["n_calibration"] == det.n_calibration_
    assert header["calibration"]["threshold"] == det.threshold_
    assert header["backbone"]["weights_sha256"] == det.weights_sha256_
    assert b"\x80\x04" not in path.read_bytes()[:16]


def test_other_weights_than_at_fit_are_refused(fitted):
    _, path = fitted
    with pytest.raises(DetectorFileError, match=rf"{path}.*weights.*SHA-256"):
        Detector.load(path, weights="pretrained")  # fitted with the random-weight network


def test_altered_weights_hash_is_refused(fitted, tmp_path):
    _, path = fitted
    bad = rewrite(path, tmp_path / "w.tad", header={"backbone.weights_sha256": "0" * 64})
    with pytest.raises(DetectorFileError, match=r"w\.tad.*weights"):
        Detector.load(bad)


def test_altered_arrays_are_refused(fitted, tmp_path):
    _, path = fitted
    arrays = load_file(str(path))
    bad = rewrite(path, tmp_path / "a.tad", arrays={"mvg.location": arrays["mvg.location"] + 1e-6})
    with pytest.raises(DetectorFileError, match=r"a\.tad.*arrays do not match"):
        Detector.load(bad)


def test_flipped_byte_in_the_data_is_refused(fitted, tmp_path):
    _, path = fitted
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    (tmp_path / "f.tad").write_bytes(bytes(data))
    with pytest.raises(DetectorFileError, match="arrays do not match"):
        Detector.load(tmp_path / "f.tad")


def test_truncated_file_is_refused(fitted, tmp_path):
    _, path = fitted
    (tmp_path / "t.tad").write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DetectorFileError, match=r"t\.tad is truncated or corrupt"):
        Detector.load(tmp_path / "t.tad")


def test_pickle_is_refused_without_being_unpickled(tmp_path):
    class Boom:
        def __reduce__(self):
            return (pytest.fail, ("the pickle was loaded",))

    (tmp_path / "p.tad").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(DetectorFileError, match="pickle"):
        Detector.load(tmp_path / "p.tad")


def test_future_format_version_is_refused(fitted, tmp_path):
    _, path = fitted
    bad = rewrite(path, tmp_path / "v.tad", header={"format_version": 99})
    with pytest.raises(DetectorFileError, match="format version 99 was written by a newer tad"):
        Detector.load(bad)


def test_other_input_size_is_refused(fitted, tmp_path):
    _, path = fitted
    bad = rewrite(path, tmp_path / "s.tad", header={"input_size": 96, "config.input_size": None})
    with pytest.raises(DetectorFileError, match="input size 96"):
        Detector.load(bad)


def test_folder_with_a_corrupt_image_scores_the_rest(fitted, toy, tmp_path):
    det, _ = fitted
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    paths = [*toy.test_paths[:3], bad, *toy.test_paths[3:5]]
    rows = pd.concat(r for r, _ in det.iter_scores(paths, chunk=4))
    assert rows.path.tolist() == [str(p) for p in paths]
    assert rows.verdict.tolist()[3] == "error" and "broken.png" in rows.error.iloc[3]
    good = rows.drop(index=3)
    np.testing.assert_allclose(good.score, det.score_samples([p for p in paths if p != bad]), rtol=0, atol=1e-9)
    assert set(good.verdict) <= {"pass", "fail"}


# ------------------------------------------------------------------------------------------ command line


def test_cli_fit_then_score_is_resumable_and_skips_bad_images(tmp_path, capsys):
    make_synthetic_mvtec(tmp_path / "data", "toy", n_train=24, n_test_good=3, n_test_defective=3, size=64)
    images = tmp_path / "data" / "toy" / "test"
    (images / "good" / "zz_corrupt.png").write_bytes(b"not an image")
    detector, csv, maps = tmp_path / "toy.tad", tmp_path / "scores.csv", tmp_path / "maps"
    code = main(["fit", "--data", str(tmp_path / "data"), "--category", "toy",
                 "--input-size", "64", "--fpr", "0.1", "--cache", str(tmp_path / "cache"), "--device", "cpu",
                 "-o", str(detector)])
    out = capsys.readouterr().out
    assert code == 0 and "the book's recommended configuration" in out and detector.is_file()

    assert main(["score", str(detector), str(images), "--csv", str(csv), "--chunk", "4", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    rows = pd.read_csv(csv)
    assert len(rows) == 7 and "zz_corrupt.png" in err
    assert rows.set_index("path").loc[str(images / "good" / "zz_corrupt.png"), "verdict"] == "error"
    assert rows.verdict.isin(["pass", "fail"]).sum() == 6

    # an interrupted run leaves a cut line: it is dropped, that image scored again, the others not
    text = csv.read_text().splitlines(keepends=True)
    csv.write_text("".join(text[:-2]) + text[-2][:10])
    assert main(["score", str(detector), str(images), "--csv", str(csv), "--maps", str(maps),
                 "--device", "cpu"]) == 0
    assert "2 to score" in capsys.readouterr().err  # the last row, and the one cut off before it
    again = pd.read_csv(csv)
    assert len(again) == 7 and again.path.is_unique
    assert [p.name for p in maps.glob("*.png")] == ["good__002.png"]  # rescored this run; zz_corrupt has none


def test_cli_score_refuses_a_pickle_in_one_line(tmp_path, capsys):
    (tmp_path / "d.tad").write_bytes(pickle.dumps({"a": 1}))
    (tmp_path / "x.png").write_bytes(b"")
    code = main(["score", str(tmp_path / "d.tad"), str(tmp_path / "x.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pickle" in err[0] and "d.tad" in err[0]
