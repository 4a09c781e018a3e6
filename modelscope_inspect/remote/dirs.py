"""Remote folders as `ModelDir`s: what a URL names, opened once, read by the same folder plan as a local folder.

Three kinds:
- `hf://ORG/NAME[@REV][/PATH]`: listed through the hub API (recursively), files resolved at the listed commit;
  `ms://ORG/NAME[@REV][/PATH]` the same through ModelScope's API;
- `http(s)://…/FILE` or `…/FOLDER/`: a plain server cannot list a folder; names are probed and the opened
  sources kept for the read that follows;
- any other `scheme://` through fsspec when it is installed (`s3://`, `gs://`, `memory://` …).

`open_target(url)` returns the folder, the file the URL names (None for a folder) and the session whose
`Stats` count every body byte that crossed the network. `walk()` lists a folder recursively for `mi scan`.
"""

from __future__ import annotations

import posixpath
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from ..errors import LimitExceededError, MalformedFileError, NotFoundError, UsageError
from ..loaders.folder import not_plain
from .cache import HeaderCache
from .http import HttpClient, Settings, Stats, display_url
from .hub import list_repo, ms_file_url, ms_list_repo, parse_hf_url, parse_ms_url, resolve_url
from .source import FsspecSource, HttpRangeSource, RangeSource

MAX_FILES = 10_000  # files a recursive listing may name


