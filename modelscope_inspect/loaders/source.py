"""Byte sources: what readers read from. Readers never open paths themselves.

A `ByteSource` has a name (for messages), a size fixed when it was opened, and `read_at(offset, n)`.
`LocalFile` accepts only regular files (a FIFO or /dev/zero behind a model name would block or never end)
and reads with `os.pread`, so no shared file position is involved. `SourceIO` adapts a source to the
seekable file object that `zipfile` wants.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from typing import Protocol

from ..errors import MalformedFileError, NotFoundError, UnsupportedFormatError


class ByteSource(Protocol):
    """Random-access bytes of known size."""

    name: str
    size: int

    def read_at(self, offset: int, n: int) -> bytes:
        """Up to `n` bytes from `offset` (fewer only at the end of the source)."""
        ...

    def read_exact(self, offset: int, n: int, what: str) -> bytes:
        """Exactly `n` bytes or a `MalformedFileError` naming `what` (rule `truncated`)."""
        ...

    def close(self) -> None:
        """Release the underlying handle."""
        ...


class OpenSource(ByteSource, Protocol):
    """A byte source that closes itself at the end of a `with` block (what folders hand out)."""

    def __enter__(self) -> OpenSource: ...

    def __exit__(self, *exc: object) -> None: ...


def read_exact(src: ByteSource, offset: int, n: int, what: str) -> bytes:
    """`src.read_at(offset, n)`, or a `MalformedFileError` naming `what` (rule `truncated`) when the source
    ends first: the one `read_exact` every source kind shares."""
    data = src.read_at(offset, n)
    if len(data) != n:
        raise MalformedFileError(
            f"{what}: needs {n:,} bytes at offset {offset:,} but the file ends at {src.size:,}",
            path=src.name,
            rule="truncated",
        )
    return data


def path_kind(p: Path, display: str) -> bool:
    """True for a folder, False for anything else that exists; `NotFoundError` when `p` is missing or cannot
    be looked at (a dangling symlink exists: opening it gives the precise error)."""
    try:
        is_dir = p.is_dir()
        exists = p.exists() or p.is_symlink()
    except OSError as exc:
        raise NotFoundError(f"cannot access: {exc.strerror or exc}", path=display) from None
    if not exists:
        raise NotFoundError("no such file or directory", path=display)
    return is_dir


class LocalFile:
    """A regular file on disk, opened read-only. Use as a context manager."""

    def __init__(self, path: str | os.PathLike[str], display: str | None = None) -> None:
        self.name = display or str(path)
        p = Path(path)
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise NotFoundError("no such file or directory", path=self.name) from None
        except PermissionError:
            raise NotFoundError("permission denied", path=self.name) from None
        except OSError as exc:
            raise NotFoundError(f"cannot stat: {exc.strerror or exc}", path=self.name) from None
        if not stat.S_ISREG(st.st_mode):
            raise UnsupportedFormatError("not a regular file (device, FIFO or socket)", path=self.name)
        try:
            self._fd = os.open(p, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except PermissionError:
            raise NotFoundError("permission denied", path=self.name) from None
        except OSError as exc:
            raise NotFoundError(f"cannot open: {exc.strerror or exc}", path=self.name) from None
        self.size = st.st_size

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0:
            # Offsets come from file headers: a negative one is a lie in the file, not a reader bug to crash on.
            raise MalformedFileError(f"read at negative offset {offset:,}", path=self.name, rule="offset-range")
        if n <= 0 or offset >= self.size:
            return b""
        n = min(n, self.size - offset)
        chunks = []
        while n > 0:
            chunk = os.pread(self._fd, min(n, 1 << 26), offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def read_exact(self, offset: int, n: int, what: str) -> bytes:
        """Exactly `n` bytes or a `MalformedFileError` naming `what` (rule `truncated`)."""
        return read_exact(self, offset, n, what)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> LocalFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SourceIO(io.RawIOBase):
    """Read-only, seekable file object over a byte source (for `zipfile`)."""

    def __init__(self, source: ByteSource) -> None:
        super().__init__()
        self._src = source
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = self._src.size + offset
        if self._pos < 0:
            raise OSError("negative seek position")
        return self._pos

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = self._src.size - self._pos
        data = self._src.read_at(self._pos, n)
        self._pos += len(data)
        return data

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)
