"""Remote models: inspect a model on a hub, an HTTP server or an object store without downloading its weights.

Readers take a `ByteSource`; this package supplies sources that fetch only the byte ranges a reader asks
for (`HttpRangeSource` over HTTP range requests, `FsspecSource` over fsspec), plus the folder logic for
hub repositories (`hf://ORG/NAME[@REVISION][/PATH]`), plain `https://` files and folders, and fsspec URLs.

Kept import-light: `loaders.folder.load` imports `is_url` on every call.

Example:
    >>> from modelscope_inspect.remote import load_url  # doctest: +SKIP
    >>> inv = load_url("hf://openai-community/gpt2")  # doctest: +SKIP
    >>> inv.total_params, inv.extra["bytes_read"]  # doctest: +SKIP
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..inventory import TensorInventory

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(path: object) -> bool:
    """True for `scheme://…` strings (`hf://`, `https://`, `http://`, `s3://`, …); local paths are never URLs."""
    return isinstance(path, str) and _SCHEME.match(path) is not None


def load_url(url: str, **options: Any) -> TensorInventory:
    """Read a remote model into a `TensorInventory`; see `remote.folder.load_url` for the options."""
    from .folder import load_url as _load_url

    return _load_url(url, **options)


def read_config_url(url: str, **options: Any) -> dict[str, Any]:
    """The `config.json` of a remote model; see `remote.folder.read_config_url`."""
    from .folder import read_config_url as _read_config_url

    return _read_config_url(url, **options)


__all__ = ["is_url", "load_url", "read_config_url"]
