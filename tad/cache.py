"""On-disk cache of computed arrays: a content key in, the arrays of one ``.npz`` file out.

`file_sha256` digests a file once per version (path, size, modification time); `content_key` hashes input
files and settings; `cached_arrays` serves a valid file or computes, under a file
lock, and writes atomically (group-readable). A corrupt file is recomputed with a warning naming it; a cache
folder that cannot be written serves what it holds and computes the rest in memory, with one warning.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import warnings
from collections.abc import Callable, Iterable
from typing import BinaryIO
from pathlib import Path

import numpy as np
from filelock import FileLock

__all__ = ["Arrays", "CacheWarning", "atomic_write", "cached_arrays", "content_key", "extend_key", "file_sha256"]

Arrays = dict[str, np.ndarray]


class CacheWarning(UserWarning):
    """A cache file was corrupt or the cache folder cannot be written; the results are computed anyway."""


def content_key(paths: Iterable[str | Path], settings: dict) -> str:
    """SHA-256 over the files' contents (in order, not their names) and the settings (as sorted JSON).

    Raises
    ------
    FileNotFoundError
        Naming a file that cannot be read.
    """
    h = hashlib.sha256()
    for p in paths:
        h.update(bytes.fromhex(file_sha256(Path(p))))
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read once for as long as its path, size and modification time stay the same.

    Raises
    ------
    FileNotFoundError
        Naming a file that cannot be read.
    """
    path = Path(path)
    try:
        st = path.stat()
        version = (str(path), st.st_size, st.st_mtime_ns)
        if version not in _digests:
            _digests[version] = hashlib.sha256(path.read_bytes()).hexdigest()
        return _digests[version]
    except OSError as err:
        raise FileNotFoundError(f"image file {path} cannot be read: {err}") from err


def extend_key(key: str, settings: dict) -> str:
    """SHA-256 of a key and further settings: the key of a result computed from the key's inputs."""
    return hashlib.sha256(key.encode() + json.dumps(settings, sort_keys=True).encode()).hexdigest()


def cached_arrays(
    cache_dir: str | Path | None,
    name: str,
    key: str,
    compute: Callable[[], Arrays],
    shapes: dict[str, tuple[int | None, ...]],
) -> Arrays:
    """The arrays computed under ``key``: read from the cache folder if a valid file is there, else computed.

    The file is ``{cache_dir}/{name}-{key[:20]}.npz`` and holds the arrays and the full key. It is read
    without a lock (writes are atomic renames, so a reader sees a whole file or none); a miss takes the
    file's lock, so a second process waits for the first and reuses its result instead of recomputing.

    Parameters
    ----------
    cache_dir : path or None
        None: compute, keep nothing. A folder that does not exist is created.
    name : str
        Readable part of the file name.
    key : str
        Hex digest of everything that determines the arrays (`content_key`).
    compute : callable
        Computes the arrays, by name.
    shapes : dict of str to tuple
        The arrays a file must hold, by name, and their shapes (None: any length on that axis). A file
        whose arrays are missing, of another shape or not finite is recomputed.

    Returns
    -------
    dict of str to ndarray

    Raises
    ------
    NotADirectoryError
        If ``cache_dir`` or a folder above it is a file.
    """
    if cache_dir is None:
        return compute()
    folder = _check_folder(Path(cache_dir))
    file = folder / f"{name}-{key[:20]}.npz"
    arrays, why = _read(file, key, shapes)
    if arrays is not None:
        return arrays
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(file) + ".lock")
        lock.acquire()
    except OSError as err:
        if not _is_read_only(err):
            raise
        _warn_unusable(file, why)
        _warn_read_only(folder, err)
        return compute()
    try:
        arrays, why = _read(file, key, shapes)  # another process may have written it meanwhile
        if arrays is not None:
            return arrays
        _warn_unusable(file, why)
        arrays = compute()
        try:
            _atomic_savez(file, key=np.array(key), **arrays)
        except OSError as err:
            if not _is_read_only(err):
                raise
            _warn_read_only(folder, err)
        return arrays
    finally:
        lock.release()


# --- helpers -----------------------------------------------------------------------------------

_read_only_warned: set[Path] = set()
_digests: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256 of the file's bytes


def _check_folder(folder: Path) -> Path:
    for path in (folder, *folder.parents):  # the nearest existing one must be a folder
        if path.exists():
            if not path.is_dir():
                raise NotADirectoryError(f"cache folder {folder} cannot be used: {path} is a file, not a folder")
            break
    return folder


def _read(file: Path, key: str, shapes: dict[str, tuple[int | None, ...]]) -> tuple[Arrays | None, str | None]:
    """The arrays of a cache file written under ``key``, or None and why (None as well if it is missing)."""
    try:
        with open(file, "rb") as f, np.load(f) as z:  # our handle: np.load leaks its own on a corrupt file
            arrays = {name: z[name] for name in z.files}
    except FileNotFoundError:
        return None, None
    except Exception as err:  # truncated or corrupt file of any kind: recompute, never trust
        return None, f"{type(err).__name__}: {err}"
    if str(arrays.pop("key", "")) != key:
        return None, "written under another key"
    for name, shape in shapes.items():
        if name not in arrays:
            return None, f"no array {name!r}"
        got = arrays[name].shape
        if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got)):
            return None, f"{name} has shape {got}, expected {tuple('any' if s is None else s for s in shape)}"
        if not np.isfinite(arrays[name]).all():
            return None, f"{name} holds NaN or inf"
    return arrays, None


def _is_read_only(err: OSError) -> bool:
    return err.errno in (errno.EACCES, errno.EPERM, errno.EROFS)


def _warn_unusable(file: Path, why: str | None) -> None:
    if why is not None:
        warnings.warn(f"cache file {file} is unusable ({why}); recomputing it", CacheWarning, stacklevel=4)


def _warn_read_only(folder: Path, err: OSError) -> None:
    """Warn once per folder and process: a grid would otherwise repeat it for every extraction."""
    if folder not in _read_only_warned:
        _read_only_warned.add(folder)
        warnings.warn(f"cache folder {folder} cannot be written ({err.strerror}): serving what it holds and "
                      "computing the rest in memory, saving nothing", CacheWarning, stacklevel=4)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` through ``write(file)`` into a temporary file in the same folder, fsync, then rename.

    Readers never see half a file, and an interrupted write leaves the previous file (if any) intact. The
    file is created with mode 0o666 less the umask (0o644 under the usual umask 022), readable by the group
    as any other file the user writes. Returns ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _atomic_savez(file: Path, **arrays: np.ndarray) -> None:
    """`np.savez` through `atomic_write`."""
    atomic_write(file, lambda f: np.savez(f, **arrays))

