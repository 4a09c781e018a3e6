"""Byte sources over the network: fetch only the ranges a reader asks for, keep what was fetched.

`RangeSource` implements the `ByteSource` protocol (name, size, read_at, read_exact, close) over a
`_fetch(start, end)` primitive. Fetched bytes are kept in merged intervals, so the reads a reader makes
in small steps (zip end record, central directory, local header, data.pkl) cost one request each at most.
Opening fetches the first `min_fetch` bytes (64 KiB: a safetensors length and header, the start of a torch
zip and its data.pkl, a GGUF header); a later miss fetches at least `seek_fetch` bytes (16 KiB) after a seek,
extended backwards at the end of the file (the zip end record sits there), and twice the previous fetch
while the reader keeps reading forward (GGUF metadata, long headers), up to `max_readahead`.

`HttpRangeSource` speaks HTTP range requests and checks what comes back: a `206` must carry a
`Content-Range` that covers the asked bytes of a file of unchanged size and ETag, and exactly as many body
bytes; a `200` (the server ignores `Range`) is streamed, skipping to the offset in bounded chunks and
stopping at the end of what is needed, never held whole in memory, and refused past `max_stream` bytes.
"""

from __future__ import annotations

import bisect
import re

from ..errors import RemoteError
from ..loaders.source import read_exact
from .cache import CacheEntry, HeaderCache
from .http import HttpClient, Response, Settings, Stats, display_url

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_UNSATISFIED = re.compile(r"^\s*bytes\s+\*/(\d+)\s*$", re.IGNORECASE)


class Intervals:
    """Known bytes of a file as sorted, merged, non-touching intervals."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._data: list[bytes] = []

    def add(self, start: int, data: bytes) -> None:
        if not data:
            return
        end = start + len(data)
        i = bisect.bisect_left(self._starts, start)
        if i > 0 and self._starts[i - 1] + len(self._data[i - 1]) >= start:
            i -= 1
        j = i
        lo, hi = start, end
        while j < len(self._starts) and self._starts[j] <= end:
            lo = min(lo, self._starts[j])
            hi = max(hi, self._starts[j] + len(self._data[j]))
            j += 1
        if j == i:
            self._starts.insert(i, start)
            self._data.insert(i, bytes(data))
            return
        buf = bytearray(hi - lo)
        for k in range(i, j):
            s = self._starts[k] - lo
            buf[s : s + len(self._data[k])] = self._data[k]
        buf[start - lo : end - lo] = data
        self._starts[i:j] = [lo]
        self._data[i:j] = [bytes(buf)]

    def missing(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The sub-ranges of [lo, hi) not known yet."""
        gaps: list[tuple[int, int]] = []
        pos = lo
        i = max(bisect.bisect_right(self._starts, lo) - 1, 0)
        while pos < hi and i < len(self._starts):
            s, e = self._starts[i], self._starts[i] + len(self._data[i])
            if e <= pos:
                i += 1
                continue
            if s > pos:
                gaps.append((pos, min(s, hi)))
            pos = max(pos, e)
            i += 1
        if pos < hi:
            gaps.append((pos, hi))
        return gaps

    def next_start(self, pos: int) -> int | None:
        """Start of the first known interval at or after `pos`."""
        i = bisect.bisect_left(self._starts, pos)
        return self._starts[i] if i < len(self._starts) else None

    def known_end_before(self, pos: int) -> int:
        """End of the last known interval that starts at or before `pos` (0 if none)."""
        i = bisect.bisect_right(self._starts, pos) - 1
        return self._starts[i] + len(self._data[i]) if i >= 0 else 0

    def get(self, lo: int, hi: int) -> bytes:
        i = bisect.bisect_right(self._starts, lo) - 1
        s = self._starts[i]
        return self._data[i][lo - s : hi - s]

    def blocks(self) -> tuple[tuple[int, bytes], ...]:
        return tuple(zip(self._starts, self._data, strict=True))

    @property
    def nbytes(self) -> int:
        return sum(len(d) for d in self._data)


