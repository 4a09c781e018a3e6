"""The reader plug point: a `Loader` reads one file into a `FileScan`; a registry picks the loader.

Detection is by magic bytes first, extension second (picklescan does both); a folder is handled by
`loaders.folder`, which combines the scans of its shards into one inventory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..inventory import TensorRecord, TorchInfo
from .source import ByteSource

HEAD_BYTES = 64


@dataclass(slots=True)
class FileScan:
    """What one reader found in one file: records in file order plus the bytes of unique storage."""

    format: str
    records: list[TensorRecord]
    storage_bytes: int
    metadata: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    torch: TorchInfo | None = None
    header_bytes: int | None = None
    # Other files the model's bytes live in (ONNX external data): (path relative to the folder, size).
    extra_files: list[tuple[str, int]] = field(default_factory=list)


class ProgressTask(Protocol):
    """One long read in progress: how much is done (in the task's unit) and how many bytes it has fetched."""

    def advance(self, done: int, nbytes: int) -> None: ...

    def close(self) -> None: ...


class Progress(Protocol):
    """Where long reads report how far they got. The CLI passes the render layer's reporter; the library
    passes none, and nothing is shown."""

    def start(self, label: str, total: int, unit: str) -> ProgressTask:
        """A task of `total` `unit`s (`files` or `bytes`)."""
        ...


class Loader(Protocol):
    """A reader for one file format."""

    name: str
    extensions: tuple[str, ...]

    def sniff(self, head: bytes, size: int) -> bool:
        """True when the first bytes (up to `HEAD_BYTES`) belong to this format."""
        ...

    def read(self, src: ByteSource, rel: str) -> FileScan:
        """Read the file's tensor metadata; `rel` is the name records use for their `file`."""
        ...


_REGISTRY: list[Loader] = []


def register(loader: Loader) -> Loader:
    """Add a loader; earlier registrations win when two sniff the same bytes."""
    _REGISTRY.append(loader)
    return loader


def loaders() -> tuple[Loader, ...]:
    """All registered loaders, importing the built-in ones on first use."""
    if not _REGISTRY:
        from . import _builtin  # noqa: F401  (registers on import)
    return tuple(_REGISTRY)


def detect(head: bytes, size: int, filename: str) -> Loader | None:
    """The loader for a file: magic bytes first, then the extension."""
    found = [ld for ld in loaders() if ld.sniff(head, size)]
    if found:
        return found[0]
    lower = filename.lower()
    for ld in loaders():
        if any(lower.endswith(ext) for ext in ld.extensions):
            return ld
    return None