class Session:
    """One URL's connections, header cache and byte counts. Close it when done (a context manager)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stats = Stats()
        self.client = HttpClient(settings, self.stats)
        self.cache = HeaderCache(settings.cache_dir) if settings.cache_dir is not None else None

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _RemoteDir:
    """What the three kinds share: the session, the worker count, name checks and byte counts."""

    display: str
    session: Session

    @property
    def workers(self) -> int:
        return self.session.settings.workers

    def bytes_read(self) -> int:
        return self.session.stats.bytes_read

    def listing(self) -> list[str] | None:
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def check(self, name: str, where: str, *, label: str, rule: str, missing: str) -> None:
        # Names come from the index's author: plain relative names only, never a URL or a way out. A folder
        # that can be listed says now whether the file is there; otherwise opening it will.
        err = not_plain(name, where, label=label, rule=rule)
        if err is not None:
            raise err
        if self.listing() is not None and not self.exists(name):
            raise MalformedFileError(missing.format(name=name), path=where, rule=rule)


class HubDir(_RemoteDir):
    """A folder of a hub repository at one commit."""

    def __init__(self, session: Session, repo: str, commit: str, prefix: str, files: list[str], display: str) -> None:
        self.session, self._repo, self._commit = session, repo, commit
        self._prefix = f"{prefix}/" if prefix else ""
        self._all = {f[len(self._prefix) :] for f in files if f.startswith(self._prefix)}
        self.display = display

    def listing(self) -> list[str]:
        return sorted(f for f in self._all if "/" not in f)

    def walk(self) -> list[str]:
        return sorted(self._all)

    def exists(self, name: str) -> bool:
        return name in self._all

    def open(self, name: str, shown: str | None = None) -> RangeSource:
        s = self.session
        url = resolve_url(s.settings.endpoint, self._repo, self._commit, self._prefix + name)
        pinned = re.fullmatch(r"[0-9a-f]{40}", self._commit) is not None  # a commit, not a branch or tag
        return HttpRangeSource(s.client, url, cache=s.cache, immutable=pinned, display=shown)


class MsDir(HubDir):
    """A folder of a ModelScope repository: files read at the commit that last changed each (pinned, so cached
    headers stay valid) or at the revision asked for when the listing names none."""

    def __init__(self, session: Session, repo: str, revisions: dict[str, str], prefix: str, display: str) -> None:
        super().__init__(session, repo, "", prefix, list(revisions), display)
        self._revisions = revisions

    def open(self, name: str, shown: str | None = None) -> RangeSource:
        s = self.session
        path = self._prefix + name
        revision = self._revisions.get(path, "master")
        url = ms_file_url(s.settings.endpoint, self._repo, revision, path)
        pinned = re.fullmatch(r"[0-9a-f]{40}", revision) is not None
        return HttpRangeSource(s.client, url, cache=s.cache, immutable=pinned, display=shown)


class HttpDir(_RemoteDir):
    """A folder on a plain HTTP server: no listing; names are probed and the opened sources kept."""

    def __init__(self, session: Session, base: str, display: str) -> None:
        self.session, self._base = session, base
        self._opened: dict[str, RangeSource] = {}
        self._lock = threading.Lock()
        self.display = display

    def url(self, name: str) -> str:
        return urljoin(self._base, quote(name))

    def listing(self) -> None:
        return None

    def walk(self) -> None:
        return None

    def exists(self, name: str) -> bool:
        try:
            src = HttpRangeSource(self.session.client, self.url(name), cache=self.session.cache)
        except NotFoundError:
            return False
        with self._lock:
            self._opened[name] = src
        return True

    def keep(self, name: str, src: RangeSource) -> None:
        """Serve `name` from `src` (a presigned URL is opened exactly as given)."""
        with self._lock:
            self._opened[name] = src

    def open(self, name: str, shown: str | None = None) -> RangeSource:
        with self._lock:
            src = self._opened.pop(name, None)
        if src is not None:
            return src
        return HttpRangeSource(self.session.client, self.url(name), cache=self.session.cache, display=shown)


class FsspecDir(_RemoteDir):
    """A folder on an fsspec filesystem."""

    def __init__(self, session: Session, fs: Any, root: str, display: str) -> None:
        self.session, self._fs, self._root = session, fs, root.rstrip("/")
        self.display = display
        self._names: list[str] | None = None

    def _path(self, name: str) -> str:
        return f"{self._root}/{name}" if self._root else name

    def listing(self) -> list[str]:
        if self._names is None:
            try:
                entries = self._fs.ls(self._root, detail=True)
            except Exception as exc:
                raise NotFoundError(f"cannot list: {type(exc).__name__}: {exc}", path=self.display) from None
            out = set()
            for e in entries:
                if isinstance(e, dict) and e.get("type") == "file" and isinstance(e.get("name"), str):
                    out.add(posixpath.basename(e["name"].rstrip("/")))
            self._names = sorted(out)
        return self._names

    def walk(self) -> list[str]:
        shown = self.display.rstrip("/")
        try:
            found = self._fs.find(self._root)
        except Exception as exc:
            raise NotFoundError(f"cannot list: {type(exc).__name__}: {exc}", path=shown) from None
        names = []
        for p in found:
            p = str(p).rstrip("/")
            rel = p[len(self._root) :].lstrip("/") if p.startswith(self._root) else ""
            if rel and ".." not in rel.split("/"):
                names.append(rel)
        return names

    def exists(self, name: str) -> bool:
        try:
            return bool(self._fs.isfile(self._path(name)))
        except Exception:
            return False

    def open(self, name: str, shown: str | None = None) -> RangeSource:
        display = shown or f"{self.display.rstrip('/')}/{name}"
        return FsspecSource(self._fs, self._path(name), display, self.session.settings, self.session.stats)


RemoteDir = HubDir | MsDir | HttpDir | FsspecDir


@dataclass(slots=True)
class Target:
    """What a URL names: a folder (`name` None) or one file `name` of `folder`."""

    folder: RemoteDir
    name: str | None
    display: str  # the URL as shown (no userinfo, no query)
    session: Session


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


def _hub(url: str, s: Session) -> Target:
    ref = parse_hf_url(url)
    commit, files = list_repo(s.client, s.cache, ref)
    if ref.path and ref.path in files:
        folder, name = posixpath.split(ref.path)
        return Target(HubDir(s, ref.repo, commit, folder, files, url), name, url, s)
    if ref.path and not any(f.startswith(ref.path + "/") for f in files):
        raise NotFoundError(f"{ref.repo}@{ref.revision} has no file or folder {ref.path!r}", path=url, rule="http-404")
    return Target(HubDir(s, ref.repo, commit, ref.path, files, url), None, url, s)


def _modelscope(url: str, s: Session) -> Target:
    ref = parse_ms_url(url)
    revisions = ms_list_repo(s.client, s.cache, ref)
    if ref.path and ref.path in revisions:
        folder, name = posixpath.split(ref.path)
        return Target(MsDir(s, ref.repo, revisions, folder, url), name, url, s)
    if ref.path and not any(f.startswith(ref.path + "/") for f in revisions):
        raise NotFoundError(f"{ref.repo}@{ref.revision} has no file or folder {ref.path!r}", path=url, rule="http-404")
    return Target(MsDir(s, ref.repo, revisions, ref.path, url), None, url, s)


def _http(url: str, s: Session) -> Target:
    parts = urlsplit(url)
    shown = display_url(url)
    if parts.path.endswith("/") or not parts.path:
        base = urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))
        return Target(HttpDir(s, base, shown), None, shown, s)
    name = unquote(posixpath.basename(parts.path))
    base = urlunsplit((parts.scheme, parts.netloc, posixpath.dirname(parts.path) + "/", "", ""))
    d = HttpDir(s, base, shown)
    if parts.query:  # a presigned URL: open exactly what was given
        d.keep(name, HttpRangeSource(s.client, url, cache=s.cache, display=shown))
    return Target(d, name, shown, s)


def _fsspec(url: str, s: Session) -> Target:
    shown = display_url(url)
    fs, root, is_dir = open_fsspec(url, shown)
    if is_dir:
        return Target(FsspecDir(s, fs, root, shown), None, shown, s)
    folder, name = posixpath.split(root.rstrip("/"))
    parent = shown.rsplit("/", 1)[0] if "/" in shown.split("://", 1)[1] else shown
    return Target(FsspecDir(s, fs, folder, parent), name, shown, s)


def open_target(
    url: str, *, endpoint: str | None = None, token: str | None = None, settings: Settings | None = None
) -> Target:
    """Resolve a URL to a folder and, when it names one, a file; nothing is read beyond a hub listing or an
    fsspec stat. Close `target.session` when done.

    `endpoint` / `token` override `MI_HF_ENDPOINT` / `HF_ENDPOINT` and `HF_TOKEN`; the token is sent only to
    the hub endpoint (or, when passed explicitly, to the URL's own server).
    """
    session = Session(settings or Settings.from_env(endpoint=endpoint, token=token, url=url))
    scheme = url.split("://", 1)[0].lower()
    try:
        if scheme == "hf":
            return _hub(url, session)
        if scheme == "ms":
            return _modelscope(url, session)
        if scheme in ("http", "https"):
            return _http(url, session)
        return _fsspec(url, session)
    except BaseException:
        session.close()
        raise


def capped(names: list[str], display: str) -> list[str]:
    """`names` in the order a local folder walk gives (pathlib sorts by parts), at most `MAX_FILES`."""
    if len(names) > MAX_FILES:
        raise LimitExceededError(f"more than {MAX_FILES:,} files to read", path=display, rule="scan-limit")
    return sorted(names, key=lambda n: n.split("/"))


__all__ = ["FsspecDir", "HttpDir", "HubDir", "MsDir", "Session", "Target", "capped", "open_fsspec", "open_target"]
