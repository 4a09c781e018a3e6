"""A small HTTP/1.1 client on the standard library: keep-alive connections per thread, redirects, retries.

Why not urllib: we need to stop reading a body half way (a server that ignores `Range` sends the whole file),
to reuse connections across the many small range requests of a sharded model, and to keep the token on the
origin it was meant for. `http.client` gives all three with no new dependency.

Rules (huggingface_hub and requests behave the same way):
- the token goes only to origins in `Settings.token_origins` (the hub endpoint, or the URL the user passed
  `--token` for); a redirect to another origin (the hub's CDN) is followed without it;
- 429 and 5xx are retried with exponential backoff (honouring `Retry-After`, capped), network errors too,
  except those that waiting does not mend (connection refused, an unknown host name, a refused certificate):
  one quick retry, then the error, so an unreachable URL fails within a second;
- when stderr is a terminal (or `MI_PROGRESS=1`), every wait says on stderr what it waits for: each retry
  and its delay, and a connection or response slower than `NOTICE_AFTER` seconds;
- 401 / 403 / 404 become one-line errors naming the URL (userinfo and query string redacted), never the token.
"""

from __future__ import annotations

import http.client
import os
import random
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from ..errors import AccessDeniedError, InspectError, NotFoundError, RemoteError, UsageError

DEFAULT_ENDPOINT = "https://huggingface.co"
MS_ENDPOINT = "https://www.modelscope.cn"  # ModelScope's hub (`ms://`)
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
DRAIN_LIMIT = 64 << 10  # error bodies up to this size are read so the connection can be reused
NOTICE_AFTER = 2.0  # seconds of silence on a terminal before stderr says what is being waited for
QUICK_RETRY = 0.1  # seconds before the one retry of an error waiting does not mend


def _lasting(exc: BaseException) -> bool:
    """Network errors that a backoff does not mend: nobody listens on the port, the host name does not resolve
    (a temporary DNS failure excepted), the certificate is refused."""
    if isinstance(exc, socket.gaierror):
        return exc.errno != socket.EAI_AGAIN
    ssl = sys.modules.get("ssl")  # imported with the first https connection, not before
    refused_cert = ssl is not None and isinstance(exc, ssl.SSLCertVerificationError)
    return isinstance(exc, ConnectionRefusedError) or refused_cert


