"""The one progress reporter: long reads (a remote model's shards, `mi diff --values`) report to it on stderr.

On a terminal it is a transient rich progress line (it honours `NO_COLOR` like every console here); when
stderr is not a terminal it stays silent, unless `MI_PROGRESS=1` asks for one plain line per step (for logs).
`MI_PROGRESS=0` silences it everywhere.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from .units import human_bytes


def _wanted(env: str) -> bool | None:
    value = env.strip()
    return None if value == "" else value not in ("0", "false", "no")


class _LineTask:
    """`reading headers 12/29 files · 1.4 MiB`, one line per step (stderr is a file or a pipe)."""

    def __init__(self, label: str, total: int, unit: str) -> None:
        self.label, self.total, self.unit = label, total, unit
        self._lock = threading.Lock()

    def advance(self, done: int, nbytes: int) -> None:
        with self._lock:
            sys.stderr.write(_line(self.label, done, self.total, self.unit, nbytes) + "\n")
            sys.stderr.flush()

    def close(self) -> None:
        return None


class _RichTask:
    """A transient rich progress line on a terminal."""

    def __init__(self, label: str, total: int, unit: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        columns: list[Any] = [TextColumn(label), BarColumn()]
        columns.append(DownloadColumn() if unit == "bytes" else TextColumn("{task.fields[text]}"))
        self.unit, self.total = unit, total
        self._bar = Progress(*columns, console=Console(stderr=True), transient=True)
        self._task = self._bar.add_task(label, total=total or None, text="")
        self._bar.start()

    def advance(self, done: int, nbytes: int) -> None:
        text = "" if self.unit == "bytes" else f"{done}/{self.total} {self.unit} · {human_bytes(nbytes)}"
        self._bar.update(self._task, completed=done, text=text)

    def close(self) -> None:
        self._bar.stop()


class _Silent:
    def advance(self, done: int, nbytes: int) -> None:
        return None

    def close(self) -> None:
        return None


def _line(label: str, done: int, total: int, unit: str, nbytes: int) -> str:
    if unit == "bytes":
        return f"{label} {human_bytes(done)} of {human_bytes(total)}"
    return f"{label} {done}/{total} {unit} · {human_bytes(nbytes)}"


class Reporter:
    """What commands pass to the api as `progress`: one task per long read, shown as the terminal allows."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = _wanted(os.environ.get("MI_PROGRESS", "")) if enabled is None else enabled
        self.tty = sys.stderr.isatty() if hasattr(sys.stderr, "isatty") else False

    def start(self, label: str, total: int, unit: str) -> _LineTask | _RichTask | _Silent:
        if self.enabled is False or (self.enabled is None and not self.tty):
            return _Silent()
        if self.tty:
            return _RichTask(label, total, unit)
        return _LineTask(label, total, unit)
