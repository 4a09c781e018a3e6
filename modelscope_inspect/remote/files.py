"""A remote file or folder as named byte sources, for commands that read files one by one (`mi scan`).

`open_tree(url)` lists what is there, without reading any file:
- `hf://ORG/NAME[@REV][/PATH]`: every file of the repository under PATH (the hub lists recursively), resolved
  at the listed commit;
- `http(s)://…/FILE`: that file; `http(s)://…/FOLDER/`: a plain server cannot list a folder, so the names
  transformers uses are probed (`model.safetensors[.index.json]`, `pytorch_model.bin[.index.json]`) and the
  shards an index names are added; a note in `notes` says so;
- any other `scheme://` through fsspec (`fs.find`, recursive).

`RemoteTree.open(name)` returns a `RangeSource` whose `name` is the URL shown to the user (no token, no query).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from ..errors import LimitExceededError, NotFoundError, UsageError
from .cache import HeaderCache
from .http import HttpClient, Settings, Stats, display_url
from .hub import list_repo, parse_hf_url, resolve_url
from .source import FsspecSource, HttpRangeSource, RangeSource

MAX_FILES = 10_000
PROBED = ("model.safetensors.index.json", "model.safetensors", "pytorch_model.bin.index.json", "pytorch_model.bin")


class RemoteTree:
    """What a URL names: one file (`is_dir` False, one name) or the files of a folder (relative names)."""

    def __init__(
        self,
        display: str,
        is_dir: bool,
        names: list[str],
        opener: Callable[[str], RangeSource],
        client: HttpClient,
        stats: Stats,
        notes: list[str] | None = None,
    ) -> None:
        self.display, self.is_dir, self.names = display, is_dir, names
        self.notes = notes or []
        self.stats = stats
        self._opener, self._client = opener, client

    def shown(self, name: str) -> str:
        """The URL shown for `name` (the tree's own URL for a single file)."""
        return f"{self.display.rstrip('/')}/{name}" if self.is_dir else self.display

    @property
    def workers(self) -> int:
        """How many files may be read at once (`MI_REMOTE_WORKERS`, 8 by default)."""
        return self._client.settings.workers

    def open(self, name: str) -> RangeSource:
        """A byte source over one of `names` (a request for its first bytes is made now)."""
        return self._opener(name)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sort(names: list[str]) -> list[str]:
    # The order a local folder walk gives (pathlib sorts by parts).
    return sorted(names, key=lambda n: n.split("/"))


def _cap(names: list[str], display: str) -> list[str]:
    if len(names) > MAX_FILES:
        raise LimitExceededError(f"more than {MAX_FILES:,} files to read", path=display, rule="scan-limit")
    return _sort(names)


def _hub_tree(url: str, client: HttpClient, cache: HeaderCache | None, stats: Stats) -> RemoteTree:
    ref = parse_hf_url(url)
    commit, files = list_repo(client, cache, ref)
    pinned = re.fullmatch(r"[0-9a-f]{40}", commit) is not None
    shown = url.rstrip("/")
    endpoint = client.settings.endpoint

    def source(path: str, display: str) -> RangeSource:
        target = resolve_url(endpoint, ref.repo, commit, path)
        return HttpRangeSource(client, target, cache=cache, immutable=pinned, display=display)

    if ref.path and ref.path in files:
        path = ref.path
        return RemoteTree(shown, False, [posixpath.basename(path)], lambda _n: source(path, shown), client, stats)
    prefix = f"{ref.path}/" if ref.path else ""
    names = [f[len(prefix) :] for f in files if f.startswith(prefix)]
    if ref.path and not names:
        raise NotFoundError(f"{ref.repo}@{ref.revision} has no file or folder {ref.path!r}", path=url, rule="http-404")
    return RemoteTree(shown, True, _cap(names, shown), lambda n: source(prefix + n, f"{shown}/{n}"), client, stats)


def _http_tree(url: str, client: HttpClient, cache: HeaderCache | None, stats: Stats) -> RemoteTree:
    from ..loaders.folder import index_shards, read_json_source
    from .folder import _check_name

    parts = urlsplit(url)
    shown = display_url(url)
    if not (parts.path.endswith("/") or not parts.path):
        name = unquote(posixpath.basename(parts.path))
        return RemoteTree(
            shown, False, [name], lambda _n: HttpRangeSource(client, url, cache=cache, display=shown), client, stats
        )
    base = urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))
    shown = shown.rstrip("/")
    opened: dict[str, RangeSource] = {}

    def source(name: str) -> RangeSource:
        if name in opened:
            return opened.pop(name)
        return HttpRangeSource(client, urljoin(base, quote(name)), cache=cache, display=f"{shown}/{name}")

    names: list[str] = []
    for name in PROBED:
        try:
            src = source(name)
        except NotFoundError:
            continue
        if name.endswith(".index.json"):
            with src:
                shards, _declared = index_shards(read_json_source(src, "index-json"), src.name)
            for shard in shards:
                _check_name(shard, src.name)
                if shard not in names:
                    names.append(shard)
        else:
            opened[name] = src
            if name not in names:
                names.append(name)
    if not names:
        raise NotFoundError(
            "no model.safetensors[.index.json] or pytorch_model.bin[.index.json] here, and a plain HTTP folder "
            "cannot be listed: name the model file in the URL",
            path=shown,
        )
    note = (
        "a plain HTTP folder cannot be listed: read only the files the transformers layout names "
        f"({', '.join(PROBED)} and the shards their indexes name)"
    )
    return RemoteTree(shown, True, _cap(names, shown), source, client, stats, [note])


