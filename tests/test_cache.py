"""Tests for tad.cache's file digest: each version of a file is read once, by the cache and the results alike."""

import hashlib
import os
from pathlib import Path

import pytest

from conftest import make_synthetic_mvtec
from tad.cache import content_key, file_sha256
from tad.data import load_split
from tad.results import data_key


def test_loading_content_key_and_data_key_read_each_image_once(tmp_path, monkeypatch):
    make_synthetic_mvtec(tmp_path, n_train=3, n_test_good=1, n_test_defective=1, size=8)
    reads: list[Path] = []
    read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or read_bytes(self))
    split = load_split("synthetic", tmp_path)
    for _ in range(3):
        content_key(split.train_paths, {"a": 1})
        data_key(split)
    assert sorted(reads) == sorted(split.train_paths + split.test_paths)


def test_digest_is_read_again_when_the_file_changes(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"one")
    assert file_sha256(path) == hashlib.sha256(b"one").hexdigest()
    path.write_bytes(b"two!")
    os.utime(path, ns=(1, 1))  # even with an old modification time: the size changed
    assert file_sha256(path) == hashlib.sha256(b"two!").hexdigest()


def test_content_key_is_sha256_of_file_digests_then_settings(tmp_path):
    files = [tmp_path / "a", tmp_path / "b"]
    for f, text in zip(files, (b"x", b"y")):
        f.write_bytes(text)
    h = hashlib.sha256(hashlib.sha256(b"x").digest() + hashlib.sha256(b"y").digest() + b'{"k": 2}')
    assert content_key(files, {"k": 2}) == h.hexdigest()


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    from tad.cache import atomic_write

    target = tmp_path / "detector.safetensors"
    atomic_write(target, lambda f: f.write(b"first"))

    def half_then_fail(f):
        f.write(b"half of a second file")
        raise KeyboardInterrupt  # an interrupted save

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["detector.safetensors"]  # no temporary file left
