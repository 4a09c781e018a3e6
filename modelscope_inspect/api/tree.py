"""`open_tree`: the files `mi scan` reads under a path or URL, listed before any is read.

- a local file: itself; a local folder: walked recursively (bounded depth and count, symlinks never lead out
  of it, directory links are never followed), keeping files with a model extension or pickle/zip/npy magic;
- `hf://…`: every file of the repository under the path (the hub lists recursively);
- `http(s)://…/FILE`: that file; `…/FOLDER/`: a plain server cannot list a folder, so the names transformers
  uses are probed and the shards their indexes name added (a note says so);
- fsspec URLs: `find`, recursive.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InspectError, LimitExceededError, NotFoundError
from .paths import is_url

if TYPE_CHECKING:
    from ..loaders.source import OpenSource
    from ..remote.dirs import Target
    from ..remote.http import Settings

MAX_FILES = 10_000  # files visited in a folder
MAX_DEPTH = 32  # folder nesting
LOCAL_WORKERS = 4  # local files scanned at once: reads overlap with the GIL-bound pickle walks
PROBED = ("model.safetensors.index.json", "model.safetensors", "pytorch_model.bin.index.json", "pytorch_model.bin")


@dataclass(slots=True)
class Problem:
    """A folder entry that could not be looked at (listed with the scan's files, as an error)."""

    path: str
    format: str
    error: str


@dataclass(slots=True)
class FileTree:
    """What a path or URL names: one file (`is_dir` False, one name) or the files of a folder (relative
    names, in the order a folder walk gives). Close it when done (a context manager)."""

    display: str
    is_dir: bool
    names: list[str]
    skipped: int = 0  # local entries left out while walking (not model files, links out, devices)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    filtered: bool = True  # False when the names still need the model-extension / magic test (remote)
    workers: int = 1
    _local: Path | None = None
    _target: Target | None = None

    def shown(self, name: str) -> str:
        """How `name` is shown to the user."""
        if self._local is not None:
            return str(self._local / name) if self.is_dir else self.display
        return f"{self.display.rstrip('/')}/{name}" if self.is_dir else self.display

    def open(self, name: str) -> OpenSource:
        """A byte source over one of `names`."""
        if self._local is not None:
            from ..loaders.source import LocalFile

            return LocalFile(self._local / name if self.is_dir else self._local, self.shown(name))
        assert self._target is not None
        return self._target.folder.open(name, shown=self.shown(name))

    def bytes_read(self) -> int | None:
        """Body bytes fetched over the network so far (None for local paths)."""
        return None if self._target is None else self._target.session.stats.bytes_read

    def close(self) -> None:
        if self._target is not None:
            self._target.session.close()

    def __enter__(self) -> FileTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_tree(
    path: str, *, endpoint: str | None = None, token: str | None = None, settings: Settings | None = None
) -> FileTree:
    """List a file or folder, local or remote; no file is read yet (except the few bytes that tell a local
    pickle without a model extension).

    Example:
        >>> with open_tree("hf://openai-community/gpt2") as tree:  # doctest: +SKIP
        ...     tree.names[:3]
        ['.gitattributes', 'README.md', 'config.json']
    """
    if is_url(path):
        return _remote(path, endpoint, token, settings)
    from ..loaders.source import path_kind

    p = Path(path)
    if not path_kind(p, path):
        return FileTree(path, False, [p.name], _local=p)
    names, skipped, problems = _walk(p, path)
    return FileTree(path, True, names, skipped, problems, workers=LOCAL_WORKERS, _local=p)


def _walk(root: Path, display: str) -> tuple[list[str], int, list[Problem]]:
    """Files under `root` worth scanning (model extensions or pickle/zip magic), bounded, no symlinked dirs."""
    from ..loaders.scanner import MODEL_EXTS

    out: list[Path] = []
    skipped = 0
    problems: list[Problem] = []
    real_root = root.resolve()
    todo: list[tuple[Path, int]] = [(root, 0)]
    while todo:
        folder, depth = todo.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            problems.append(Problem(str(folder), "folder", f"cannot list: {exc.strerror or exc}"))
            continue
        for e in entries:
            p = Path(e.path)
            try:
                if e.is_symlink():
                    target = p.resolve(strict=True)
                    if not target.is_relative_to(real_root) or target.is_dir():
                        skipped += 1  # never leave the given path; never follow directory links (loops)
                        continue
                st = e.stat()
            except (OSError, RuntimeError):
                problems.append(Problem(str(p), "unknown", "broken or looping symlink"))
                continue
            if stat.S_ISDIR(st.st_mode):
                if depth + 1 > MAX_DEPTH:
                    problems.append(Problem(str(p), "folder", f"nested deeper than {MAX_DEPTH}"))
                else:
                    todo.append((p, depth + 1))
                continue
            if not stat.S_ISREG(st.st_mode):
                skipped += 1
                continue
            if e.name.lower().endswith(MODEL_EXTS) or _has_pickle_magic(p):
                out.append(p)
                if len(out) > MAX_FILES:
                    raise LimitExceededError(f"more than {MAX_FILES:,} files to scan", path=display, rule="scan-limit")
            else:
                skipped += 1
    return [p.relative_to(root).as_posix() for p in sorted(out)], skipped, problems


def _has_pickle_magic(p: Path) -> bool:
    from ..loaders.scanner import pickle_magic
    from ..loaders.source import LocalFile

    try:
        with LocalFile(p) as src:
            head = src.read_at(0, 8)
    except InspectError:
        return False
    return pickle_magic(head)


def _remote(url: str, endpoint: str | None, token: str | None, settings: Settings | None) -> FileTree:
    from ..remote.dirs import HttpDir, capped, open_target

    target = open_target(url, endpoint=endpoint, token=token, settings=settings)
    try:
        shown = target.display.rstrip("/")
        workers = target.session.settings.workers
        if target.name is not None:
            return FileTree(shown, False, [target.name], filtered=False, workers=workers, _target=target)
        folder = target.folder
        if isinstance(folder, HttpDir):
            names, notes = (
                _probe(folder, shown),
                [
                    "a plain HTTP folder cannot be listed: read only the files the transformers layout names "
                    f"({', '.join(PROBED)} and the shards their indexes name)"
                ],
            )
        else:
            names, notes = folder.walk(), []
        tree = FileTree(shown, True, capped(names, shown), notes=notes, filtered=False, workers=workers)
        tree._target = target
        return tree
    except BaseException:
        target.session.close()
        raise


def _probe(folder: Any, shown: str) -> list[str]:
    """The files of a plain HTTP folder that the transformers layout names, and the shards their indexes name."""
    from ..loaders.folder import index_shards, not_plain, read_json_source

    names: list[str] = []
    for name in PROBED:
        if not folder.exists(name):
            continue
        if name.endswith(".index.json"):
            with folder.open(name, shown=f"{shown}/{name}") as src:
                shards, _declared = index_shards(read_json_source(src, "index-json"), src.name)
            for shard in shards:
                err = not_plain(shard, src.name, label="shard", rule="index-shard")
                if err is not None:
                    raise err
                if shard not in names:
                    names.append(shard)
        elif name not in names:
            names.append(name)
    if not names:
        raise NotFoundError(
            "no model.safetensors[.index.json] or pytorch_model.bin[.index.json] here, and a plain HTTP folder "
            "cannot be listed: name the model file in the URL",
            path=shown,
        )
    return names
