"""The results table: one JSON line per trial, keyed by everything that determines it, the data included.

`data_key` digests a split's image bytes and labels; `read_rows` reads the table (tolerating blank lines and a
line cut short by a kill, warning on it and on duplicates); `Appender` is the one way to write it: under a file
lock, it adds only trials not already there, so any number of processes sharing one table give one row per trial.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

from filelock import FileLock

from tad.cache import file_sha256
from tad.data import Split

__all__ = ["KEY", "Appender", "data_key", "read_rows", "trial_key"]

# What determines a trial's result; two rows with equal keys are the same trial.
KEY = ("dataset", "data_key", "backbone", "input_size", "layer", "pooling", "reduction", "ratio", "basis",
       "estimator", "estimator_params", "noise_std", "n_augment", "seed")


def data_key(split: Split) -> str:
    """SHA-256 over a split's sorted (relative path, set, label, sha256 of the file): what its rows were computed on.

    Paths are taken relative to the folder the split's images share, so a copy of the same images elsewhere
    has the same key, while any changed, added, removed or relabelled image changes it.
    """
    samples = [("train", s) for s in split.train] + [("test", s) for s in split.test]
    if not samples:
        raise ValueError(f"split {split.name!r} has no images")
    base = Path(os.path.commonpath([str(s.path.parent) for _, s in samples]))
    entries = sorted((str(s.path.relative_to(base)), part, int(s.label), file_sha256(s.path)) for part, s in samples)
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def trial_key(row: dict) -> tuple:
    """The row's values of `KEY`, ratios rounded to 6 digits and a missing ratio (None or NaN) as None."""
    ratio = row.get("ratio")
    if ratio is None or (isinstance(ratio, float) and math.isnan(ratio)):
        ratio = None
    else:
        ratio = round(ratio, 6)
    return tuple(ratio if k == "ratio" else row.get(k, "") for k in KEY)


def read_rows(path: str | Path) -> list[dict]:
    """Rows of a results file, first occurrence of each trial only.

    Blank lines are skipped. A last line without its newline is read if it is a whole row (a file edited by
    hand, or written by another tool); if it is not (a writer killed mid-line), it is ignored with a
    `UserWarning` naming the file and line. A duplicated trial is reported with a `UserWarning` naming the
    lines, and its first row kept. Any other line that is not JSON raises a ValueError naming the file and line.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"results file {path} is a folder; expected a JSON-lines file")
    if not path.exists():
        return []
    data = path.read_bytes()
    end = _complete_end(path, data, 0)
    rows, first, dups = [], {}, []
    for i, line in enumerate(data[:end].splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"results file {path} line {i} is not valid JSON: {err}") from err
        key = trial_key(row)
        if key in first:
            dups.append((first[key], i))
            continue
        first[key] = i
        rows.append(row)
    if dups:
        lines = ", ".join(f"line {b} repeats line {a}" for a, b in dups[:5]) + (" ..." if len(dups) > 5 else "")
        warnings.warn(f"results file {path}: {len(dups)} duplicate trial(s) ({lines}); keeping the first",
                      stacklevel=2)
    return rows


class Appender:
    """The writer of one results file: appends rows of trials not yet in it, under a file lock.

    The lock (``<results>.lock``) is held across reading what other writers added since the last append and
    writing the new rows, so concurrent writers never both add a trial. A line cut short by a killed writer
    is cut off before appending (with a warning naming it); a last row that only lacks its newline gets it.
    Rows are flushed to the OS at once; `sync` also puts them on disk.

    Use as a context manager::

        with Appender(path) as out:
            written = out.append(rows)   # the rows that were new
            out.sync()
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(f"results file {self.path} is a folder; expected a JSON-lines file")
        self.lock = FileLock(str(self.path) + ".lock")
        self.keys: set[tuple] = set()
        self._offset, self._lines = 0, 0
        self._file = None

    def __enter__(self) -> Appender:
        self._file = open(self.path, "a+b")
        with self.lock:
            self._catch_up()
        return self

    def __exit__(self, *exc) -> None:
        self.sync()
        self._file.close()

    def append(self, rows: Iterable[dict]) -> list[dict]:
        """Append the rows whose trial is not in the file yet; return those."""
        rows = list(rows)
        with self.lock:
            self._catch_up()
            new = []
            for row in rows:
                key = trial_key(row)
                if key not in self.keys:
                    self.keys.add(key)
                    new.append(row)
            if new:
                self._file.write(b"".join(json.dumps(r).encode() + b"\n" for r in new))
                self._file.flush()  # in the OS now: a killed process loses nothing
                self._offset = self._file.tell()
                self._lines += len(new)
        return new

    def sync(self) -> None:
        """Put what was appended on disk (survives a power cut)."""
        os.fsync(self._file.fileno())

    def _catch_up(self) -> None:
        """Read the trials other writers appended since the last call; cut a line a killed writer left half done."""
        self._file.seek(self._offset)
        data = self._file.read()
        good_end = _complete_end(self.path, data, self._lines)
        if good_end < len(data):  # no writer is mid-line while we hold the lock: this one was killed
            self._file.truncate(self._offset + good_end)
        elif data and not data.endswith(b"\n"):  # a whole last row without its newline: end it, keep it
            self._file.seek(0, os.SEEK_END)
            self._file.write(b"\n")
            self._file.flush()
            data += b"\n"
            good_end += 1
        for i, line in enumerate(data[:good_end].split(b"\n")[:-1], 1):
            if line.strip():
                try:
                    self.keys.add(trial_key(json.loads(line)))
                except json.JSONDecodeError as err:
                    raise ValueError(f"results file {self.path} line {self._lines + i} is not valid JSON: "
                                     f"{err}") from err
        self._offset += good_end
        self._lines += data[:good_end].count(b"\n")
        self._file.seek(0, os.SEEK_END)


def _complete_end(path: Path, data: bytes, lines_before: int) -> int:
    """Where the whole rows of ``data`` end: after its last newline, or at its end if the text after the last
    newline is a whole row (a JSON object). A fragment that is not is left out, with a `UserWarning` naming
    ``path`` and its line number (``lines_before`` lines precede ``data`` in the file)."""
    end = data.rfind(b"\n") + 1
    tail = data[end:]
    if not tail.strip():
        return end
    try:
        whole = isinstance(json.loads(tail), dict)
    except (json.JSONDecodeError, UnicodeDecodeError):
        whole = False
    if whole:
        return len(data)
    line = lines_before + data[:end].count(b"\n") + 1
    warnings.warn(f"results file {path} line {line} is cut short ({len(tail)} bytes without a newline, not a "
                  "whole row; a writer killed mid-line?): ignored", stacklevel=3)
    return end
