"""md5 of data exactly as DVC 3 computes it, without re-reading unchanged files.

A file's md5 comes, in order, from DVC's own state database (inode/mtime/size -> md5,
filled by ``dvc add``/``dvc status``; read-only), from jupyreg's cache keyed the same
way, and only then from reading the file. A directory's md5 is DVC's ``.dir`` hash:
the md5 of the JSON listing ``[{"md5", "relpath"}]`` sorted by relpath.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CHUNK_SIZE = 1 << 20
_DVC_STATE_VERSION = 1
_SQLITE_MAX_VARIABLES = 900
# Names DVC never includes in a directory's listing.
_IGNORED_NAMES = frozenset({".git", ".hg", ".dvc"})

# Where an md5 came from, from cheapest to dearest.
DVC_STATE, CACHE, COMPUTED = "dvc-state", "cache", "computed"


def md5_of_file(path: str | os.PathLike[str]) -> str:
    """Streaming md5 of a file's raw bytes (DVC 3 ``hash: md5``)."""
    digest = hashlib.md5(usedforsecurity=False)
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as file:
        while size := file.readinto(buffer):
            digest.update(view[:size])
    return digest.hexdigest()


def md5_of_listing(listing: Iterable[tuple[str, str]]) -> str:
    """DVC's ``.dir`` md5 for ``(relpath, md5)`` pairs, relpaths in POSIX form."""
    entries = sorted(({"md5": md5, "relpath": rel} for rel, md5 in listing), key=_relpath)
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode()).hexdigest() + ".dir"


def _relpath(entry: dict[str, str]) -> str:
    return entry["relpath"]


def files_under(directory: Path) -> list[tuple[str, Path]]:
    """``(posix relpath, path)`` of every file DVC would list for ``directory``."""
    found = []
    for top, dirs, files in os.walk(directory, followlinks=True):
        dirs[:] = [d for d in dirs if d not in _IGNORED_NAMES]
        for name in files:
            if name not in _IGNORED_NAMES:
                path = Path(top, name)
                found.append((path.relative_to(directory).as_posix(), path))
    return found


@dataclass(frozen=True)
class Hashed:
    md5: str
    size: int
    source: str  # DVC_STATE, CACHE or COMPUTED


class Md5Lookup:
    """md5 of files from DVC's state, then our cache, then the bytes; remembers new ones."""

    def __init__(self, dvc_state: Path | None, cache_file: Path | None) -> None:
        self._dvc_state = dvc_state
        self._cache_file = cache_file
        self._new: list[tuple[str, int, int, int, str]] = []

    def md5_many(self, paths: Sequence[Path]) -> dict[Path, Hashed]:
        """md5 of each existing file of ``paths`` (missing ones are left out)."""
        stats = {}
        for path in paths:
            try:
                stats[path] = os.stat(path)
            except OSError:
                continue
        found = self._from_dvc_state(stats)
        found.update(self._from_cache({p: s for p, s in stats.items() if p not in found}))
        for path, stat in stats.items():
            if path not in found:
                md5 = md5_of_file(path)
                found[path] = Hashed(md5, stat.st_size, COMPUTED)
                self._new.append((str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns, md5))
        return found

    def save(self) -> None:
        """Remember the md5s computed in this capture for the next one."""
        if not self._new or self._cache_file is None:
            return
        try:
            self._cache_file.parent.mkdir(parents=True, exist_ok=True)
            with _connect(self._cache_file) as db:
                _create_cache_table(db)
                db.executemany("INSERT OR REPLACE INTO md5 VALUES (?, ?, ?, ?, ?)", self._new)
        except (OSError, sqlite3.Error):
            return  # a cache that cannot be written only costs a re-hash next time
        self._new.clear()

    def _from_dvc_state(self, stats: dict[Path, os.stat_result]) -> dict[Path, Hashed]:
        """Entries DVC saved for the same inode, mtime and size (its ``_checksum``)."""
        query = "SELECT key, value FROM Cache WHERE raw = 1 AND key IN"
        rows = _select(self._dvc_state, query, stats)
        found = {}
        for key, value in rows:
            path = Path(key)
            stat = stats[path]
            try:
                entry = json.loads(value)
                md5 = entry["hash_info"]["md5"]
            except (ValueError, KeyError, TypeError):
                continue
            if (
                entry.get("version") == _DVC_STATE_VERSION
                and entry.get("checksum") == dvc_state_checksum(stat)
                and isinstance(md5, str)
            ):
                found[path] = Hashed(md5, stat.st_size, DVC_STATE)
        return found

    def _from_cache(self, stats: dict[Path, os.stat_result]) -> dict[Path, Hashed]:
        query = "SELECT path, inode, size, mtime_ns, md5 FROM md5 WHERE path IN"
        found = {}
        for key, inode, size, mtime_ns, md5 in _select(self._cache_file, query, stats):
            path = Path(key)
            stat = stats[path]
            if (inode, size, mtime_ns) == (stat.st_ino, stat.st_size, stat.st_mtime_ns):
                found[path] = Hashed(md5, size, CACHE)
        return found


def dvc_state_checksum(stat: os.stat_result) -> str:
    """DVC's state key for a file: ``int(md5(str(([inode, mtime, size],))), 16)``."""
    token = str(([stat.st_ino, stat.st_mtime, stat.st_size],)).encode()
    return str(int(hashlib.md5(token, usedforsecurity=False).hexdigest(), 16))


def _select(db_file: Path | None, query: str, keys: dict[Path, os.stat_result]) -> list[tuple]:
    """Rows of ``query IN (keys)`` from a read-only sqlite file; none on any error."""
    if db_file is None or not keys:
        return []
    names = [str(path) for path in keys]
    rows: list[tuple] = []
    try:
        with _connect(db_file, read_only=True) as db:
            for start in range(0, len(names), _SQLITE_MAX_VARIABLES):
                chunk = names[start : start + _SQLITE_MAX_VARIABLES]
                marks = ", ".join("?" * len(chunk))
                rows.extend(db.execute(f"{query} ({marks})", chunk))  # noqa: S608
    except sqlite3.Error:
        return []
    return rows


@contextmanager
def _connect(db_file: Path, read_only: bool = False) -> Iterator[sqlite3.Connection]:
    """A connection committed on success and always closed."""
    target = f"{db_file.as_uri()}?mode=ro" if read_only else str(db_file)
    db = sqlite3.connect(target, uri=read_only, timeout=1)
    try:
        with db:
            yield db
    finally:
        db.close()


def _create_cache_table(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS md5 (path TEXT PRIMARY KEY, inode INTEGER, size INTEGER,"
        " mtime_ns INTEGER, md5 TEXT)"
    )
