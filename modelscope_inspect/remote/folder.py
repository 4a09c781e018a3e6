"""From a URL to one `TensorInventory`, fetching headers only.

Three kinds of remote folder, one plan (the local one in `loaders.folder`, same order and same rules):
- `hf://ORG/NAME[@REV][/PATH]`: listed through the hub API, files resolved at the listed commit;
- `http(s)://…/FILE` or `…/FOLDER/`: a plain server cannot list a folder, so the folder plan probes the
  names transformers uses (`config.json`, `model.safetensors[.index.json]`, `pytorch_model.bin[.index.json]`);
- any other `scheme://` through fsspec when it is installed (`s3://`, `gs://`, `memory://` …).

The readers are the local ones, reading from `RangeSource`s; shards are scanned concurrently (bounded by
`MI_REMOTE_WORKERS`, default 8) with a progress line on stderr when it is a terminal. The inventory's
`extra["bytes_read"]` is every body byte that crossed the network (ranges, JSON, bytes a server that
ignores `Range` made us skip).
"""

from __future__ import annotations

import posixpath
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Protocol
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from ..errors import InspectError, MalformedFileError, NotFoundError, UnsupportedFormatError
from ..inventory import FileRecord, TensorInventory
from ..loaders.base import FileScan, loaders
from ..loaders.folder import (
    PREFERRED,
    _combine,
    _with_total_check,
    check_shard,
    index_shards,
    read_json_source,
    scan_source,
)
from ..loaders.gguf_split import expand_split, one_split_set
from .cache import HeaderCache
from .files import open_fsspec
from .http import HttpClient, Settings, Stats, display_url
from .hub import list_repo, parse_hf_url, resolve_url
from .source import FsspecSource, HttpRangeSource, RangeSource


class RemoteDir(Protocol):
    """A remote folder: what it lists (None when it cannot), whether a name exists, and opening a file."""

    display: str

    def listing(self) -> set[str] | None: ...

    def exists(self, name: str) -> bool: ...

    def open(self, name: str) -> RangeSource: ...


class HubDir:
    """A folder of a hub repository at one commit."""

    def __init__(self, client: HttpClient, cache: HeaderCache | None, repo: str, commit: str, prefix: str,
                 files: list[str], display: str) -> None:  # fmt: skip
        self._client, self._cache, self._repo, self._commit = client, cache, repo, commit
        self._prefix = f"{prefix}/" if prefix else ""
        self._all = {f[len(self._prefix) :] for f in files if f.startswith(self._prefix)}
        self.display = display

    def listing(self) -> set[str]:
        return {f for f in self._all if "/" not in f}

    def exists(self, name: str) -> bool:
        return name in self._all

    def open(self, name: str) -> RangeSource:
        url = resolve_url(self._client.settings.endpoint, self._repo, self._commit, self._prefix + name)
        pinned = re.fullmatch(r"[0-9a-f]{40}", self._commit) is not None  # a commit, not a branch or tag
        return HttpRangeSource(self._client, url, cache=self._cache, immutable=pinned)


class HttpDir:
    """A folder on a plain HTTP server: no listing; names are probed and the opened sources kept."""

    def __init__(self, client: HttpClient, cache: HeaderCache | None, base: str, display: str) -> None:
        self._client, self._cache, self._base = client, cache, base
        self._opened: dict[str, RangeSource] = {}
        self._lock = threading.Lock()
        self.display = display

    def url(self, name: str) -> str:
        return urljoin(self._base, quote(name))

    def listing(self) -> None:
        return None

    def exists(self, name: str) -> bool:
        try:
            src = HttpRangeSource(self._client, self.url(name), cache=self._cache)
        except NotFoundError:
            return False
        with self._lock:
            self._opened[name] = src
        return True

    def open(self, name: str) -> RangeSource:
        with self._lock:
            src = self._opened.pop(name, None)
        return src if src is not None else HttpRangeSource(self._client, self.url(name), cache=self._cache)