def open_fsspec(url: str, shown: str) -> tuple[Any, str, bool]:
    """`(filesystem, path, is_dir)` for an fsspec URL; one-line errors for a missing fsspec or backend and for
    a path that is neither a file nor a folder (`shown` is the URL as errors name it)."""
    scheme = url.split("://", 1)[0].lower()
    try:
        import fsspec  # type: ignore[import-untyped]  # optional: pip install fsspec (+ s3fs / gcsfs …)
    except ImportError:
        raise UsageError(
            f"{scheme}:// URLs need fsspec and its {scheme} backend (pip install fsspec s3fs / gcsfs / …)",
            path=shown,
            rule="fsspec-missing",
        ) from None
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except ImportError as exc:
        raise UsageError(
            f"fsspec has no working backend for {scheme}:// ({exc})", path=shown, rule="fsspec-missing"
        ) from None
    except (ValueError, KeyError) as exc:
        raise UsageError(f"fsspec does not know {scheme}:// ({exc})", path=shown, rule="fsspec-missing") from None
    try:
        is_dir = bool(fs.isdir(root))
        is_file = not is_dir and bool(fs.isfile(root))
    except Exception as exc:
        raise NotFoundError(f"cannot access: {type(exc).__name__}: {exc}", path=shown) from None
    if not (is_dir or is_file):
        raise NotFoundError("no such file or directory", path=shown)
    return fs, root, is_dir


def _fsspec_tree(url: str, client: HttpClient, settings: Settings, stats: Stats) -> RemoteTree:
    shown = display_url(url).rstrip("/")
    fs, root, is_dir = open_fsspec(url, shown)
    if not is_dir:
        return RemoteTree(
            shown,
            False,
            [posixpath.basename(root.rstrip("/"))],
            lambda _n: FsspecSource(fs, root, shown, settings, stats),
            client,
            stats,
        )
    top = root.rstrip("/")
    try:
        found = fs.find(top)
    except Exception as exc:
        raise NotFoundError(f"cannot list: {type(exc).__name__}: {exc}", path=shown) from None
    names = []
    for p in found:
        p = str(p).rstrip("/")
        rel = p[len(top) :].lstrip("/") if p.startswith(top) else ""
        if rel and ".." not in rel.split("/"):
            names.append(rel)
    return RemoteTree(
        shown,
        True,
        _cap(names, shown),
        lambda n: FsspecSource(fs, f"{top}/{n}", f"{shown}/{n}", settings, stats),
        client,
        stats,
    )


def open_tree(
    url: str, *, endpoint: str | None = None, token: str | None = None, settings: Settings | None = None
) -> RemoteTree:
    """List a remote file or folder (no file is read yet); close it when done (a context manager).

    Example:
        >>> with open_tree("hf://openai-community/gpt2") as tree:  # doctest: +SKIP
        ...     tree.names[:3]
        ['.gitattributes', 'README.md', 'config.json']
    """
    settings = settings or Settings.from_env(endpoint=endpoint, token=token, url=url)
    stats = Stats()
    client = HttpClient(settings, stats)
    cache = HeaderCache(settings.cache_dir) if settings.cache_dir is not None else None
    scheme = url.split("://", 1)[0].lower()
    try:
        if scheme == "hf":
            return _hub_tree(url, client, cache, stats)
        if scheme in ("http", "https"):
            return _http_tree(url, client, cache, stats)
        return _fsspec_tree(url, client, settings, stats)
    except BaseException:
        client.close()
        raise


__all__ = ["RemoteTree", "open_tree"]
