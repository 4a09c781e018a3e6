"""The header cache: byte ranges already fetched from a URL, kept under the URL + its ETag.

A second run sends the ETag back (`If-None-Match`); a `304 Not Modified` means the cached ranges are still
the file's bytes, so nothing is transferred. Entries are small JSON files (base64 blocks) written atomically;
anything unreadable is treated as a miss. Tokens are never part of a key or an entry.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_ENTRY_BYTES = 32 << 20  # headers and pickles; never weights
CACHE_VERSION = 1


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """What was fetched from one URL while it had ETag `etag`."""

    url: str
    etag: str
    size: int
    blocks: tuple[tuple[int, bytes], ...] = ()
    body: bytes | None = None  # whole documents (hub API answers)


class HeaderCache:
    """Directory of cache entries keyed by sha256(url)."""

    def __init__(self, root: Path) -> None:
        self.root = root / "remote-v1"

    def _path(self, url: str, kind: str) -> Path:
        return self.root / f"{kind}-{hashlib.sha256(url.encode('utf-8', 'surrogatepass')).hexdigest()[:48]}.json"

    def get(self, url: str, kind: str = "file") -> CacheEntry | None:
        """The entry for `url`, or None (missing, unreadable, or for another URL)."""
        try:
            doc = json.loads(self._path(url, kind).read_text("utf-8"))
            if not isinstance(doc, dict) or doc.get("v") != CACHE_VERSION or doc.get("url") != url:
                return None
            etag, size = doc["etag"], doc["size"]
            if not isinstance(etag, str) or not etag or type(size) is not int or size < 0:
                return None
            blocks = tuple((int(o), base64.b64decode(b, validate=True)) for o, b in doc.get("blocks", []))
            if any(o < 0 or o + len(b) > size for o, b in blocks):
                return None
            body = base64.b64decode(doc["body"], validate=True) if isinstance(doc.get("body"), str) else None
            return CacheEntry(url, etag, size, blocks, body)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, entry: CacheEntry, kind: str = "file") -> None:
        """Store `entry` (silently skipped when too large or when the cache directory is not writable)."""
        total = sum(len(b) for _, b in entry.blocks) + len(entry.body or b"")
        if total > MAX_ENTRY_BYTES:
            return
        doc: dict[str, Any] = {
            "v": CACHE_VERSION,
            "url": entry.url,
            "etag": entry.etag,
            "size": entry.size,
            "blocks": [[o, base64.b64encode(b).decode("ascii")] for o, b in entry.blocks],
        }
        if entry.body is not None:
            doc["body"] = base64.b64encode(entry.body).decode("ascii")
        import tempfile  # only when writing (keeps the remote import light)

        target = self._path(entry.url, kind)
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(doc, fh)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError:
            return  # a cache that cannot be written is only a slower second run