class FsspecDir:
    """A folder on an fsspec filesystem."""

    def __init__(self, fs: Any, root: str, display: str, settings: Settings, stats: Stats) -> None:
        self._fs, self._root, self._settings, self._stats = fs, root.rstrip("/"), settings, stats
        self.display = display

    def _path(self, name: str) -> str:
        return f"{self._root}/{name}" if self._root else name

    def listing(self) -> set[str]:
        try:
            entries = self._fs.ls(self._root, detail=True)
        except Exception as exc:
            raise NotFoundError(f"cannot list: {type(exc).__name__}: {exc}", path=self.display) from None
        out = set()
        for e in entries:
            if isinstance(e, dict) and e.get("type") == "file" and isinstance(e.get("name"), str):
                out.add(posixpath.basename(e["name"].rstrip("/")))
        return out

    def exists(self, name: str) -> bool:
        try:
            return bool(self._fs.isfile(self._path(name)))
        except Exception:
            return False

    def open(self, name: str) -> RangeSource:
        display = f"{self.display.rstrip('/')}/{name}"
        return FsspecSource(self._fs, self._path(name), display, self._settings, self._stats)


class Progress:
    """`reading headers 12/29 files · 1.4 MiB` on stderr, for multi-file models, when stderr is a terminal."""

    def __init__(self, total: int, stats: Stats, enabled: bool | None) -> None:
        tty = sys.stderr.isatty() if hasattr(sys.stderr, "isatty") else False
        self.on = total > 1 and (tty if enabled is None else enabled)
        self.total, self.done, self._stats = total, 0, stats
        self._lock = threading.Lock()
        self._tty = tty

    def advance(self) -> None:
        from ..render.units import human_bytes

        with self._lock:
            self.done += 1
            if self.on:
                line = f"reading headers {self.done}/{self.total} files · {human_bytes(self._stats.bytes_read)}"
                sys.stderr.write(("\r\x1b[2K" if self._tty else "") + line + ("" if self._tty else "\n"))
                sys.stderr.flush()

    def close(self) -> None:
        if self.on and self._tty:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()


def _check_name(name: str, display: str) -> None:
    # Shard names come from the index's author: plain relative names only, never a URL or a way out.
    parts = name.split("/")
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or any(p in ("", ".", "..") for p in parts)
        or any(c in name for c in "?#\0\r\n")
        or "://" in name
    ):
        raise MalformedFileError(
            f"shard name {name!r} is not a plain file name in the folder", path=display, rule="index-shard"
        )


def _scan_many(
    d: RemoteDir, names: list[str], settings: Settings, stats: Stats, missing: Callable[[str], InspectError] | None
) -> dict[str, tuple[FileScan, int]]:
    """Scan several files, at most `settings.workers` at a time; the first failure (in `names` order) wins."""
    progress = Progress(len(names), stats, settings.progress)

    def task(name: str) -> tuple[FileScan, int]:
        try:
            src = d.open(name)
        except NotFoundError:
            if missing is None:
                raise
            raise missing(name) from None
        with src:
            scan = scan_source(src, posixpath.basename(name), name)
            size = src.size
        progress.advance()
        return scan, size

    try:
        if len(names) <= 1 or settings.workers <= 1:
            return {n: task(n) for n in names}
        with ThreadPoolExecutor(max_workers=min(settings.workers, len(names)), thread_name_prefix="mi-remote") as pool:
            futures: list[Future[tuple[FileScan, int]]] = [pool.submit(task, n) for n in names]
            try:
                return {n: f.result() for n, f in zip(names, futures, strict=True)}
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    finally:
        progress.close()


def _read_config(d: RemoteDir, has: Callable[[str], bool]) -> Mapping[str, Any] | None:
    if not has("config.json"):
        return None
    with d.open("config.json") as src:
        doc = read_json_source(src, "config-json")
    return doc if isinstance(doc, dict) else None


def _load_index(
    d: RemoteDir, index: str, display: str, config: Mapping[str, Any] | None, settings: Settings, stats: Stats
) -> TensorInventory:
    with d.open(index) as src:
        doc = read_json_source(src, "index-json")
        index_size, where = src.size, src.name
    shards, declared = index_shards(doc, where)
    for shard in shards:
        _check_name(shard, where)
    listed = d.listing() is not None
    for shard in shards:
        if listed and not d.exists(shard):
            raise MalformedFileError(
                f"index names shard {shard!r}, which does not exist", path=where, rule="index-shard"
            )

    def missing(shard: str) -> InspectError:
        return MalformedFileError(f"index names shard {shard!r}, which does not exist", path=where, rule="index-shard")

    results = _scan_many(d, list(shards), settings, stats, missing)
    warnings: list[str] = []
    scans = []
    for shard, tensor_names in shards.items():
        scan, size = results[shard]
        check_shard(shard, tensor_names, scan, where, warnings)
        scans.append((shard, scan, size))
    inv = _combine("index", display, scans, FileRecord(posixpath.basename(index), index_size), config, warnings)
    return _with_total_check(inv, declared)


