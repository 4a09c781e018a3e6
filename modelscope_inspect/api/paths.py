"""The one test of "is this a URL?": everything `api/` opens goes through it."""

from __future__ import annotations

import re

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(path: object) -> bool:
    """True for `scheme://…` strings (`hf://`, `https://`, `http://`, `s3://`, …); local paths are never URLs."""
    return isinstance(path, str) and _SCHEME.match(path) is not None
