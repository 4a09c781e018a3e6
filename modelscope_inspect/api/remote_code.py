"""Remote code under a folder (local or remote): listed, hashed, and turned into `mi scan` findings.

`mi scan`'s folder walk keeps model files only; the Python files and JSON configs that `trust_remote_code`
reads are listed here with the same bounds (depth, count, no directory links, never out of the folder).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LimitExceededError

if TYPE_CHECKING:
    from ..loaders.remote_code import AutoMapEntry, CodeFile, RemoteCode
    from ..loaders.scanner import FileScanReport, Finding
    from ..remote.http import Settings
    from .tree import FileTree

REMOTE_CODE = "remote-code"  # the `--allow` value that accepts it
TORCHSCRIPT = "torchscript"
ALLOW_CHOICES = (TORCHSCRIPT, REMOTE_CODE)


def tree_remote_code(tree: FileTree) -> RemoteCode | None:
    """The remote code of a folder tree (None for a single file)."""
    from ..loaders.remote_code import find_remote_code, is_code_name, is_config_name

    if not tree.is_dir:
        return None
    local = tree._local
    if local is not None:
        names = _local_names(local, tree.display)
    else:
        names = [n for n in tree.names if is_code_name(n) or is_config_name(n)]
    return find_remote_code(names, tree.open, tree.display)


def _local_names(root: Path, display: str) -> list[str]:
    """`*.py` and `*config.json` files under `root`: regular files, no directory links, bounded."""
    from ..loaders.remote_code import is_code_name, is_config_name
    from .tree import MAX_DEPTH, MAX_FILES

    real_root = root.resolve()
    out: list[str] = []
    todo: list[tuple[Path, int]] = [(root, 0)]
    visited = 0
    while todo:
        folder, depth = todo.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue  # the model-file walk reports folders it cannot list
        for e in entries:
            visited += 1
            if visited > MAX_FILES * 10:
                raise LimitExceededError(f"more than {MAX_FILES * 10:,} entries", path=display, rule="scan-limit")
            p = Path(e.path)
            try:
                if e.is_symlink():
                    target = p.resolve(strict=True)
                    if not target.is_relative_to(real_root) or target.is_dir():
                        continue
                st = e.stat()
            except (OSError, RuntimeError):
                continue
            if stat.S_ISDIR(st.st_mode):
                if depth + 1 <= MAX_DEPTH:
                    todo.append((p, depth + 1))
            elif stat.S_ISREG(st.st_mode) and (is_code_name(e.name) or is_config_name(e.name)):
                out.append(p.relative_to(root).as_posix())
    return sorted(out)


def code_reports(rc: RemoteCode, tree: FileTree, allowed: bool) -> list[FileScanReport]:
    """One report per Python file and per config whose `auto_map` points elsewhere; with findings of severity
    `code` unless `allowed` (`--allow remote-code`), when only their notes remain."""
    from ..loaders.scanner import FileScanReport

    out: list[FileScanReport] = []
    accepted = ("accepted: --allow remote-code",) if allowed else ()
    for f in rc.files:
        notes = (f"{f.size:,} bytes, sha256 {f.sha256}", *(_entry_note(e) for e in f.entries), *accepted)
        findings: tuple[Finding, ...] = () if allowed else (_finding(f.path, f.path, _file_reason(f)),)
        out.append(FileScanReport(tree.shown(f.path), "python", findings=findings, notes=notes))
    elsewhere: dict[str, list[AutoMapEntry]] = {}
    for e in (*rc.foreign, *rc.missing):
        elsewhere.setdefault(e.config, []).append(e)
    for config, entries in elsewhere.items():
        findings = () if allowed else tuple(_finding(config, e.ref, _elsewhere_reason(e)) for e in entries)
        notes = (*(_entry_note(e) for e in entries), *accepted)
        out.append(FileScanReport(tree.shown(config), "json", findings=findings, notes=notes))
    for path, message in rc.errors:
        out.append(FileScanReport(tree.shown(path), "python" if path.endswith(".py") else "json", error=message))
    if rc.more_files:
        out.append(
            FileScanReport(tree.display, "folder", error=f"{rc.more_files:,} more Python files than the scan reads")
        )
    return out


def _finding(stream: str, target: str, reason: str) -> Finding:
    from ..loaders.safety import Severity
    from ..loaders.scanner import Finding

    return Finding(stream, 0, "-", "remote-code", target, Severity.code, reason)


def _file_reason(f: CodeFile) -> str:
    if f.entries:
        return "auto_map points here: trust_remote_code=True imports and runs it"
    return "Python beside the model: trust_remote_code=True runs it when a mapped module imports it"


def _elsewhere_reason(e: AutoMapEntry) -> str:
    if e.repo is not None:
        return f"auto_map points into another repository ({e.repo}): trust_remote_code=True downloads and runs it"
    return f"auto_map names {e.module}, which is not in the folder"


def _entry_note(e: AutoMapEntry) -> str:
    return f"auto_map: {e.key} → {e.ref} ({e.config})"


def remote_code_warning(
    path: str, *, endpoint: str | None = None, token: str | None = None, settings: Settings | None = None
) -> str | None:
    """The one warning line `mi inspect` prints for a local folder holding remote code (None when it holds none).

    A URL is not listed a second time for it (that would cost another listing request and count bytes outside
    the inventory's own read): `mi scan URL` reports a remote folder's code.
    """
    from .paths import is_url
    from .tree import open_tree

    if is_url(path):
        return None

    with open_tree(path, endpoint=endpoint, token=token, settings=settings) as tree:
        rc = tree_remote_code(tree)
    if rc is None or not rc.found:
        return None
    names = [f.path for f in rc.files] + [e.ref for e in (*rc.foreign, *rc.missing)]
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return f"remote code: {shown} run with trust_remote_code=True (details: mi scan)"
