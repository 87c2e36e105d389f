"""md5 of data with DVC's own code (dvc-data), without re-reading unchanged files.

A file's md5 is looked up in a dvc-data ``State`` (inode, mtime and size -> md5) and
only read when missing there, then saved to it: DVC's own state database for a DVC
repository (the one ``dvc add`` and ``dvc status`` fill, found by DVC itself), else
jupyreg's, the same class in jupyreg's cache directory. A directory's md5 is dvc-data's
``Tree`` digest (DVC's ``.dir`` hash) of its files. dvc-data is imported on first use.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dvc_data.hashfile._ignore import Ignore
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.state import StateBase

# Where an md5 came from, from cheapest to dearest.
DVC_STATE, CACHE, COMPUTED = "dvc-state", "cache", "computed"
_MD5 = "md5"  # DVC 3: md5 of the raw bytes (DVC 2's "md5-dos2unix" is never reused)


def md5_of_file(path: str | os.PathLike[str]) -> str:
    """md5 of a file's bytes, by dvc-data's hasher (what DVC 3 records)."""
    from dvc_data.hashfile.hash import file_md5

    return file_md5(os.fspath(path), name=_MD5)


@dataclass(frozen=True)
class Hashed:
    md5: str
    size: int
    source: str  # DVC_STATE, CACHE or COMPUTED


class Md5Lookup:
    """md5 of files from a dvc-data state database, else from their bytes (then saved)."""

    def __init__(self, state: StateBase, source: str) -> None:
        self._state = state
        self._source = source  # what a hit in this state is called: DVC_STATE or CACHE

    def md5_many(self, paths: Sequence[Path]) -> dict[Path, Hashed]:
        """md5 of each existing file of ``paths`` (missing ones are left out)."""
        from dvc_data.hashfile.hash_info import HashInfo
        from dvc_objects.fs import localfs

        infos = {}
        for path in paths:
            try:
                infos[str(path)] = localfs.info(str(path))
            except OSError:
                continue
        found: dict[Path, Hashed] = {}
        computed = []
        for key, hash_info in self._known(infos).items():
            size = infos[key]["size"]
            if hash_info is not None and hash_info.name == _MD5 and hash_info.value:
                found[Path(key)] = Hashed(hash_info.value, size, self._source)
            else:
                md5 = md5_of_file(key)
                found[Path(key)] = Hashed(md5, size, COMPUTED)
                computed.append((key, HashInfo(_MD5, md5), infos[key]))
        with suppress(Exception):  # a state that cannot be written costs a re-hash later
            self._state.save_many(computed, localfs)
        return found

    def _known(self, infos: dict[str, dict]) -> dict[str, HashInfo | None]:
        """What the state holds for each path (None where nothing valid); a state that
        cannot be read holds nothing."""
        from dvc_objects.fs import localfs

        try:
            rows = self._state.get_many(list(infos), localfs, infos)
            return {key: hash_info for key, _, hash_info in rows}
        except Exception:  # a corrupt or locked database: hash the files instead
            return dict.fromkeys(infos)


@contextmanager
def own_state(cache_dir: Path | None) -> Iterator[StateBase]:
    """jupyreg's state database (for files outside any DVC repository): a dvc-data
    ``State`` in ``cache_dir``; one that keeps nothing when it cannot be opened."""
    from dvc_data.hashfile.state import State, StateNoop

    state: StateBase = StateNoop()
    if cache_dir is not None:
        try:
            state = State(None, str(cache_dir))
        except Exception:  # an unwritable cache only costs re-hashing
            state = StateNoop()
    try:
        yield state
    finally:
        state.close()


def files_under(directory: Path, ignore: Ignore | None = None) -> list[tuple[str, Path]]:
    """``(posix relpath, path)`` of every file of ``directory``, as DVC walks it:
    ``ignore`` is the repository's ``.dvcignore`` filter (it also skips ``.git``)."""
    from dvc_objects.fs import localfs

    top = str(directory)
    walk = ignore.walk(localfs, top) if ignore is not None else localfs.walk(top)
    found = []
    for folder, _, names in walk:
        for name in names:
            path = Path(folder, name)
            found.append((path.relative_to(directory).as_posix(), path))
    return found


def md5_of_directory(listing: Iterable[tuple[str, Hashed]]) -> str:
    """DVC's ``.dir`` md5 of a directory from its files' ``(posix relpath, Hashed)``."""
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.meta import Meta
    from dvc_data.hashfile.tree import Tree

    tree = Tree()
    for rel, hashed in listing:
        tree.add(tuple(rel.split("/")), Meta(size=hashed.size), HashInfo(_MD5, hashed.md5))
    tree.digest()
    return tree.hash_info.value
