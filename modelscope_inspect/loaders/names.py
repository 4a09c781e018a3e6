"""Small rules the folder plan and the folder-level readers (pipelines, adapters, tokenizers) share: what a
plain file name is, and how a small JSON file is read."""

from __future__ import annotations

import json
import os
from typing import Any

from ..errors import MalformedFileError
from .source import ByteSource

MAX_JSON = 64 << 20  # index.json / config.json larger than this are not real


def not_plain(name: object, display: str, *, label: str, rule: str) -> MalformedFileError | None:
    """The error for a name that is not a plain relative file name (absolute, `..`, backslashes, URL), or None."""
    bad = (
        not isinstance(name, str)
        or not name
        or name.startswith("/")
        or os.path.isabs(name)
        or "\\" in name
        or "://" in name
        or any(p in ("", ".", "..") for p in name.split("/"))
        or any(c in name for c in "?#\0\r\n")
    )
    if bad:
        return MalformedFileError(
            f"{label} name {name!r} is not a plain file name in the folder", path=display, rule=rule
        )
    return None


def read_json_source(src: ByteSource, rule: str) -> Any:
    """Parse a small JSON file with a size cap; NaN, deep nesting and bad UTF-8 are malformed input."""
    display = src.name
    if src.size > MAX_JSON:
        raise MalformedFileError(f"{src.size:,} bytes is too large for a JSON file", path=display, rule=rule)
    raw = src.read_exact(0, src.size, "JSON file")
    try:

        def no_constants(name: str) -> None:
            raise ValueError(f"non-standard number {name}")

        return json.loads(raw.decode("utf-8"), parse_constant=no_constants)
    except RecursionError:
        raise MalformedFileError("JSON nested too deeply", path=display, rule=rule) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedFileError(f"not valid JSON ({exc})", path=display, rule=rule) from None


__all__ = ["MAX_JSON", "not_plain", "read_json_source"]
