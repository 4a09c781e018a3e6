"""The reader plug point: a `Loader` reads one file into a `FileScan`; a registry picks the loader.

Detection is by magic bytes first, extension second (picklescan does both); a folder is handled by
`loaders.folder`, which combines the scans of its shards into one inventory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..inventory import TensorRecord
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
    extra: dict[str, Any] = field(default_factory=dict)
    # Other files the model's bytes live in (ONNX external data): (path relative to the folder, size).
    extra_files: list[tuple[str, int]] = field(default_factory=list)


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
