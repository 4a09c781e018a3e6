"""`open_config`: an HF `config.json` from a file, a folder holding one, or a URL, as a dict; a GGUF file's
header translated into the same dict (`gguf_config`)."""

from __future__ import annotations

import os
import posixpath
import stat
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ..errors import MalformedFileError, NotFoundError
from .paths import is_url

if TYPE_CHECKING:
    from ..inventory import TensorInventory
    from ..loaders.source import OpenSource
    from ..remote.http import Settings


def open_config(
    path: str, *, endpoint: str | None = None, token: str | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Read an HF `config.json` (or a folder holding one) as a dict, with bounded size and clear errors.

    `path` may be a URL: `hf://ORG/NAME[@REV][/PATH]` (its config.json), a folder URL, or the JSON file's own
    URL; one small file is fetched (`endpoint` / `token` as for `open_model`). A GGUF file (recognised by its
    magic bytes, or a URL ending in `.gguf`) gives the config its header describes: headers only, see
    `gguf_config`.

    Example:
        >>> open_config("hf://meta-llama/Llama-2-70b-hf")["num_hidden_layers"]  # doctest: +SKIP
        80
    """
    from ..analysis.hparams import MAX_CONFIG_BYTES, parse_config

    if is_url(path):
        if urlsplit(path).path.lower().endswith(".gguf"):
            return _open_gguf(path, endpoint=endpoint, token=token, settings=settings)
        return _open_url(path, endpoint=endpoint, token=token, settings=settings)
    p = path
    if os.path.isdir(p):
        p = os.path.join(p, "config.json")
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise NotFoundError("no such file", path=p, rule="config-exists") from None
    except OSError as exc:
        raise MalformedFileError(f"cannot read: {exc.strerror}", path=p, rule="config-readable") from None
    if not stat.S_ISREG(st.st_mode):
        raise MalformedFileError("not a regular file", path=p, rule="config-readable")
    if _is_gguf(p):
        return _open_gguf(p, endpoint=endpoint, token=token, settings=settings)
    if st.st_size > MAX_CONFIG_BYTES:
        raise MalformedFileError(
            f"{st.st_size:,} bytes is too large for a config.json (limit {MAX_CONFIG_BYTES:,})",
            path=p,
            rule="config-size",
        )
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise MalformedFileError(f"cannot read: {exc.strerror}", path=p, rule="config-readable") from None
    return parse_config(raw, path=p)


def gguf_config(inv: TensorInventory) -> dict[str, Any]:
    """The HF config a read GGUF model's header describes (`analysis.gguf_config.config_from_gguf`)."""
    from ..analysis.gguf_config import config_from_gguf

    return config_from_gguf(inv.metadata, {t.name: t.shape for t in inv.tensors}, path=inv.path)


def _is_gguf(path: str) -> bool:
    from ..loaders.gguf import MAGIC

    try:
        with open(path, "rb") as fh:
            return fh.read(len(MAGIC)) == MAGIC
    except OSError:
        return False  # the read below reports it


def _open_gguf(path: str, *, endpoint: str | None, token: str | None, settings: Settings | None) -> dict[str, Any]:
    from .model import open_model

    return gguf_config(open_model(path, endpoint=endpoint, token=token, settings=settings))


def _open_url(url: str, *, endpoint: str | None, token: str | None, settings: Settings | None) -> dict[str, Any]:
    """The config of a remote model: the file a URL names when it is a `.json`, else the folder's config.json."""
    from ..loaders.folder import read_json_source
    from ..remote.dirs import Session, open_fsspec
    from ..remote.http import Settings, display_url
    from ..remote.hub import list_repo, ms_file_url, ms_list_repo, parse_hf_url, parse_ms_url, resolve_url
    from ..remote.source import FsspecSource, HttpRangeSource

    scheme = url.split("://", 1)[0].lower()
    shown = display_url(url)
    with Session(settings or Settings.from_env(endpoint=endpoint, token=token, url=url)) as s:
        src: OpenSource
        if scheme == "hf":
            ref = parse_hf_url(url)
            commit, files = list_repo(s.client, s.cache, ref)
            name = ref.path if ref.path.endswith(".json") else posixpath.join(ref.path, "config.json")
            if name not in files:
                raise NotFoundError(f"{ref.repo}@{ref.revision} has no {name}", path=url, rule="http-404")
            src = HttpRangeSource(s.client, resolve_url(s.settings.endpoint, ref.repo, commit, name), cache=s.cache)
        elif scheme == "ms":
            ref = parse_ms_url(url)
            revisions = ms_list_repo(s.client, s.cache, ref)
            name = ref.path if ref.path.endswith(".json") else posixpath.join(ref.path, "config.json")
            if name not in revisions:
                raise NotFoundError(f"{ref.repo}@{ref.revision} has no {name}", path=url, rule="http-404")
            ms_url = ms_file_url(s.settings.endpoint, ref.repo, revisions[name], name)
            src = HttpRangeSource(s.client, ms_url, cache=s.cache)
        elif scheme in ("http", "https"):
            target = url if urlsplit(url).path.endswith(".json") else urljoin(url.rstrip("/") + "/", "config.json")
            src = HttpRangeSource(s.client, target, cache=s.cache)
        else:
            target = url if url.endswith(".json") else url.rstrip("/") + "/config.json"
            fs, path, is_dir = open_fsspec(target, display_url(target))
            if is_dir:
                raise NotFoundError("config.json is a folder", path=display_url(target), rule="config-json")
            src = FsspecSource(fs, path, display_url(target), s.settings, s.stats)
        with src:
            doc = read_json_source(src, "config-json")
    if not isinstance(doc, dict):
        raise MalformedFileError("config.json is not a JSON object", path=shown, rule="config-json")
    return doc