class RangeSource:
    """A `ByteSource` over a `_fetch(start, end) -> bytes` primitive, with read-ahead and interval memory."""

    name: str
    size: int

    def __init__(self, name: str, settings: Settings) -> None:
        self.name = name
        self.size = 0
        self._settings = settings
        self._known = Intervals()
        self._readahead = settings.min_fetch
        self._last_end = -1

    def _fetch(self, start: int, end: int) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def _plan(self, start: int, end: int) -> tuple[int, int]:
        """The range to fetch for the gap [start, end): at least the read-ahead, backwards at the file end.

        A miss right where the last fetch ended means a reader parsing forward (GGUF metadata, a long
        safetensors header): the read-ahead doubles. A miss elsewhere is a seek (the next ONNX initializer
        after skipping its raw data, the zip end record): a small `seek_fetch` so skipped data is not fetched.
        """
        if start == self._last_end:
            self._readahead = min(max(self._readahead, self._settings.min_fetch) * 2, self._settings.max_readahead)
        else:
            self._readahead = self._settings.seek_fetch
        want = max(end - start, self._readahead)
        hi = min(self.size, start + want)
        nxt = self._known.next_start(end)
        if nxt is not None:  # do not fetch again what we hold
            hi = max(end, min(hi, nxt))
        lo = max(min(start, hi - want), self._known.known_end_before(start), 0)
        return min(lo, start), hi

    def read_at(self, offset: int, n: int) -> bytes:
        if n <= 0 or offset >= self.size or offset < 0:
            return b""
        end = min(self.size, offset + n)
        # One request per gap (a byte is never fetched twice); each fetch covers at least its whole gap.
        while gaps := self._known.missing(offset, end):
            lo, hi = self._plan(*gaps[0])
            data = self._fetch(lo, hi)
            self._known.add(lo, data)
            self._last_end = hi
        return self._known.get(offset, end)

    def read_exact(self, offset: int, n: int, what: str) -> bytes:
        """Exactly `n` bytes or a `MalformedFileError` naming `what` (rule `truncated`)."""
        return read_exact(self, offset, n, what)

    def close(self) -> None:
        pass

    def __enter__(self) -> RangeSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HttpRangeSource(RangeSource):
    """A remote file read with HTTP range requests; opening it costs one request (size + first 64 KiB)."""

    def __init__(
        self,
        client: HttpClient,
        url: str,
        *,
        cache: HeaderCache | None = None,
        display: str | None = None,
        immutable: bool = False,
    ) -> None:
        super().__init__(display or display_url(url), client.settings)
        self.url = url
        self._client = client
        self._cache = cache
        self._etag: str | None = None
        self._ranges = True
        self._dirty = False
        self._open(immutable)

    @property
    def stats(self) -> Stats:
        return self._client.stats

    def _error(self, msg: str, rule: str) -> RemoteError:
        return RemoteError(msg, path=self.name, rule=rule)

    def _open(self, immutable: bool) -> None:
        entry = self._cache.get(self.url) if self._cache else None
        if immutable and entry is not None:
            # A URL pinned to a commit (hub `resolve/<sha>/…`) cannot change: no request at all.
            self.size, self._etag = entry.size, entry.etag
            for offset, block in entry.blocks:
                self._known.add(offset, block)
            self.stats.add(revalidated=1)
            return
        first = self._settings.min_fetch
        headers = {"Range": f"bytes=0-{first - 1}"}
        if entry:
            headers["If-None-Match"] = entry.etag
        resp = self._client.get(self.url, headers, "open")
        etag = resp.header("ETag")
        if resp.status == 304 and entry is not None:
            resp.finish()
            self.size = entry.size
            self._etag = entry.etag
            for offset, block in entry.blocks:
                self._known.add(offset, block)
            self.stats.add(revalidated=1)
            return
        if resp.status == 416:
            m = _UNSATISFIED.match(resp.header("Content-Range") or "")
            resp.finish()
            if m is None or int(m.group(1)) != 0:
                raise self._error("the server refused the range bytes=0- of a non-empty file", "http-range")
            self.size, self._etag = 0, etag
            return
        if resp.status == 206:
            start, end, total = self._content_range(resp, 0, first)
            self.size = total
            self._etag = etag
            self._store(start, self._body(resp, end - start, "first range"))
            self._last_end = end
            self._dirty = True
            if entry is not None and etag and entry.etag == etag and entry.size == total:
                # A server without If-None-Match support, same ETag: the cached ranges are still good.
                for offset, block in entry.blocks:
                    self._known.add(offset, block)
            return
        if resp.status == 200:
            # The server ignores Range: take the size from Content-Length, keep the first bytes, hang up.
            self._ranges = False
            self.size = self._length(resp)
            self._etag = etag
            data = resp.read(min(first, self.size), "first range")
            resp.finish()
            if len(data) != min(first, self.size):
                raise self._error(
                    f"the response ended after {len(data):,} bytes of a {self.size:,}-byte file", "http-short-body"
                )
            self._store(0, data)
            self._last_end = len(data)
            self._dirty = True
            return
        raise self._client.fail(resp, "open", self.url)

    def _length(self, resp: Response) -> int:
        self._check_encoding(resp)
        raw = resp.header("Content-Length")
        if raw is None or not raw.strip().isdigit():
            resp.finish()
            raise self._error(
                "the server ignores Range requests and does not say how large the file is (no Content-Length)",
                "http-length",
            )
        return int(raw)

    def _check_encoding(self, resp: Response) -> None:
        # Byte offsets mean nothing in a compressed body; we asked for identity.
        enc = (resp.header("Content-Encoding") or "identity").strip().lower()
        if enc != "identity":
            resp.finish()
            raise self._error(f"the server sent a {enc!r}-encoded body for a byte range", "http-encoding")

    def _content_range(
        self, resp: Response, start: int, end: int, expect_total: int | None = None
    ) -> tuple[int, int, int]:
        """Check a 206's `Content-Range` is exactly [start, end) clipped to the file; (first, end, total)."""
        self._check_encoding(resp)
        header = resp.header("Content-Range") or ""
        m = _CONTENT_RANGE.match(header)
        if m is None or m.group(3) == "*":
            resp.finish()
            raise self._error(
                f"206 response for bytes {start:,}-{end - 1:,} has no usable Content-Range ({header[:80]!r})",
                "http-range",
            )
        first, last, total = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if expect_total is not None and total != expect_total:
            resp.finish()
            raise self._error(
                f"the file changed on the server while reading (size {expect_total:,} → {total:,})", "http-changed"
            )
        want_last = min(end, total) - 1
        if first != start or last != want_last:
            resp.finish()
            raise self._error(
                f"asked for bytes {start:,}-{end - 1:,} but the server sent {header.strip()!r}", "http-range"
            )
        length = resp.header("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) != last - first + 1:
            resp.finish()
            raise self._error(
                f"Content-Range {header.strip()!r} announces {last - first + 1:,} bytes but Content-Length says "
                f"{int(length):,}",
                "http-range",
            )
        return first, last + 1, total

    def _body(self, resp: Response, n: int, what: str) -> bytes:
        data = resp.read(n, what)
        if len(data) != n:
            resp.finish()
            raise self._error(f"{what}: the response ended after {len(data):,} of {n:,} bytes", "http-short-body")
        # Anything after the promised bytes would be a lie too; http.client stops at Content-Length.
        resp.finish()
        return data

    def _store(self, start: int, data: bytes) -> None:
        self._known.add(start, data)

    def _fetch(self, start: int, end: int) -> bytes:
        what = f"bytes {start:,}-{end - 1:,}"
        if self._ranges:
            resp = self._client.get(self.url, {"Range": f"bytes={start}-{end - 1}"}, what)
            if resp.status == 206:
                first, last, _total = self._content_range(resp, start, end, self.size)
                self._check_etag(resp.header("ETag"), resp)
                data = self._body(resp, last - first, what)
                self._dirty = True
                return data[start - first : end - first]
            if resp.status == 416:
                resp.finish()
                raise self._error(
                    f"the server says {what} lie past the end of the file, which it said was {self.size:,} bytes "
                    "(changed on the server, or a wrong size)",
                    "http-changed",
                )
            if resp.status != 200:
                raise self._client.fail(resp, what, self.url)
            self._ranges = False
        else:
            resp = self._client.get(self.url, {}, what)
            if resp.status != 200:
                raise self._client.fail(resp, what, self.url)
        # 200: the whole body comes; skip to `start` in bounded chunks, take [start, end), hang up.
        if end > self._settings.max_stream:
            resp.finish()
            raise self._error(
                f"the server ignores Range requests; reading {what} means downloading {end:,} bytes, more than "
                f"MI_REMOTE_MAX_STREAM={self._settings.max_stream:,}",
                "http-no-range",
            )
        size = self._length(resp)
        if size != self.size:
            resp.finish()
            raise self._error(
                f"the file changed on the server while reading (size {self.size:,} → {size:,})", "http-changed"
            )
        self._check_etag(resp.header("ETag"), resp)
        resp.skip(start, what)
        data = resp.read(end - start, what)
        resp.finish()
        if len(data) != end - start:
            raise self._error(f"{what}: the response ended early", "http-short-body")
        self._dirty = True
        return data

    def _check_etag(self, etag: str | None, resp: Response) -> None:
        if self._etag and etag and etag.removeprefix("W/") != self._etag.removeprefix("W/"):
            resp.finish()
            raise self._error(
                f"the file changed on the server while reading (ETag {self._etag} → {etag})", "http-changed"
            )

    def close(self) -> None:
        if self._cache is not None and self._dirty and self._etag:
            self._cache.put(CacheEntry(self.url, self._etag, self.size, self._known.blocks()))
            self._dirty = False


class FsspecSource(RangeSource):
    """A file on any fsspec filesystem (`s3://`, `gs://`, `memory://` …) read with `cat_file(start, end)`."""

    def __init__(self, fs: object, path: str, display: str, settings: Settings, stats: Stats) -> None:
        super().__init__(display, settings)
        self._fs = fs
        self._path = path
        self.stats = stats
        try:
            info = fs.info(path)  # type: ignore[attr-defined]
        except FileNotFoundError:
            from ..errors import NotFoundError

            raise NotFoundError("no such file", path=display) from None
        except Exception as exc:  # fsspec backends raise their own types (botocore, gcsfs …)
            raise RemoteError(f"cannot stat: {type(exc).__name__}: {exc}", path=display, rule="fsspec") from None
        if info.get("type") not in (None, "file"):
            from ..errors import UnsupportedFormatError

            raise UnsupportedFormatError("not a regular file", path=display)
        size = info.get("size")
        if type(size) is not int or size < 0:
            raise RemoteError("the filesystem does not report the file's size", path=display, rule="fsspec")
        self.size = size

    def _fetch(self, start: int, end: int) -> bytes:
        self.stats.add(requests=1)
        try:
            data: bytes = self._fs.cat_file(self._path, start=start, end=end)  # type: ignore[attr-defined]
        except Exception as exc:
            raise RemoteError(
                f"reading bytes {start:,}-{end - 1:,} failed: {type(exc).__name__}: {exc}",
                path=self.name,
                rule="fsspec",
            ) from None
        self.stats.add(nbytes=len(data))
        if len(data) != end - start:
            raise RemoteError(
                f"asked for {end - start:,} bytes at {start:,}, got {len(data):,}", path=self.name, rule="fsspec-short"
            )
        return bytes(data)
