"""Tests of MVTec AD download: resume, checksum, safe extraction and offline behaviour, against a local server."""

import hashlib
import http.server
import io
import socket
import tarfile
import threading
from pathlib import Path

import pytest

from tad.data import DataError, DataWarning, DatasetUnavailable, load_mvtec
from tad.download import download_mvtec, ensure_mvtec


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` (name -> bytes), honouring ``Range: bytes=N-`` unless ``server.ignore_range``."""

    def do_GET(self):
        body = self.server.files.get(self.path.lstrip("/"))
        if body is None:
            self.send_error(404)
            return
        header = self.headers.get("Range")
        self.server.ranges.append(header)
        start = int(header.removeprefix("bytes=").rstrip("-")) if header and not self.server.ignore_range else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    httpd.files, httpd.ranges, httpd.ignore_range = {}, [], False
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _tar_xz(entries):
    """tar.xz bytes from (TarInfo, data or None) pairs."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


@pytest.fixture
def archive(tmp_path):
    """A tiny MVTec-layout archive: category "toy" with 3 train, 1 good and 1 defective test PNG + mask."""
    from PIL import Image

    def png(value):
        out = io.BytesIO()
        Image.new("L", (8, 8), value).save(out, format="PNG")
        return out.getvalue()

    entries = [_file(f"toy/train/good/{i:03d}.png", png(100 + i)) for i in range(3)]
    entries += [
        _file("toy/test/good/000.png", png(90)),
        _file("toy/test/crack/000.png", png(250)),
        _file("toy/ground_truth/crack/000_mask.png", png(255)),
        _file("toy/license.txt", b"CC BY-NC-SA 4.0\n" * 200),
    ]
    data = _tar_xz(entries)
    return data, hashlib.sha256(data).hexdigest()


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_full_download_verifies_and_extracts(server, archive, tmp_path):
    data, digest = archive
    server.files["mvtec.tar.xz"] = data
    root = download_mvtec(tmp_path / "data", url=f"{server.url}/mvtec.tar.xz", sha256=digest, timeout=5)
    assert root == tmp_path / "data"
    assert (root / "mvtec.tar.xz").read_bytes() == data
    assert not (root / "mvtec.tar.xz.part").exists()
    split = load_mvtec(root, "toy", require_masks=True)
    assert (len(split.train), len(split.test)) == (3, 2)
    assert server.ranges == [None]


def test_partial_download_resumes_with_range(server, archive, tmp_path):
    data, digest = archive
    server.files["mvtec.tar.xz"] = data
    root = tmp_path / "data"
    root.mkdir()
    half = len(data) // 2
    (root / "mvtec.tar.xz.part").write_bytes(data[:half])
    download_mvtec(root, url=f"{server.url}/mvtec.tar.xz", sha256=digest, timeout=5)
    assert server.ranges == [f"bytes={half}-"]
    assert (root / "mvtec.tar.xz").read_bytes() == data
    assert (root / "toy" / "train" / "good" / "002.png").is_file()


def test_server_ignoring_range_restarts_from_zero(server, archive, tmp_path):
    data, digest = archive
    server.files["mvtec.tar.xz"] = data
    server.ignore_range = True
    root = tmp_path / "data"
    root.mkdir()
    (root / "mvtec.tar.xz.part").write_bytes(b"garbage-prefix")
    download_mvtec(root, url=f"{server.url}/mvtec.tar.xz", sha256=digest, timeout=5)
    assert server.ranges == ["bytes=14-"]
    assert (root / "mvtec.tar.xz").read_bytes() == data


def test_sha_mismatch_deletes_file_and_raises(server, archive, tmp_path):
    data, digest = archive
    server.files["mvtec.tar.xz"] = data
    wrong = "0" * 64
    with pytest.raises(DataError, match="mismatch") as info:
        download_mvtec(tmp_path, url=f"{server.url}/mvtec.tar.xz", sha256=wrong, timeout=5)
    assert wrong in str(info.value) and digest in str(info.value)
    assert not (tmp_path / "mvtec.tar.xz.part").exists() and not (tmp_path / "mvtec.tar.xz").exists()
    assert not (tmp_path / "toy").exists()


@pytest.mark.parametrize("evil_name", ["../evil.txt", "/tmp/tad_evil_absolute.txt", "toy/../../evil.txt"])
def test_unsafe_member_is_refused_and_nothing_written(server, tmp_path, evil_name):
    data = _tar_xz([_file("toy/ok.txt", b"fine"), _file(evil_name, b"evil")])
    server.files["bad.tar.xz"] = data
    root = tmp_path / "data"
    with pytest.raises(DataError, match="outside"):
        download_mvtec(root, url=f"{server.url}/bad.tar.xz", sha256=hashlib.sha256(data).hexdigest(), timeout=5)
    assert not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/tad_evil_absolute.txt").exists()
    assert not (root / "toy").exists()


def test_link_member_is_refused(server, tmp_path):
    link = tarfile.TarInfo("toy/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    data = _tar_xz([(link, None)])
    server.files["link.tar.xz"] = data
    with pytest.raises(DataError, match="link"):
        download_mvtec(tmp_path, url=f"{server.url}/link.tar.xz", sha256=hashlib.sha256(data).hexdigest(), timeout=5)
    assert not (tmp_path / "toy" / "link").exists()


def test_unreachable_url_raises_unavailable_with_manual_instructions(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/mvtec.tar.xz"
    with pytest.raises(DatasetUnavailable) as info:
        download_mvtec(tmp_path, url=url, timeout=5)
    message = str(info.value)
    assert url in message and "by hand" in message and "TAD_DATA" in message
    assert "train/good" in message


def test_missing_file_on_server_raises_unavailable(server, tmp_path):
    with pytest.raises(DatasetUnavailable, match="404"):
        download_mvtec(tmp_path, url=f"{server.url}/missing.tar.xz", timeout=5)


def test_ensure_mvtec_offline_returns_present_and_missing(archive, tmp_path):
    data, _ = archive
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(tmp_path, filter="data")
    url = f"http://127.0.0.1:{_closed_port()}/mvtec.tar.xz"
    with pytest.warns(DataWarning, match="unavailable"):
        present, missing = ensure_mvtec(tmp_path, ["toy", "bottle"], url=url)
    assert (present, missing) == (["toy"], ["bottle"])


def test_ensure_mvtec_downloads_when_missing(server, archive, tmp_path):
    data, digest = archive
    server.files["mvtec.tar.xz"] = data
    present, missing = ensure_mvtec(tmp_path, ["toy"], url=f"{server.url}/mvtec.tar.xz", sha256=digest)
    assert (present, missing) == (["toy"], [])


def test_ensure_mvtec_without_download_does_not_fetch(server, tmp_path):
    assert ensure_mvtec(tmp_path, ["toy"], download=False, url=f"{server.url}/x.tar.xz") == ([], ["toy"])
    assert server.ranges == []


def test_ensure_mvtec_reports_root_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    url = f"http://127.0.0.1:{_closed_port()}/mvtec.tar.xz"
    with pytest.warns(DataWarning, match="unavailable under .*Not a directory"):
        assert ensure_mvtec(blocker / "root", ["toy"], url=url) == ([], ["toy"])


def test_ensure_mvtec_reports_root_it_cannot_write_to(server, archive, tmp_path):
    # A folder where the partial download must go stands in for a read-only root (chmod does not bind root).
    data, digest = archive
    server.files["mvtec.tar.xz"] = data
    (tmp_path / "mvtec.tar.xz.part").mkdir()
    with pytest.warns(DataWarning, match="unavailable"):
        assert ensure_mvtec(tmp_path, ["toy"], url=f"{server.url}/mvtec.tar.xz", sha256=digest) == ([], ["toy"])


def test_hand_placed_archive_is_checked_and_used_without_download(archive, tmp_path):
    data, digest = archive
    (tmp_path / "mvtec.tar.xz").write_bytes(data)
    url = f"http://127.0.0.1:{_closed_port()}/mvtec.tar.xz"  # offline: only the placed file can serve
    download_mvtec(tmp_path, url=url, sha256=digest)
    assert (tmp_path / "toy" / "test" / "crack" / "000.png").is_file()


@pytest.mark.parametrize("content", ["truncated", "unrelated"])
def test_hand_placed_bad_archive_is_refused_by_checksum_and_kept(archive, tmp_path, content):
    data, digest = archive
    placed = data[: len(data) // 2] if content == "truncated" else b"<html>not an archive</html>"
    (tmp_path / "mvtec.tar.xz").write_bytes(placed)
    url = f"http://127.0.0.1:{_closed_port()}/mvtec.tar.xz"
    with pytest.raises(DataError, match=r"SHA-256 mismatch for archive .*mvtec.tar.xz \(already present\)"):
        download_mvtec(tmp_path, url=url, sha256=digest)
    assert (tmp_path / "mvtec.tar.xz").read_bytes() == placed  # the user's file is not deleted
    assert not (tmp_path / "toy").exists()


@pytest.mark.parametrize("content", ["truncated", "unrelated"])
def test_archive_that_is_not_a_tar_gives_one_data_error(archive, tmp_path, content):
    # Matching checksum (a custom sha256), yet not a complete tar: a DataError, never a raw tarfile error.
    data, _ = archive
    placed = data[: len(data) // 2] if content == "truncated" else b"plain text, not a tar archive\n" * 50
    (tmp_path / "mvtec.tar.xz").write_bytes(placed)
    url = f"http://127.0.0.1:{_closed_port()}/mvtec.tar.xz"
    with pytest.raises(DataError, match="is not a complete tar archive"):
        download_mvtec(tmp_path, url=url, sha256=hashlib.sha256(placed).hexdigest())
    assert not (tmp_path / "toy").exists()