def _load_file(d: RemoteDir, name: str, display: str, settings: Settings, stats: Stats) -> TensorInventory:
    if name.endswith(".index.json"):
        return _load_index(d, name, display, None, settings, stats)
    return _load_single(d, name, display, None, settings, stats)


def _load_single(
    d: RemoteDir, name: str, display: str, config: Mapping[str, Any] | None, settings: Settings, stats: Stats
) -> TensorInventory:
    """One model file, or every part of the split GGUF it belongs to (the parts read concurrently)."""
    with d.open(name) as src:
        scan = scan_source(src, name, name)
        size = src.size

    def missing(part: str) -> InspectError:
        return MalformedFileError(f"split GGUF part {part} is missing", path=display, rule="gguf-split")

    def scan_parts(names: list[str]) -> dict[str, tuple[FileScan, int]]:
        return _scan_many(d, names, settings, stats, missing)

    return _combine(scan.format, display, expand_split(name, scan, size, scan_parts, display), None, config, [])


def _load_dir(d: RemoteDir, display: str, settings: Settings, stats: Stats) -> TensorInventory:
    """The local folder plan (`loaders.folder.load`) over a remote folder."""
    names = d.listing()
    has: Callable[[str], bool] = (lambda n: n in names) if names is not None else d.exists
    config = _read_config(d, has)
    for base in PREFERRED:
        index = f"{base}.index.json"
        if has(index):
            return _load_index(d, index, display, config, settings, stats)
        if has(base):
            with d.open(base) as src:
                scan = scan_source(src, base, base)
                size = src.size
            return _combine(scan.format, display, [(base, scan, size)], None, config, [])
    if names is None:
        raise NotFoundError(
            "no model.safetensors[.index.json] or pytorch_model.bin[.index.json] here, and a plain HTTP folder "
            "cannot be listed: name the model file in the URL",
            path=display,
        )
    known = tuple({e for ld in loaders() for e in ld.extensions if e not in (".pkl", ".tar")})
    candidates = sorted(n for n in names if n.lower().endswith(known))
    safetensors = [c for c in candidates if c.endswith(".safetensors")]
    chosen = safetensors if safetensors else candidates
    if not chosen:
        raise NotFoundError("folder holds no model file (.safetensors, .bin, .pth, .pt, .ckpt …)", path=display)
    warnings: list[str] = []
    if len(chosen) > 1 and not safetensors:
        first = one_split_set(chosen)
        if first is not None:  # a split GGUF: its parts make one model
            return _load_single(d, first, display, config, settings, stats)
        raise UnsupportedFormatError(
            f"folder holds {len(chosen)} model files and no index; name one of: " + ", ".join(chosen[:6]),
            path=display,
        )
    if len(chosen) == 1:
        return _load_single(d, chosen[0], display, config, settings, stats)
    warnings.append(f"no index file: read all {len(chosen)} .safetensors files as shards of one model")
    results = _scan_many(d, chosen, settings, stats, None)
    scans = [(c, *results[c]) for c in chosen]
    return _combine(scans[0][1].format, display, scans, None, config, warnings)


def _load_hub(url: str, client: HttpClient, cache: HeaderCache | None, stats: Stats) -> TensorInventory:
    ref = parse_hf_url(url)
    commit, files = list_repo(client, cache, ref)
    settings = client.settings
    if ref.path and ref.path in files:
        folder, name = posixpath.split(ref.path)
        d = HubDir(client, cache, ref.repo, commit, folder, files, url)
        return _load_file(d, name, url, settings, stats)
    if ref.path and not any(f.startswith(ref.path + "/") for f in files):
        raise NotFoundError(f"{ref.repo}@{ref.revision} has no file or folder {ref.path!r}", path=url, rule="http-404")
    return _load_dir(HubDir(client, cache, ref.repo, commit, ref.path, files, url), url, settings, stats)


def _load_http(url: str, client: HttpClient, cache: HeaderCache | None, stats: Stats) -> TensorInventory:
    parts = urlsplit(url)
    shown = display_url(url)
    if parts.path.endswith("/") or not parts.path:
        base = urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))
        return _load_dir(HttpDir(client, cache, base, shown), shown, client.settings, stats)
    name = unquote(posixpath.basename(parts.path))
    base = urlunsplit((parts.scheme, parts.netloc, posixpath.dirname(parts.path) + "/", "", ""))
    d = HttpDir(client, cache, base, shown)
    if parts.query:  # a presigned URL: open exactly what was given
        d._opened[name] = HttpRangeSource(client, url, cache=cache, display=shown)
    return _load_file(d, name, shown, client.settings, stats)


