"""The official MVTec AD archive: download (resumable), SHA-256 check and safe extraction into a data root.

In: a data root (default `tad.data.default_root`). Out: that root holding ``<category>/train``, ``test`` and
``ground_truth`` folders, as `tad.data.load_mvtec` reads them.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zlib
from http.client import HTTPException
from pathlib import Path

from tqdm import tqdm

from tad.data import DataError, DatasetUnavailable, DataWarning, available_categories, resolve_root

__all__ = ["MVTEC_URL", "MVTEC_SHA256", "download_mvtec", "ensure_mvtec", "sha256_file"]

MVTEC_URL = (
    "https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f282/download/"
    "420938113-1629952094/mvtec_anomaly_detection.tar.xz"
)
MVTEC_SHA256 = "cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d"


def download_mvtec(
    root: str | Path | None = None,
    *,
    url: str = MVTEC_URL,
    sha256: str = MVTEC_SHA256,
    timeout: float = 30,
) -> Path:
    """Download, verify and extract the MVTec AD archive into ``root``.

    The archive is written to ``root/<archive>.part`` (resumed with an HTTP Range request if present; restarted
    when the server ignores Range), checked against ``sha256``, renamed to ``root/<archive>`` and kept there.
    An archive already at ``root/<archive>`` (a previous download, or one placed by hand) is checked against
    ``sha256`` the same way before it is used. Extraction refuses links, devices and any member that would
    land outside ``root``; nothing is extracted unless every member passes.

    Parameters
    ----------
    root : str, Path or None
        Target folder; None means `tad.data.default_root`.
    url : str
        Archive URL.
    sha256 : str
        Expected SHA-256 hex digest of the archive.
    timeout : float, default 30
        Socket timeout in seconds.

    Returns
    -------
    Path
        ``root``, now holding the extracted categories.

    Raises
    ------
    DatasetUnavailable
        If the download fails (network) or ``root`` cannot be created or written (e.g. read-only); the message
        says how to place the data by hand.
    DataError
        If the checksum does not match (a download is deleted, a hand-placed file is kept and named), or the
        archive is not a complete tar archive or holds unsafe members.
    """
    root = resolve_root(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DatasetUnavailable(
            f"cannot create the data root {root} to download MVTec AD into: {err}. " + _manual_instructions(root, url)
        ) from err
    name = Path(urllib.parse.urlparse(url).path).name or "mvtec_anomaly_detection.tar.xz"
    archive = root / name
    if archive.is_file():
        _check_sha256(archive, sha256, f"archive {archive} (already present)",
                      "the file was kept: delete or replace it with the official archive")
    else:
        part = root / f"{name}.part"
        try:
            _fetch(url, part, timeout)
        except (urllib.error.URLError, HTTPException, OSError) as err:
            raise DatasetUnavailable(
                f"could not download MVTec AD from {url}: {err}. " + _manual_instructions(root, url)
            ) from err
        try:
            _check_sha256(part, sha256, f"{part} downloaded from {url}", "the file was deleted")
        except DataError:
            part.unlink()
            raise
        os.replace(part, archive)
    _safe_extract(archive, root)
    return root


def ensure_mvtec(
    root: str | Path | None,
    categories: list[str] | tuple[str, ...],
    *,
    download: bool = True,
    url: str = MVTEC_URL,
    sha256: str = MVTEC_SHA256,
) -> tuple[list[str], list[str]]:
    """Make the requested categories available, downloading once if some are missing.

    Never raises for being offline or for a read-only ``root``: a failed download gives one
    :class:`~tad.data.DataWarning` line and the categories already present are returned.

    Returns
    -------
    present, missing : list of str
        Requested categories found (after any download) and those still missing, in request order.
    """
    root = resolve_root(root)

    def split() -> tuple[list[str], list[str]]:
        have = set(available_categories(root)) if root.is_dir() else set()
        return [c for c in categories if c in have], [c for c in categories if c not in have]

    present, missing = split()
    if missing and download:
        try:
            download_mvtec(root, url=url, sha256=sha256)
        except DatasetUnavailable as err:
            reason = str(err).replace("\n", " ")
            warnings.warn(
                f"MVTec AD categories {missing} unavailable under {root} (download failed: {reason}); "
                f"continuing with {present}",
                DataWarning,
                stacklevel=2,
            )
            return present, missing
        present, missing = split()
    return present, missing


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --- helpers -----------------------------------------------------------------------------------

def _check_sha256(path: Path, expected: str, what: str, consequence: str) -> None:
    digest = sha256_file(path)
    if digest != expected.lower():
        raise DataError(
            f"SHA-256 mismatch for {what}: expected {expected.lower()}, got {digest} "
            f"(a truncated or different file); {consequence}"
        )


def _manual_instructions(root: Path, url: str) -> str:
    return (
        f"To place MVTec AD by hand: download {url} (or the archive from "
        "https://www.mvtec.com/company/research/datasets/mvtec-ad), extract it so that "
        f"{root}/<category>/train/good/*.png, {root}/<category>/test/<defect>/*.png and "
        f"{root}/<category>/ground_truth/<defect>/*_mask.png exist, then set TAD_DATA={root} or pass that root."
    )


def _fetch(url: str, part: Path, timeout: float) -> None:
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing left to fetch: the partial file is complete
            return
        raise
    with response:
        if response.status != 206:
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with open(part, "ab" if offset else "wb") as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, desc=part.name, disable=None
        ) as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))


def _safe_extract(archive: Path, root: Path) -> None:
    base = root.resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()  # reads the whole index: a truncated archive fails here, before writing
            for member in members:
                target = (base / member.name).resolve()
                if os.path.isabs(member.name) or (target != base and base not in target.parents):
                    raise DataError(f"archive {archive}: member {member.name!r} would be written outside {root}")
                if not (member.isfile() or member.isdir()):
                    raise DataError(f"archive {archive}: member {member.name!r} is a link or device, expected files")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(base, members=members, filter="data")
            else:
                tar.extractall(base, members=members)
    except (tarfile.TarError, EOFError, OSError, lzma.LZMAError, zlib.error) as err:
        if isinstance(err, OSError) and not isinstance(err, EOFError) and err.errno is not None:
            raise  # a real file-system failure (disk full, permissions): not the archive's fault
        raise DataError(f"archive {archive} is not a complete tar archive ({type(err).__name__}: {err})") from err
