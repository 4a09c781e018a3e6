"""Batch mode: many targets, one record each, in a bounded thread pool, resumable from a previous JSONL output.

The records themselves are built by `modelscope_inspect.batch` (one target in, one JSON-ready dict out); this
module reads the target list, the records of an earlier run, and runs the record function over the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from ..errors import EXIT_FOUND, EXIT_OK, EXIT_UNREADABLE, NotFoundError, UsageError

MAX_TARGETS = 1_000_000
MAX_LIST_BYTES = 256 << 20  # a `--from` list or `--resume` file larger than this is refused


def read_targets(path: str) -> list[str]:
    """The targets of a `--from` file: one per line, blank lines and `#` comments skipped (`-` is stdin)."""
    text = _read_text(path, "--from")
    out = [line.strip() for line in text.splitlines()]
    targets = [t for t in out if t and not t.startswith("#")]
    if len(targets) > MAX_TARGETS:
        raise UsageError(f"more than {MAX_TARGETS:,} targets", path=path)
    return targets


def read_done(path: str) -> dict[str, dict[str, Any]]:
    """The records of an earlier `--jsonl` run, by target; a missing file is an empty run, and a line that is
    not a whole record (the run was stopped mid-write) is ignored, so that target runs again."""
    p = Path(path)
    if not p.exists():
        return {}
    done: dict[str, dict[str, Any]] = {}
    for line in _read_text(path, "--resume").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("target"), str) and isinstance(rec.get("exit_code"), int):
            done[rec["target"]] = rec
    return done


def _read_text(path: str, option: str) -> str:
    import sys

    if path == "-" and option == "--from":
        return sys.stdin.read()
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"{option}: no such file", path=path)
    if p.stat().st_size > MAX_LIST_BYTES:
        raise UsageError(f"{option}: larger than {MAX_LIST_BYTES >> 20} MiB", path=path)
    try:
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NotFoundError(f"{option}: cannot read ({exc})", path=path) from None


def run(targets: Iterable[str], record: Callable[[str], dict[str, Any]], jobs: int = 4) -> Iterator[dict[str, Any]]:
    """`record(target)` for each target, at most `jobs` at a time (threads: remote targets wait on the
    network), yielded as each finishes. At most `2 × jobs` targets are in flight, so a long list is never
    submitted all at once."""
    todo = iter(targets)
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="mi-batch") as pool:
        pending: set[Future[dict[str, Any]]] = set()
        while True:
            for t in todo:
                pending.add(pool.submit(record, t))
                if len(pending) >= 2 * max(1, jobs):
                    break
            if not pending:
                return
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                yield f.result()


def worst(codes: Iterable[int]) -> int:
    """The exit code of a batch: 1 when any target found something, else 2 when any could not be read, else 0
    (the order `mi scan` keeps for the files of one target)."""
    seen = set(codes)
    if EXIT_FOUND in seen:
        return EXIT_FOUND
    if seen - {EXIT_OK}:
        return EXIT_UNREADABLE
    return EXIT_OK


class Appender:
    """Appends records, one JSON line each, to a `--resume` file (created if missing), flushed per record.

    The file passes the output guard (never an input, never inside an input folder); a last line left without
    its newline by a stopped run is closed first, so the next record starts a line of its own.
    """

    def __init__(self, path: str, inputs: Iterable[str]) -> None:
        from .output import OutputGuard

        OutputGuard(tuple(inputs)).check(path, existing=False)
        p = Path(path)
        torn = p.is_file() and p.stat().st_size > 0 and _last_byte(p) != b"\n"
        self._f = p.open("a", encoding="utf-8")
        if torn:
            self._f.write("\n")

    def write(self, rec: dict[str, Any]) -> None:
        self._f.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def _last_byte(p: Path) -> bytes:
    with p.open("rb") as f:
        f.seek(-1, 2)
        return f.read(1)
