"""A byte range of another source, seen as a source of its own: a stored zip member (a `.keras` archive's
`model.weights.h5`) or a tar member (a `.nemo` archive's `model_weights.ckpt`) is read where it lies, by byte
range, never extracted or copied, so it works the same on a local file and a URL.
"""

from __future__ import annotations

from ..errors import MalformedFileError
from .source import ByteSource, read_exact


class Window:
    """Bytes `[start, start + size)` of `base`, with offsets relative to `start`."""

    def __init__(self, base: ByteSource, start: int, size: int, name: str) -> None:
        if start < 0 or size < 0 or start + size > base.size:
            raise MalformedFileError(
                f"{name} spans bytes {start:,} to {start + size:,}, past the end of the {base.size:,}-byte file",
                path=base.name,
                rule="member-bounds",
            )
        self._base = base
        self._start = start
        self.size = size
        self.name = name

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0:
            raise MalformedFileError(f"read at negative offset {offset:,}", path=self.name, rule="offset-range")
        if n <= 0 or offset >= self.size:
            return b""
        return self._base.read_at(self._start + offset, min(n, self.size - offset))

    def read_exact(self, offset: int, n: int, what: str) -> bytes:
        return read_exact(self, offset, n, what)

    def close(self) -> None:
        """The base source is closed by whoever opened it."""
