"""Tests for tad.results: the data's content key, a tolerant reader, and a writer that never doubles a trial."""

import hashlib
import json
import shutil

import pytest

from conftest import make_synthetic_mvtec
from tad.data import load_split
from tad.results import KEY, Appender, data_key, read_rows, trial_key


def row(i: int, **extra) -> dict:
    return {**{k: "" for k in KEY}, "reduction": "npca", "ratio": 0.1 * i, "auroc": 0.5, **extra}


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "a"
    make_synthetic_mvtec(root, n_train=4, n_test_good=2, n_test_defective=2, size=16, seed=0)
    return root


def test_data_key_is_sha256_of_sorted_paths_labels_and_bytes(root):
    split = load_split("synthetic", root)
    base = root / "synthetic"
    entries = sorted([(str(s.path.relative_to(base)), part, s.label, hashlib.sha256(s.path.read_bytes()).hexdigest())
                      for part, samples in (("train", split.train), ("test", split.test)) for s in samples])
    assert data_key(split) == hashlib.sha256(json.dumps([list(e) for e in entries]).encode()).hexdigest()


def test_data_key_same_for_a_copy_different_after_one_byte_changes(root, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(root, copy)
    key = data_key(load_split("synthetic", root))
    assert data_key(load_split("synthetic", copy)) == key
    image = load_split("synthetic", copy).test_paths[0]
    image.write_bytes(image.read_bytes() + b"\0")  # a trailing byte: same pixels, other file
    assert data_key(load_split("synthetic", copy)) != key


def test_reader_skips_blank_lines_and_a_cut_last_line_naming_it(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(row(1)) + "\n\n  \n" + json.dumps(row(2)) + "\n" + json.dumps(row(3))[:9])
    with pytest.warns(UserWarning, match=r"r\.jsonl line 5 is cut short") as seen:
        assert [r["ratio"] for r in read_rows(path)] == [0.1, 0.2]
    assert len(seen) == 1


def test_reader_keeps_a_last_row_without_newline(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(row(1)) + "\n" + json.dumps(row(2)))
    assert [r["ratio"] for r in read_rows(path)] == [0.1, 0.2]


def test_appender_keeps_a_last_row_without_newline_and_appends_after_it(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(row(1)) + "\n" + json.dumps(row(2)))
    with Appender(path) as out:
        assert [r["ratio"] for r in out.append([row(2), row(3)])] == [0.30000000000000004]
    assert [json.loads(line)["ratio"] for line in path.read_text().splitlines()] == [0.1, 0.2, 0.30000000000000004]


def test_reader_warns_on_duplicate_and_keeps_first(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [row(1, auroc=0.7), row(2), row(1, auroc=0.9)]))
    with pytest.warns(UserWarning, match="1 duplicate.*line 3 repeats line 1"):
        rows = read_rows(path)
    assert [(r["ratio"], r["auroc"]) for r in rows] == [(0.1, 0.7), (0.2, 0.5)]


def test_reader_names_file_and_line_of_invalid_json(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(row(1)) + "\nnot json\n")
    with pytest.raises(ValueError, match=r"r\.jsonl line 2"):
        read_rows(path)


def test_results_path_that_is_a_folder_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder"):
        read_rows(tmp_path)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        Appender(tmp_path)


def test_trial_key_ignores_float_noise_in_ratio_and_none_equals_nan():
    assert trial_key(row(3)) == trial_key({**row(3), "ratio": 0.30000000000000004})
    assert trial_key({**row(1), "ratio": None}) == trial_key({**row(1), "ratio": float("nan")})
    assert trial_key(row(1)) != trial_key({**row(1), "data_key": "other"})


def test_two_appenders_on_one_file_write_each_trial_once(tmp_path):
    path = tmp_path / "r.jsonl"
    with Appender(path) as a, Appender(path) as b:
        assert len(a.append([row(1), row(2)])) == 2
        assert [r["ratio"] for r in b.append([row(2), row(3)])] == [0.30000000000000004]  # row 2: a's
        assert a.append([row(3), row(1)]) == []
    assert len(path.read_text().splitlines()) == 3


def test_appender_cuts_a_line_left_half_written(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(row(1)) + "\n" + json.dumps(row(2))[:10])
    with pytest.warns(UserWarning, match=r"r\.jsonl line 2 is cut short"), Appender(path) as out:
        out.append([row(2)])
    assert [json.loads(line)["ratio"] for line in path.read_text().splitlines()] == [0.1, 0.2]