def display_url(url: str) -> str:
    """The URL as shown in messages: no userinfo (`user:secret@`) and no query string (presigned signatures)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    shown = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return shown + ("?…" if parts.query else "")


def origin(url: str) -> str:
    """`scheme://host:port`, the unit the token is scoped to."""
    p = urlsplit(url)
    port = p.port or (443 if p.scheme == "https" else 80)
    return f"{p.scheme}://{(p.hostname or '').lower()}:{port}"


def _env_number(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a number", rule="env") from None
    if not lo <= value <= hi:
        raise UsageError(f"{name}={raw!r} is outside {lo:g}…{hi:g}", rule="env")
    return value


def default_cache_dir(env: Mapping[str, str]) -> Path | None:
    """`$MI_CACHE_DIR`, else `$XDG_CACHE_HOME/modelscope-inspect`, else `~/.cache/modelscope-inspect`.

    `MI_CACHE_DIR=` (empty) or `MI_NO_CACHE=1` turn the header cache off.
    """
    if env.get("MI_NO_CACHE", "") not in ("", "0"):
        return None
    if "MI_CACHE_DIR" in env:
        return Path(env["MI_CACHE_DIR"]).expanduser() if env["MI_CACHE_DIR"].strip() else None
    xdg = env.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "modelscope-inspect"


@dataclass(frozen=True, slots=True)
class Settings:
    """How remote reads behave. `from_env` fills what the caller did not pass from the environment."""

    endpoint: str = DEFAULT_ENDPOINT
    token: str | None = field(default=None, repr=False)
    token_origins: frozenset[str] = frozenset()
    token_env: str = "HF_TOKEN"  # the variable a missing token is set in, for messages
    timeout: float = 30.0
    retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0
    workers: int = 8
    cache_dir: Path | None = None
    min_fetch: int = 64 << 10
    seek_fetch: int = 16 << 10
    max_readahead: int = 8 << 20
    max_stream: int = 1 << 30
    progress: bool | None = None

    @classmethod
    def from_env(
        cls,
        *,
        endpoint: str | None = None,
        token: str | None = None,
        url: str | None = None,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Settings from arguments first, then `MI_HF_ENDPOINT` / `HF_ENDPOINT`, `HF_TOKEN`, `MI_REMOTE_*`; for an
        `ms://` URL `MI_MS_ENDPOINT` / `MODELSCOPE_DOMAIN` and `MODELSCOPE_API_TOKEN` instead."""
        env = os.environ if env is None else env
        modelscope = url is not None and url.startswith("ms://")
        if modelscope:  # ModelScope's hub: its own endpoint and token variables
            default = env.get("MI_MS_ENDPOINT") or (
                f"https://{env['MODELSCOPE_DOMAIN']}" if env.get("MODELSCOPE_DOMAIN") else MS_ENDPOINT
            )
            ep = (endpoint or default).strip().rstrip("/")
        else:
            ep = (
                (endpoint or env.get("MI_HF_ENDPOINT") or env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT)
                .strip()
                .rstrip("/")
            )
        if urlsplit(ep).scheme not in ("http", "https") or not urlsplit(ep).hostname:
            raise UsageError(f"hub endpoint {display_url(ep)!r} is not an http(s) URL", rule="endpoint")
        origins = {origin(ep)}
        tok = token
        if tok:
            # An explicit --token also goes to the URL the user named (a private mirror), never elsewhere.
            if url and urlsplit(url).scheme in ("http", "https"):
                origins.add(origin(url))
        elif modelscope:
            tok = env.get("MODELSCOPE_API_TOKEN") or None
        else:
            tok = env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN") or None
        progress_env = env.get("MI_PROGRESS", "").strip()
        values: dict[str, Any] = {
            "endpoint": ep,
            "token": tok.strip() if tok else None,
            "token_origins": frozenset(origins),
            "token_env": "MODELSCOPE_API_TOKEN" if modelscope else "HF_TOKEN",
            "timeout": _env_number(env, "MI_REMOTE_TIMEOUT", 30.0, 0.1, 3600),
            "retries": int(_env_number(env, "MI_REMOTE_RETRIES", 4, 0, 20)),
            "backoff": _env_number(env, "MI_REMOTE_BACKOFF", 0.5, 0, 60),
            "workers": int(_env_number(env, "MI_REMOTE_WORKERS", 8, 1, 64)),
            "max_stream": int(_env_number(env, "MI_REMOTE_MAX_STREAM", 1 << 30, 0, 1 << 50)),
            "cache_dir": default_cache_dir(env),
            "progress": None if progress_env == "" else progress_env not in ("0", "false", "no"),
        }
        values["max_backoff"] = max(values["backoff"] * 16, 0.0)
        values.update(overrides)
        return cls(**values)