def _load_fsspec(url: str, settings: Settings, stats: Stats) -> TensorInventory:
    shown = display_url(url)
    fs, root, is_dir = open_fsspec(url, shown)
    if is_dir:
        return _load_dir(FsspecDir(fs, root, shown, settings, stats), shown, settings, stats)
    folder, name = posixpath.split(root.rstrip("/"))
    parent = shown.rsplit("/", 1)[0] if "/" in shown.split("://", 1)[1] else shown
    return _load_file(FsspecDir(fs, folder, parent, settings, stats), name, shown, settings, stats)


def load_url(
    url: str,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    settings: Settings | None = None,
) -> TensorInventory:
    """Read a remote model (headers only) into a `TensorInventory` with `extra["bytes_read"]`.

    `endpoint` / `token` override `MI_HF_ENDPOINT` / `HF_ENDPOINT` and `HF_TOKEN`; the token is sent only to
    the hub endpoint (or, when passed explicitly, to the URL's own server).

    Example:
        >>> inv = load_url("hf://meta-llama/Llama-2-70b-hf", token="hf_…")  # doctest: +SKIP
        >>> inv.total_params, inv.extra["bytes_read"]  # doctest: +SKIP
        (68976648192, 2199552)
    """
    settings = settings or Settings.from_env(endpoint=endpoint, token=token, url=url)
    stats = Stats()
    client = HttpClient(settings, stats)
    cache = HeaderCache(settings.cache_dir) if settings.cache_dir is not None else None
    scheme = url.split("://", 1)[0].lower()
    started = time.perf_counter()
    try:
        if scheme == "hf":
            inv = _load_hub(url, client, cache, stats)
        elif scheme in ("http", "https"):
            inv = _load_http(url, client, cache, stats)
        else:
            inv = _load_fsspec(url, settings, stats)
    finally:
        client.close()
    extra = dict(inv.extra)
    extra.update(
        bytes_read=stats.bytes_read,
        remote_requests=stats.requests,
        remote_retries=stats.retries,
        remote_revalidated=stats.revalidated,
        remote_seconds=round(time.perf_counter() - started, 3),
    )
    return replace(inv, extra=extra)


def read_config_url(
    url: str, *, endpoint: str | None = None, token: str | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """The `config.json` of a remote model: `hf://ORG/NAME[@REV][/PATH]`, a folder URL, or the JSON file's URL.

    For commands that need the hyperparameters only (`mi params --config URL`); reads one small file.

    Example:
        >>> read_config_url("hf://meta-llama/Llama-2-70b-hf")["num_hidden_layers"]  # doctest: +SKIP
        80
    """
    settings = settings or Settings.from_env(endpoint=endpoint, token=token, url=url)
    stats = Stats()
    client = HttpClient(settings, stats)
    cache = HeaderCache(settings.cache_dir) if settings.cache_dir is not None else None
    scheme = url.split("://", 1)[0].lower()
    shown = display_url(url)
    src: RangeSource
    try:
        if scheme == "hf":
            ref = parse_hf_url(url)
            commit, files = list_repo(client, cache, ref)
            name = ref.path if ref.path.endswith(".json") else posixpath.join(ref.path, "config.json")
            if name not in files:
                raise NotFoundError(f"{ref.repo}@{ref.revision} has no {name}", path=url, rule="http-404")
            src = HttpRangeSource(client, resolve_url(settings.endpoint, ref.repo, commit, name), cache=cache)
        elif scheme in ("http", "https"):
            target = url if urlsplit(url).path.endswith(".json") else urljoin(url.rstrip("/") + "/", "config.json")
            src = HttpRangeSource(client, target, cache=cache)
        else:
            target = url if url.endswith(".json") else url.rstrip("/") + "/config.json"
            fs, path, is_dir = open_fsspec(target, display_url(target))
            if is_dir:
                raise NotFoundError("config.json is a folder", path=display_url(target), rule="config-json")
            src = FsspecSource(fs, path, display_url(target), settings, stats)
        with src:
            doc = read_json_source(src, "config-json")
    finally:
        client.close()
    if not isinstance(doc, dict):
        raise MalformedFileError("config.json is not a JSON object", path=shown, rule="config-json")
    return doc
