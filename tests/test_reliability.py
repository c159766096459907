"""Reliability (issues 6, 10): corrupt or read-only caches, interrupted writes, killed grids, racing processes,
degenerate data.

Each test fails without the handling it names: a cache that trusted its file, wrote in place, a grid that
re-ran finished trials or choked on a half-written line, or an estimator that accepted impossible input.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tad.features
from conftest import make_synthetic_mvtec
from tad.cache import CacheWarning, cached_arrays
from tad.data import load_split
from tad.features import cache_key, extract, select
from tad.sweep import KEY, REDUCTIONS, run_grid, score

SIZE = 64
WORKER = Path(__file__).with_name("reliability_worker.py")
N_TRIALS = len(REDUCTIONS) * 2  # layer 1, avg, 11 reductions, mvg and knn1: reliability_worker.GRID


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mvtec")
    make_synthetic_mvtec(root, n_train=6, n_test_good=3, n_test_defective=3, size=SIZE, seed=2)
    return root


@pytest.fixture(scope="module")
def split(root):
    return load_split("synthetic", root)


@pytest.fixture(scope="module")
def reference(lite0, split):
    """Training features computed without any cache."""
    return extract(lite0, split.train_paths, input_size=SIZE, num_workers=0, progress=False)


def cache_file(cache: Path) -> Path:
    (file,) = cache.glob("*.npz")
    return file


def count_computes(monkeypatch) -> list:
    calls = []
    real = tad.features.backbone_outputs
    monkeypatch.setattr(tad.features, "backbone_outputs", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    return calls


def assert_same_features(got, expected):
    assert sorted(got) == sorted(expected)
    for layer in expected:
        np.testing.assert_allclose(got[layer], expected[layer], atol=1e-5 * np.abs(expected[layer]).max(), rtol=0)


def run_extract(lite0, split, cache):
    return extract(lite0, split.train_paths, input_size=SIZE, cache_dir=cache, num_workers=0, progress=False)


# --- feature cache --------------------------------------------------------------------------------

def test_truncated_cache_file_is_recomputed_not_trusted(lite0, split, reference, tmp_path, monkeypatch):
    run_extract(lite0, split, tmp_path)
    file = cache_file(tmp_path)
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])
    calls = count_computes(monkeypatch)
    with pytest.warns(CacheWarning, match=f"cache file {file} is unusable") as record:
        assert_same_features(run_extract(lite0, split, tmp_path), reference)
    assert calls == [1] and len([w for w in record if w.category is CacheWarning]) == 1
    assert file.stat().st_size == len(data)  # rewritten whole


def write_fake_cache(file: Path, key: str, reference, fill: float) -> None:
    np.savez(file, key=np.array(key), **{f"layer{k}": np.full_like(v, fill) for k, v in reference.items()})


@pytest.mark.parametrize(("wrong_key", "fill"), [(True, 0.0), (False, np.nan)])
def test_cache_file_with_wrong_key_or_nan_is_recomputed(lite0, split, reference, tmp_path, monkeypatch,
                                                         wrong_key, fill):
    run_extract(lite0, split, tmp_path)
    file = cache_file(tmp_path)
    key = cache_key(lite0, split.train_paths, SIZE, 0.0, 0)
    write_fake_cache(file, "0" * 64 if wrong_key else key, reference, fill)
    calls = count_computes(monkeypatch)
    with pytest.warns(CacheWarning, match=f"{file.name} is unusable .*({'another key' if wrong_key else 'NaN'})"):
        assert_same_features(run_extract(lite0, split, tmp_path), reference)
    assert calls == [1]


def savez_failing_midway(f, *args, **kwargs):
    f.write(b"PK\x03\x04 half of an archive")
    raise OSError("disk full (simulated)")


def test_failed_cache_write_leaves_no_file_under_final_name(lite0, split, reference, tmp_path, monkeypatch):
    monkeypatch.setattr(np, "savez", savez_failing_midway)
    with pytest.raises(OSError, match="disk full"):
        run_extract(lite0, split, tmp_path)
    assert list(tmp_path.glob("*.npz")) == []
    assert [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []  # no temporary left over
    monkeypatch.undo()
    assert_same_features(run_extract(lite0, split, tmp_path), reference)


def test_failed_cache_rewrite_keeps_old_file_intact(lite0, split, reference, tmp_path, monkeypatch):
    run_extract(lite0, split, tmp_path)
    file = cache_file(tmp_path)
    write_fake_cache(file, "0" * 64, reference, 0.0)  # stale: will be recomputed and rewritten
    old = file.read_bytes()
    monkeypatch.setattr(np, "savez", savez_failing_midway)
    with pytest.raises(OSError, match="disk full"), pytest.warns(CacheWarning, match="another key"):
        run_extract(lite0, split, tmp_path)
    assert file.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([file.name, file.name + ".lock"])


def start_worker(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_two_processes_extracting_into_one_cache_compute_once_and_agree(root, lite0, split, reference, tmp_path):
    cache, log = tmp_path / "cache", tmp_path / "computes.log"
    workers = [start_worker("extract", root, cache, tmp_path / f"out{i}.npz", log) for i in range(2)]
    for w in workers:
        out, _ = w.communicate(timeout=240)
        assert w.returncode == 0, out
    for i in range(2):
        with np.load(tmp_path / f"out{i}.npz") as z:
            assert_same_features({k: z[f"layer{k}"] for k in reference}, reference)
    assert log.read_text().splitlines() == ["compute"]  # the second process waited and reused
    file = cache_file(cache)
    assert sorted(p.name for p in cache.iterdir()) == sorted([file.name, file.name + ".lock"])
    with np.load(file) as z:
        assert str(z["key"]) == cache_key(lite0, split.train_paths, SIZE, 0.0, 0)
        assert_same_features({k: z[f"layer{k}"] for k in reference}, reference)


def test_cache_dir_that_is_a_file_raises_naming_it(lite0, split, tmp_path):
    file = tmp_path / "not-a-folder"
    file.write_text("")
    for cache in (file, file / "below"):
        with pytest.raises(NotADirectoryError, match=f"cache folder {cache} cannot be used: {file} is a file"):
            run_extract(lite0, split, cache)


ARRAYS = {"a": np.arange(6.0).reshape(2, 3)}
SHAPES = {"a": (2, 3)}


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_cache_files_are_readable_as_the_umask_allows(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        cached_arrays(tmp_path, "x", "1" * 64, lambda: ARRAYS, SHAPES)
    finally:
        os.umask(old)
    (file,) = tmp_path.glob("*.npz")
    assert file.stat().st_mode & 0o777 == mode  # not mkstemp's 0o600


READ_ONLY_CHILD = """
import json, sys, warnings
import numpy as np
from tad.cache import CacheWarning, cached_arrays
folder, held = sys.argv[1:]
def fail():
    raise AssertionError("recomputed although cached")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    served = cached_arrays(folder, "x", held, fail, {"a": (2, 3)})["a"].tolist()
    computed = [cached_arrays(folder, "x", key * 64, lambda: {"a": np.full((2, 3), 7.0)}, {"a": (2, 3)})["a"].tolist()
                for key in "89"]
