"""A real HTTP server for the remote tests and benchmark: standard-library `http.server` with Range support.

It serves a folder laid out like a hub (`<root>/<org>/<name>/...`) under the routes huggingface.co uses:
- `GET /api/models/<org>/<name>/revision/<rev>` → `{"sha", "siblings": [{"rfilename"}]}` with an ETag;
- `GET /<org>/<name>/resolve/<rev>/<path>` → 302 to `/cdn/<org>/<name>/<path>` (like the hub's LFS CDN),
  or to another server (`cdn=`), so the token's origin scoping can be observed;
- `GET /files/<path>` → the file itself (a plain HTTP server / mirror).

Files are streamed in 1 MiB chunks (sparse files of hundreds of MB cost nothing), single ranges
(`a-b`, `a-`, `-n`) get a `206` with `Content-Range`, `If-None-Match` a `304`. Faults on demand:
`ignore_range` (always 200 + whole body), `lie` ("start" shifts the Content-Range start, "short" sends half
the body then closes, "total" misreports the file size, "length" sends a Content-Length that disagrees with
Content-Range), `fail` (that many 503s first), `token` (401 without, 403 with a wrong one). It counts body
bytes sent, requests, the ranges asked for and the peak of concurrent requests: the tests' oracle.

The tests in this file check the server itself against `urllib` so the oracle is trustworthy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

SHA = "0123456789abcdef0123456789abcdef01234567"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class ServerState:
    root: Path
    ignore_range: bool = False
    lie: str | None = None
    fail: int = 0
    token: str | None = None
    cdn: str | None = None  # base URL of another server to redirect resolve/ to
    redirect: bool = True
    bytes_sent: int = 0
    requests: int = 0
    log: list[tuple[str, str | None, int]] = field(default_factory=list)
    auth_seen: list[str | None] = field(default_factory=list)
    inflight: int = 0
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset_counters(self) -> None:
        with self.lock:
            self.bytes_sent = self.requests = self.peak = 0
            self.log.clear()
            self.auth_seen.clear()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:  # huggingface_hub asks for file metadata with HEAD (the benchmark's peer)
        self.do_GET()

    def _write(self, data: bytes) -> None:
        if self.command != "HEAD":
            self.wfile.write(data)
            with self.server.state.lock:
                self.server.state.bytes_sent += len(data)

    def do_GET(self) -> None:
        st = self.server.state
        with st.lock:
            st.requests += 1
            st.inflight += 1
            st.peak = max(st.peak, st.inflight)
            st.auth_seen.append(self.headers.get("Authorization"))
        try:
            self._route(st)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with st.lock:
                st.inflight -= 1

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        st = self.server.state
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._write(body)
        with st.lock:
            st.log.append((self.path, self.headers.get("Range"), status))

    def _route(self, st: ServerState) -> None:
        path = unquote(urlsplit(self.path).path)
        parts = path.strip("/").split("/")
        if st.fail > 0:
            with st.lock:
                st.fail -= 1
            self._send(503, b"busy", {"Retry-After": "0"})
            return
        if (parts[0] in ("api", "files") or "resolve" in parts) and st.token is not None:
            auth = self.headers.get("Authorization")
            if auth is None:
                self._send(401, b"{}", {"X-Error-Code": "GatedRepo", "X-Error-Message": "needs a token"})
                return
            if auth != f"Bearer {st.token}":
                self._send(403, b"{}", {"X-Error-Message": "Access denied"})
                return
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "revision":
            self._api(st, parts[2], parts[3], "/".join(parts[5:]))
        elif len(parts) >= 5 and parts[2] == "resolve":
            org, name, rev = parts[0], parts[1], parts[3]
            rest = "/".join(parts[4:])
            if rev not in ("main", SHA) or not (st.root / org / name).is_dir():
                self._send(
                    404, b"", {"X-Error-Code": "RevisionNotFound" if rev not in ("main", SHA) else "RepoNotFound"}
                )
            elif not (st.root / org / name / rest).is_file():
                self._send(404, b"", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": SHA})
            elif st.redirect:
                base = st.cdn or ""
                self._send(302, b"", {"Location": f"{base}/cdn/{org}/{name}/{rest}", "X-Repo-Commit": SHA})
            else:
                self._file(st, st.root / org / name / rest)
        elif (parts[0] == "cdn" and len(parts) >= 4) or (parts[0] == "files" and len(parts) >= 2):
            self._file(st, st.root / Path(*parts[1:]))
        else:
            self._send(404, b"not found")

    def _api(self, st: ServerState, org: str, name: str, rev: str) -> None:
        repo = st.root / org / name
        if not repo.is_dir():
            self._send(404, b"{}", {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
            return
        if rev not in ("main", SHA):
            self._send(404, b"{}", {"X-Error-Code": "RevisionNotFound"})
            return
        files = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file())
        body = json.dumps({"id": f"{org}/{name}", "sha": SHA, "siblings": [{"rfilename": f} for f in files]}).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        if self.headers.get("If-None-Match") == etag:
            self._send(304, b"", {"ETag": etag})
            return
        self._send(200, body, {"ETag": etag, "Content-Type": "application/json"})

    def _file(self, st: ServerState, file: Path) -> None:
        root = st.root.resolve()
        try:
            real = file.resolve(strict=True)
        except (FileNotFoundError, RuntimeError):
            self._send(404, b"no such file")
            return
        if not real.is_relative_to(root) or not real.is_file():
            self._send(404, b"no such file")
            return
        stat = real.stat()
        size = stat.st_size
        etag = f'"{size:x}-{stat.st_mtime_ns:x}"'
        if self.headers.get("If-None-Match") == etag:
            self._send(304, b"", {"ETag": etag})
            return
        start, end = 0, size  # [start, end)
        status = 200
        rng = self.headers.get("Range")
        if rng and not st.ignore_range:
            m = _RANGE.match(rng.strip())
            if m and (m.group(1) or m.group(2)):
                a, b = m.group(1), m.group(2)
                if a == "":
                    start, end = max(0, size - int(b)), size
                else:
                    start, end = int(a), size if b == "" else min(size, int(b) + 1)
                if start >= size or start >= end:
                    self._send(416, b"", {"Content-Range": f"bytes */{size}", "ETag": etag})
                    return
                status = 206
        n = end - start
        self.send_response(status)
        self.send_header("ETag", etag)
        self.send_header("X-Repo-Commit", SHA)
        self.send_header("Accept-Ranges", "none" if st.ignore_range else "bytes")
        send_n = n
        if status == 206:
            first, total = start, size
            if st.lie == "start":
                first = start + 1
            if st.lie == "total":
                total = size + 1000
            self.send_header("Content-Range", f"bytes {first}-{first + n - 1}/{total}")
        if st.lie == "length":
            self.send_header("Content-Length", str(n + 5))
        else:
            self.send_header("Content-Length", str(n))
        if st.lie == "short":
            send_n = n // 2
            self.close_connection = True
        self.end_headers()
        with st.lock:
            st.log.append((self.path, rng, status))
        with open(real, "rb") as fh:
            fh.seek(start)
            left = send_n
            while left > 0:
                chunk = fh.read(min(left, 1 << 20)) if self.command != "HEAD" else b""
                if not chunk:
                    break
                self._write(chunk)
                left -= len(chunk)
        if st.lie in ("short", "length"):
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: ServerState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up mid-body is what several tests do on purpose


def save_tiny_llama(folder: Path) -> Any:
    """A 4-layer GQA Llama (transformers, seed 0) written by `save_pretrained` in 150 KB shards; returns the model."""
    import torch
    import transformers

    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        hidden_size=64,
        intermediate_size=160,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=1000,
    )
    model = transformers.LlamaForCausalLM(cfg)
    model.save_pretrained(folder, max_shard_size="150KB")
    return model


@contextlib.contextmanager
def serve(root: Path, **options: object) -> Iterator[tuple[str, ServerState]]:
    """Serve `root` on 127.0.0.1 (a free port) in a thread; yields (base URL, state)."""
    state = ServerState(root=root, **options)  # type: ignore[arg-type]
    server = _Server(state)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- the server is an oracle, so check it against urllib ---------------------------------------------------


def _get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_server_ranges_match_the_file(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40
    (tmp_path / "f.bin").write_bytes(data)
    with serve(tmp_path) as (base, st):
        url = f"{base}/files/f.bin"
        assert _get(url, {})[2] == data
        for rng, want in (("bytes=0-9", data[:10]), ("bytes=100-", data[100:]), ("bytes=-7", data[-7:])):
            status, headers, body = _get(url, {"Range": rng})
            assert status == 206 and body == want
            assert headers["Content-Range"].endswith(f"/{len(data)}")
        status, headers, _ = _get(url, {"Range": f"bytes={len(data)}-"})
        assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}"
        etag = _get(url, {"Range": "bytes=0-0"})[1]["ETag"]
        assert _get(url, {"If-None-Match": etag})[0] == 304
        assert st.bytes_sent == len(data) + 10 + (len(data) - 100) + 7 + 1


def test_server_faults(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"x" * 1000)
    with serve(tmp_path, ignore_range=True) as (base, _st):
        status, _, body = _get(f"{base}/files/f.bin", {"Range": "bytes=0-9"})
        assert status == 200 and len(body) == 1000
    with serve(tmp_path, token="tok") as (base, _st):
        assert _get(f"{base}/files/f.bin", {})[0] == 401
        assert _get(f"{base}/files/f.bin", {"Authorization": "Bearer nope"})[0] == 403
        assert _get(f"{base}/files/f.bin", {"Authorization": "Bearer tok"})[0] == 200


# -- sparse checkpoints with real layouts (tests and benchmarks/bench_remote.py) ---------------------------

_ST_DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}


def llama_tensors(
    hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int, vocab: int, dtype: str = "F16"
) -> list[tuple[str, str, list[int]]]:
    """The tensors of a HF `LlamaForCausalLM` checkpoint, in `state_dict` order (names as save_pretrained)."""
    kv = hidden // heads * kv_heads
    out = [("model.embed_tokens.weight", dtype, [vocab, hidden])]
    for i in range(layers):
        p = f"model.layers.{i}."
        out += [
            (p + "self_attn.q_proj.weight", dtype, [hidden, hidden]),
            (p + "self_attn.k_proj.weight", dtype, [kv, hidden]),
            (p + "self_attn.v_proj.weight", dtype, [kv, hidden]),
            (p + "self_attn.o_proj.weight", dtype, [hidden, hidden]),
            (p + "mlp.gate_proj.weight", dtype, [intermediate, hidden]),
            (p + "mlp.up_proj.weight", dtype, [intermediate, hidden]),
            (p + "mlp.down_proj.weight", dtype, [hidden, intermediate]),
            (p + "input_layernorm.weight", dtype, [hidden]),
            (p + "post_attention_layernorm.weight", dtype, [hidden]),
        ]
    out += [("model.norm.weight", dtype, [hidden]), ("lm_head.weight", dtype, [vocab, hidden])]
    return out


def _nbytes(dtype: str, shape: list[int]) -> int:
    n = _ST_DTYPE_BYTES[dtype]
    for d in shape:
        n *= d
    return n


def write_sparse_safetensors(path: Path, tensors: list[tuple[str, str, list[int]]]) -> int:
    """A safetensors file laid out as the reference writer does (JSON header padded with spaces to 8 bytes,
    tensors back to back), its data left as a hole (`truncate`): real header, no disk. Returns the size."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape in tensors:
        n = _nbytes(dtype, shape)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as fh:
        fh.write(len(raw).to_bytes(8, "little"))
        fh.write(raw)
        fh.truncate(8 + len(raw) + offset)
    return 8 + len(raw) + offset


def write_sparse_sharded(folder: Path, tensors: list[tuple[str, str, list[int]]], shards: int) -> int:
    """`model-0000i-of-0000N.safetensors` + `model.safetensors.index.json` as save_pretrained splits them
    (greedy, in state_dict order), with exactly `shards` files. Returns the total tensor bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    total = sum(_nbytes(d, s) for _, d, s in tensors)
    limit = total // shards

    def split(limit: int) -> list[list[tuple[str, str, list[int]]]]:
        groups: list[list[tuple[str, str, list[int]]]] = [[]]
        size = 0
        for t in tensors:
            n = _nbytes(t[1], t[2])
            if groups[-1] and size + n > limit:
                groups.append([])
                size = 0
            groups[-1].append(t)
            size += n
        return groups

    groups = split(limit)
    while len(groups) > shards:
        limit += max(1, total // (shards * 200))
        groups = split(limit)
    weight_map = {}
    for i, group in enumerate(groups, 1):
        name = f"model-{i:05d}-of-{len(groups):05d}.safetensors"
        write_sparse_safetensors(folder / name, group)
        weight_map.update({t[0]: name for t in group})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return total
