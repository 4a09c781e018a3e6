"""`scan`: every pickle global and call in the files under paths or URLs, without executing anything."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from ..errors import InspectError, NotFoundError

if TYPE_CHECKING:
    from ..loaders.remote_code import RemoteCode
    from ..loaders.scanner import FileScanReport, ScanReport
    from ..remote.http import Settings
    from .tree import FileTree


def scan_paths(
    paths: str | os.PathLike[str] | list[str],
    *,
    endpoint: str | None = None,
    token: str | None = None,
    settings: Settings | None = None,
    allow: Collection[str] = (),
) -> ScanReport:
    """Scan files, folders (recursively, bounded) or URLs for pickle globals and calls, into one report.

    A remote folder is listed and every file with a model extension or pickle/zip/npy magic bytes is scanned;
    only pickle bytes cross the network, and `bytes_read` counts what did. `allow` holds the kinds of `code`
    findings a gate accepts (`loaders.scanner.Allow`: "torchscript", "remote-code"). A folder's Python files and
    the `auto_map` entries of its configs are findings of severity `code` and kind `remote-code`.

    Example:
        >>> report = scan_paths("model.pth")  # doctest: +SKIP
        >>> report.status, [f.target for f in report.files[0].findings]  # doctest: +SKIP
        ('findings', ['__main__.Net'])
    """
    import dataclasses

    report = _scan_targets(paths, endpoint, token, settings, allow)
    return dataclasses.replace(report, allow=frozenset(allow)) if allow else report


def _scan_targets(
    paths: str | os.PathLike[str] | list[str],
    endpoint: str | None,
    token: str | None,
    settings: Settings | None,
    allow: Collection[str],
) -> ScanReport:
    from ..loaders.scanner import ScanReport

    targets = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
    if len(targets) == 1:
        return _scan_one(targets[0], endpoint, token, settings, allow)
    files: list[FileScanReport] = []
    skipped = 0
    notes: list[str] = []
    remote: int | None = None
    code: list[RemoteCode] = []
    for p in targets:
        r = _scan_one(p, endpoint, token, settings, allow)
        files.extend(r.files)
        skipped += r.skipped
        notes.extend(r.notes)
        if r.bytes_read is not None:
            remote = (remote or 0) + r.bytes_read
        code.extend(r.remote_code)
    return ScanReport(", ".join(targets), tuple(files), skipped, tuple(notes), remote, tuple(code))


def _scan_one(
    path: str, endpoint: str | None, token: str | None, settings: Settings | None, allow: Collection[str]
) -> ScanReport:
    from ..loaders.scanner import FileScanReport, ScanReport, error_report, pickle_magic, scan_source
    from .remote_code import REMOTE_CODE, code_reports, tree_remote_code
    from .tree import open_tree

    with open_tree(path, endpoint=endpoint, token=token, settings=settings) as tree:
        if not tree.is_dir:
            with tree.open(tree.names[0]) as src:
                report = scan_source(src, tree.names[0])
            return ScanReport(tree.display, (report,), notes=tuple(tree.notes), bytes_read=tree.bytes_read())

        def one(name: str) -> FileScanReport | None:  # None: not a pickle or model file, skipped
            base = posixpath.basename(name)
            try:
                with tree.open(name) as src:
                    if not tree.filtered and not _worth_scanning(base, pickle_magic(src.read_at(0, 8))):
                        return None
                    return scan_source(src, base)
            except InspectError as exc:  # a file that cannot be opened is an error of its own
                return error_report(tree.shown(name), exc)

        problems = [FileScanReport(path=p.path, format=p.format, error=p.error) for p in tree.problems]
        results = _map(one, tree)
        reports = problems + [r for r in results if r is not None]
        skipped = tree.skipped + sum(1 for r in results if r is None)
        rc = tree_remote_code(tree)
        if rc is not None and (rc.found or rc.errors):
            code = code_reports(rc, tree, REMOTE_CODE in allow)
            shown = {r.path for r in code}
            reports = [r for r in reports if r.path not in shown] + code  # a `.py` the walk kept is reported once
            kept = {n for n, r in zip(tree.names, results, strict=True) if r is not None}
            skipped = max(0, skipped - sum(1 for f in rc.files if f.path not in kept))  # now reported, not skipped
        if not reports:
            raise NotFoundError("folder holds no pickle or model file to scan", path=tree.display)
        found = (rc,) if rc is not None and rc.found else ()
        return ScanReport(tree.display, tuple(reports), skipped, tuple(tree.notes), tree.bytes_read(), found)


def _worth_scanning(base: str, magic: bool) -> bool:
    from ..loaders.scanner import MODEL_EXTS

    return base.lower().endswith(MODEL_EXTS) or magic


def _map(fn: Callable[[str], FileScanReport | None], tree: FileTree) -> list[FileScanReport | None]:
    """`fn` over the tree's files, concurrently for remote trees (bounded like `mi inspect`'s shards), in order."""
    if tree.workers <= 1 or len(tree.names) <= 1:
        return [fn(n) for n in tree.names]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(tree.workers, len(tree.names)), thread_name_prefix="mi-scan") as pool:
        return list(pool.map(fn, tree.names))