class Stats:
    """Bytes and requests over the network, shared by every source of one load (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes_read = 0
        self.requests = 0
        self.retries = 0
        self.revalidated = 0

    def add(self, *, nbytes: int = 0, requests: int = 0, retries: int = 0, revalidated: int = 0) -> None:
        with self._lock:
            self.bytes_read += nbytes
            self.requests += requests
            self.retries += retries
            self.revalidated += revalidated


def _clean(text: str | None, limit: int = 200) -> str:
    if not text:
        return ""
    out = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return out[:limit] + ("…" if len(out) > limit else "")


class Response:
    """An open response: `status`, `header(name)`, `read(n)` (counted), `finish()` to release the connection."""

    def __init__(self, client: HttpClient, key: tuple[str, str, int], raw: http.client.HTTPResponse, url: str):
        self._client = client
        self._key = key
        self.raw = raw
        self.url = url
        self.status = raw.status

    def header(self, name: str) -> str | None:
        return self.raw.getheader(name)

    def read(self, n: int, what: str) -> bytes:
        """Up to `n` body bytes; a body cut short of its declared length is a `RemoteError`."""
        chunks: list[bytes] = []
        left = n
        try:
            while left > 0:
                chunk = self.raw.read(min(left, 1 << 20))
                if not chunk:
                    break
                self._client.stats.add(nbytes=len(chunk))
                chunks.append(chunk)
                left -= len(chunk)
        except http.client.IncompleteRead as exc:
            self._client.stats.add(nbytes=len(exc.partial))
            self._client.drop(self._key)
            raise RemoteError(
                f"{what}: the response ended after {n - left + len(exc.partial):,} of the bytes it promised",
                path=display_url(self.url),
                rule="http-short-body",
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            self._client.drop(self._key)
            raise RemoteError(
                f"{what}: connection failed while reading ({_clean(str(exc)) or type(exc).__name__})",
                path=display_url(self.url),
                rule="network",
            ) from None
        return b"".join(chunks)

    def skip(self, n: int, what: str) -> None:
        """Read and discard `n` bytes in bounded chunks (a server that ignores `Range`)."""
        left = n
        while left > 0:
            got = len(self.read(min(left, 1 << 20), what))
            if got == 0:
                raise RemoteError(
                    f"{what}: the response ended {left:,} bytes early",
                    path=display_url(self.url),
                    rule="http-short-body",
                )
            left -= got

    def finish(self) -> None:
        """Keep the connection when the body was read to its end, else close it (never drain a large body)."""
        if not self.raw.isclosed() and self.raw.length == 0 and not self.raw.chunked:
            self.raw.read()  # an empty body (304, 302 without one): marks the response done
        if not self.raw.isclosed():
            self._client.drop(self._key)


class HttpClient:
    """GET with keep-alive per thread, redirects, retries and the token scoped to its origins."""

    def __init__(self, settings: Settings, stats: Stats | None = None) -> None:
        self.settings = settings
        self.stats = stats or Stats()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[http.client.HTTPConnection] = []
        self._ssl: Any = None  # ssl.SSLContext, made on the first https connection

    # -- connections ---------------------------------------------------------------------------------------
    def _pool(self) -> dict[tuple[str, str, int], http.client.HTTPConnection]:
        pool: dict[tuple[str, str, int], http.client.HTTPConnection] | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = {}
            self._local.pool = pool
        return pool

    def _connect(self, key: tuple[str, str, int]) -> http.client.HTTPConnection:
        scheme, host, port = key
        timeout = self.settings.timeout
        proxy = None
        # Loopback never goes through a proxy; otherwise honour https_proxy / http_proxy / no_proxy like urllib.
        if host not in ("127.0.0.1", "localhost", "::1") and not urllib.request.proxy_bypass(host):
            proxy = urllib.request.getproxies().get(scheme)
        conn: http.client.HTTPConnection
        if scheme == "https":
            if self._ssl is None:
                import ssl

                self._ssl = ssl.create_default_context()
            if proxy:
                p = urlsplit(proxy)
                conn = http.client.HTTPSConnection(p.hostname or "", p.port or 80, timeout=timeout, context=self._ssl)
                conn.set_tunnel(host, port)
            else:
                conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._ssl)
        else:
            if proxy:
                p = urlsplit(proxy)
                conn = http.client.HTTPConnection(p.hostname or "", p.port or 80, timeout=timeout)
                conn.set_tunnel(host, port)
            else:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
        with self._lock:
            self._all.append(conn)
        return conn

    def drop(self, key: tuple[str, str, int]) -> None:
        conn = self._pool().pop(key, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()

    # -- requests ------------------------------------------------------------------------------------------
    def _noticing(self) -> bool:
        """Waits are told on stderr: on a terminal unless `MI_PROGRESS=0`, elsewhere only with `MI_PROGRESS=1`."""
        if self.settings.progress is not None:
            return self.settings.progress
        return bool(getattr(sys.stderr, "isatty", lambda: False)())

    def _notice(self, text: str) -> None:
        if self._noticing():
            sys.stderr.write(f"mi: {text}\n")
            sys.stderr.flush()

    def _sleep(self, attempt: int, retry_after: str | None, why: str, where: str, quick: bool = False) -> None:
        s = self.settings
        delay = min(s.max_backoff, s.backoff * (2 ** (attempt - 1)))
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, min(float(retry_after), s.max_backoff))
        delay *= 0.75 + 0.5 * random.random()
        if quick:
            delay = min(delay, QUICK_RETRY)
        elif delay >= 0.5:  # a quick retry needs no words
            self._notice(f"{where}: {why}; retry {attempt} of {s.retries} in {delay:.1f} s")
        time.sleep(delay)

    def _slow(self, where: str) -> threading.Timer | None:
        """A timer that says, after `NOTICE_AFTER` seconds, that the server has not answered yet."""
        if not self._noticing():
            return None
        timer = threading.Timer(
            NOTICE_AFTER,
            self._notice,
            (f"{where}: waiting for the server (timeout {self.settings.timeout:g} s, MI_REMOTE_TIMEOUT)",),
        )
        timer.daemon = True
        timer.start()
        return timer

    def get(self, url: str, headers: Mapping[str, str], what: str) -> Response:
        """GET `url`, following redirects and retrying 429/5xx/network errors; any other status is returned."""
        from .._version import __version__

        s = self.settings
        current = url
        attempt = 0
        redirects = 0
        while True:
            parts = urlsplit(current)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise RemoteError(f"{what}: cannot fetch a non-HTTP URL", path=display_url(current), rule="url")
            key = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
            target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
            hdrs = {"User-Agent": f"modelscope-inspect/{__version__}", "Accept-Encoding": "identity", **headers}
            if s.token and origin(current) in s.token_origins:
                hdrs["Authorization"] = f"Bearer {s.token}"
            pool = self._pool()
            conn = pool.get(key)
            reused = conn is not None
            if conn is None:
                conn = pool[key] = self._connect(key)
            where = f"{parts.hostname}:{key[2]}"
            timer = self._slow(where)
            try:
                self.stats.add(requests=1)
                conn.request("GET", target, headers=hdrs)
                raw = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                self.drop(key)
                if reused and isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError):
                    continue  # a kept-alive connection the server closed meanwhile: reconnect, not an attempt
                attempt += 1
                reason = _clean(str(exc)) or type(exc).__name__
                if isinstance(exc, socket.timeout | TimeoutError):
                    reason = f"timed out after {s.timeout:g} s"
                lasting = _lasting(exc)
                if attempt > (min(s.retries, 1) if lasting else s.retries):
                    raise RemoteError(
                        f"{what}: cannot reach the server ({reason})", path=display_url(url), rule="network"
                    ) from None
                self.stats.add(retries=1)
                self._sleep(attempt, None, reason, where, quick=lasting)
                continue
            finally:
                if timer is not None:
                    timer.cancel()
            resp = Response(self, key, raw, current)
            if raw.status in RETRY_STATUS and attempt < s.retries:
                retry_after = raw.getheader("Retry-After")
                self._discard(resp)
                attempt += 1
                self.stats.add(retries=1)
                self._sleep(attempt, retry_after, f"HTTP {raw.status}", where)
                continue
            if raw.status in REDIRECT_STATUS:
                location = raw.getheader("Location")
                self._discard(resp)
                redirects += 1
                if not location or redirects > MAX_REDIRECTS:
                    raise RemoteError(
                        f"{what}: too many redirects or a redirect without Location",
                        path=display_url(url),
                        rule="http-redirect",
                    )
                current = urljoin(current, location)
                continue
            return resp

    def _discard(self, resp: Response) -> None:
        length = resp.header("Content-Length")
        if length is not None and length.isdigit() and int(length) <= DRAIN_LIMIT:
            resp.read(int(length), "error body")
        resp.finish()

    def fail(self, resp: Response, what: str, url: str) -> InspectError:
        """The error for a status the caller did not expect (call after deciding the response is not usable)."""
        status = resp.status
        code = _clean(resp.header("X-Error-Code"), 60)
        message = _clean(resp.header("X-Error-Message"))
        if self.settings.token and message:
            message = message.replace(self.settings.token, "***")
        self._discard(resp)
        hub = f" ({code}: {message})" if code and message else f" ({code or message})" if code or message else ""
        where = display_url(url)
        sent_token = bool(self.settings.token) and origin(url) in self.settings.token_origins
        if status == 401:
            hint = (
                "the token was refused; check it"
                if sent_token
                else f"the server wants a token: set {self.settings.token_env} (or pass --token)"
            )
            return AccessDeniedError(f"{what}: HTTP 401 unauthorized{hub}: {hint}", path=where, rule="http-401")
        if status == 403:
            return AccessDeniedError(
                f"{what}: HTTP 403 forbidden{hub}: the token has no access (gated repository: accept its terms "
                "on the hub; private: check the token's permissions)",
                path=where,
                rule="http-403",
            )
        if status == 404:
            return NotFoundError(f"{what}: HTTP 404 not found{hub}", path=where, rule="http-404")
        if status in RETRY_STATUS:
            return RemoteError(
                f"{what}: HTTP {status} {_clean(resp.raw.reason, 60)} after {self.settings.retries + 1} attempts{hub}",
                path=where,
                rule="http-status",
            )
        return RemoteError(
            f"{what}: unexpected HTTP {status} {_clean(resp.raw.reason, 60)}{hub}", path=where, rule="http-status"
        )