print(json.dumps({"served": served, "computed": computed,
                  "warnings": [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]}))
"""


def test_read_only_cache_serves_what_it_holds_and_computes_the_rest_with_one_warning(tmp_path):
    """The child cannot write the folder: as root (who writes anywhere) it runs in a mount namespace where the
    folder is a read-only bind mount; as another user the folder is made read-only by its mode."""
    held = "1" * 64
    cached_arrays(tmp_path, "x", held, lambda: ARRAYS, SHAPES)
    before = sorted(p.name for p in tmp_path.iterdir())
    child = [sys.executable, "-c", READ_ONLY_CHILD, str(tmp_path), held]
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("tests run as root and unshare(1) is missing: no way to make a folder root cannot write")
        probe = subprocess.run(["unshare", "-m", "mount", "--bind", "-o", "ro", str(tmp_path), str(tmp_path)],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            pytest.skip(f"tests run as root and a read-only bind mount is not allowed here: {probe.stderr.strip()}")
        child = ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$1" "$1" && shift && exec "$@"', "sh",
                 str(tmp_path), *child]
    else:
        tmp_path.chmod(0o555)
    try:
        out = subprocess.run(child, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    finally:
        tmp_path.chmod(0o755)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["served"] == ARRAYS["a"].tolist()
    assert result["computed"] == [np.full((2, 3), 7.0).tolist()] * 2
    assert len(result["warnings"]) == 1, result["warnings"]
    assert f"cache folder {tmp_path} cannot be written" in result["warnings"][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no lock file, no temporary, nothing saved


def test_read_only_cache_file_in_a_writable_folder_is_served(tmp_path):
    cached_arrays(tmp_path, "x", "1" * 64, lambda: ARRAYS, SHAPES)
    (file,) = tmp_path.glob("*.npz")
    file.chmod(0o444)
    got = cached_arrays(tmp_path, "x", "1" * 64, lambda: pytest.fail("recomputed although cached"), SHAPES)
    np.testing.assert_array_equal(got["a"], ARRAYS["a"])


# --- resumable grid -------------------------------------------------------------------------------

def trial_key(row: dict) -> tuple:
    return tuple(row[k] for k in KEY)


def test_grid_killed_with_sigkill_resumes_without_losing_or_repeating_trials(root, lite0, split, tmp_path):
    cache = tmp_path / "cache"
    grid = dict(layers=[1], poolings=["avg"], reductions=REDUCTIONS, estimators=["mvg", "knn1"],
                input_size=SIZE, cache_dir=cache, progress=False)
    reference = run_grid([split], lite0, tmp_path / "uninterrupted.jsonl", **grid)  # also fills the cache
    assert len(reference) == N_TRIALS

    results = tmp_path / "killed.jsonl"
    worker = start_worker("grid", root, cache, results, 0.2)
    deadline = time.monotonic() + 180
    while (not results.exists() or results.read_text().count("\n") < 5) and time.monotonic() < deadline:
        assert worker.poll() is None, worker.communicate()[0]
        time.sleep(0.02)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL
    lines = results.read_bytes().splitlines(keepends=True)
    assert 5 <= len(lines) < N_TRIALS, "the kill must land mid-grid"
    # A kill during a write leaves a line cut short: simulate it by cutting the last one in half.
    results.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    kept = {trial_key(json.loads(line)) for line in lines[:-1]}

    resumed = run_grid([split], lite0, results, **grid)
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    keys = [trial_key(r) for r in rows]
    assert len(keys) == len(set(keys)) == N_TRIALS  # none lost, none twice
    assert kept <= set(keys)
    assert len(resumed) == N_TRIALS
    on = ["reduction", "ratio", "estimator"]
    merged = reference[on + ["auroc", "ci_low", "ci_high"]].merge(
        resumed[on + ["auroc", "ci_low", "ci_high"]], on=on, suffixes=("_ref", "_resumed"))
    assert len(merged) == N_TRIALS
    for col in ("auroc", "ci_low", "ci_high"):
        np.testing.assert_array_equal(merged[f"{col}_ref"], merged[f"{col}_resumed"])


def test_two_processes_on_one_results_file_write_each_trial_once(root, lite0, split, tmp_path):
    cache, results = tmp_path / "cache", tmp_path / "shared.jsonl"
    run_grid([split], lite0, tmp_path / "warm.jsonl", layers=[1], estimators=["knn1"], input_size=SIZE,
             cache_dir=cache, progress=False)  # features cached: both start scoring at once
    workers = [start_worker("race", root, cache, results, 0.05, tmp_path / f"w{i}.ready") for i in range(2)]
    for w in workers:
        out, _ = w.communicate(timeout=240)
        assert w.returncode == 0, out
    keys = [trial_key(json.loads(line)) for line in results.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == N_TRIALS


def test_corrupt_line_inside_results_file_raises_naming_file_and_line(lite0, split, tmp_path):
    results = tmp_path / "r.jsonl"
    results.write_text('{"dataset": "synthetic"}\nnot json\n{"dataset": "x"}\n')
    with pytest.raises(ValueError, match=r"r\.jsonl line 2"):
        run_grid([split], lite0, results, layers=[1], estimators=["knn1"], input_size=SIZE, progress=False)


# --- degenerate data ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def features(lite0, split, reference):
    test = extract(lite0, split.test_paths, input_size=SIZE, num_workers=0, progress=False)
    return select(reference, 2, "avg", lite0), select(test, 2, "avg", lite0)


def test_one_training_image_scores_by_distance_or_raises_clearly(features):
    X, Y = features
    one = X[:1]
    np.testing.assert_allclose(score(one, Y, "none", None, "knn1"), np.linalg.norm(Y - one, axis=1), rtol=1e-10)
    for reduction, ratio, estimator in [("npca", 0.5, "knn1"), ("pca", 0.1, "knn1"), ("none", None, "mvg"),
                                        ("none", None, "flow")]:
        with pytest.raises(ValueError, match="at least 2 training images, got 1"):
            score(one, Y, reduction, ratio, estimator)


def test_one_image_split_reports_failed_trials_and_runs_the_rest(lite0, tmp_path):
    make_synthetic_mvtec(tmp_path, n_train=1, n_test_good=2, n_test_defective=2, size=SIZE, seed=0)
    split = load_split("synthetic", tmp_path)
    with pytest.warns(UserWarning, match=r"reduction='npca', ratio=0.5, estimator='knn1'.*at least 2 training images, got 1"):
        table = run_grid([split], lite0, tmp_path / "r.jsonl", layers=[1], reductions=[("npca", 0.5), ("none", None)],
                         estimators=["knn1"], input_size=SIZE, progress=False, workers=1)
    assert [(f["reduction"], f["ratio"]) for f in table.attrs["failures"]] == [("npca", 0.5)]
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [(r["reduction"], r["estimator"]) for r in rows] == [("none", "knn1")]  # no made-up row for the failure
    assert list(table.reduction) == ["none"]


def test_k_larger_than_training_set_raises_naming_k_and_size(features):
    X, Y = features
    with pytest.raises(ValueError, match=r"k=10.*\(6 images\)"):
        score(X, Y, "none", None, "knn10")
    with pytest.raises(ValueError, match=r"k=5.*\(3 images\)"):
        score(X[:3], Y, "npca", 0.5, "knn5")


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf - inf while projecting test rows
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features_raise_instead_of_scoring(lite0, reference, features, bad):
    X, Y = features
    broken = {k: v.copy() for k, v in reference.items()}
    broken[2][1, 0, 3] = bad
    with pytest.raises(ValueError, match="layer 2.*NaN or inf"):
        select(broken, 2, "avg", lite0)
    Xb = X.copy()
    Xb[0, 0] = bad
    for reduction, ratio in [("none", None), ("npca", 0.5)]:
        with pytest.raises(ValueError, match="NaN|infinity"):
            score(Xb, Y, reduction, ratio, "mvg")
        with pytest.raises(ValueError, match="NaN|infinity"):
            score(X, Xb, reduction, ratio, "knn1")
