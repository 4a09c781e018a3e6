"""`ms://ORG/NAME[@REV][/PATH]` against a loopback server speaking ModelScope's API (the shape of the `modelscope`
SDK's `HubApi.get_model_files` / file download calls): listing `/api/v1/models/ORG/NAME/repo/files?Revision=…
&Recursive=True`, files `/api/v1/models/ORG/NAME/repo?Revision=…&FilePath=…` with Range support.

Oracles as for hf://: the local inspection of the same files, and the server's own count of body bytes sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from modelscope_inspect.remote.hub import parse_ms_url
from tests.conftest import run_cli
from tests.test_remote_server import ServerState, _Handler, _Server, save_tiny_llama

COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
TOKEN = "ms-secretTOKEN456"


class _MsHandler(_Handler):
    def _route(self, st: ServerState) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path).strip("/").split("/")
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if st.fail > 0:
            with st.lock:
                st.fail -= 1
            self._send(503, b"busy", {"Retry-After": "0"})
            return
        if st.token is not None:
            auth = self.headers.get("Authorization")
            if auth is None:
                self._send(401, b'{"Code": 401, "Success": false}')
                return
            if auth != f"Bearer {st.token}":
                self._send(403, b'{"Code": 403, "Success": false}')
                return
        if len(path) == 7 and path[:3] == ["api", "v1", "models"] and path[5:] == ["repo", "files"]:
            self._list(st, path[3], path[4], query)
            return
        if len(path) != 6 or path[:3] != ["api", "v1", "models"] or path[5] != "repo":
            self._send(404, b"not found")
            return
        repo = st.root / path[3] / path[4]
        rev, name = query.get("Revision", "master"), query.get("FilePath", "")
        if not repo.is_dir() or rev not in ("master", COMMIT) or not name or ".." in name.split("/"):
            self._send(404, b'{"Code": 404, "Success": false}')
            return
        self._file(st, repo / name)

    def _list(self, st: ServerState, org: str, name: str, query: dict[str, str]) -> None:
        repo = st.root / org / name
        if not repo.is_dir():
            self._send(404, b'{"Code": 10010205001, "Message": "model not found", "Success": false}')
            return
        if query.get("Revision", "master") not in ("master", COMMIT):
            self._send(200, b'{"Code": 10010205002, "Message": "revision not found", "Success": false}')
            return
        files: list[dict[str, Any]] = []
        for p in sorted(repo.rglob("*")):
            rel = str(p.relative_to(repo))
            kind = "tree" if p.is_dir() else "blob"
            files.append({"Name": p.name, "Path": rel, "Type": kind, "Size": p.stat().st_size if kind == "blob"
                          else 0, "Revision": COMMIT})  # fmt: skip
        body = json.dumps({"Code": 200, "Data": {"Files": files}, "Success": True}).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        self._send(200, body, {"ETag": etag, "Content-Type": "application/json"})


class _MsServer(_Server):
    def __init__(self, state: ServerState) -> None:
        super(_Server, self).__init__(("127.0.0.1", 0), _MsHandler)
        self.state = state


@contextlib.contextmanager
def serve_ms(root: Path, **options: Any) -> Iterator[tuple[str, ServerState]]:
    state = ServerState(root=root, **options)
    server = _MsServer(state)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("ms")
    save_tiny_llama(root / "qwen" / "sharded")
    (root / "qwen" / "nested" / "sub").mkdir(parents=True)
    shutil.copy(Path("fixtures/tiny_seed.safetensors"), root / "qwen" / "nested" / "sub" / "model.safetensors")
    return root


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MI_REMOTE_BACKOFF", "0.01")
    monkeypatch.setenv("MI_REMOTE_TIMEOUT", "10")
    for var in ("HF_TOKEN", "MODELSCOPE_API_TOKEN", "MI_MS_ENDPOINT", "MODELSCOPE_DOMAIN", "MI_PROGRESS"):
        monkeypatch.delenv(var, raising=False)


def _json(*args: str, **env: str) -> dict[str, Any]:
    r = run_cli(*args, env=env)
    assert r.code == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def test_ms_repo_matches_local_inspection_and_counts_bytes(hub: Path) -> None:
    local = _json("inspect", "--json", str(hub / "qwen" / "sharded"))
    with serve_ms(hub) as (base, st):
        remote = _json("inspect", "--json", "ms://qwen/sharded", MI_MS_ENDPOINT=base)
        assert remote["bytes_read"] == st.bytes_sent  # every body byte the server sent, nothing else
        listing = [p for p, _r, _s in st.log if "/repo/files" in p]
        assert listing and "Revision=master" in listing[0] and "Recursive=True" in listing[0]
        assert all(f"Revision={COMMIT}" in p for p, _r, _s in st.log if "FilePath=" in p)  # pinned per file
    remote.pop("bytes_read")
    assert remote.pop("path") == "ms://qwen/sharded"
    local.pop("path")
    assert remote == local
    size = sum(p.stat().st_size for p in (hub / "qwen" / "sharded").glob("*.safetensors"))
    assert st.bytes_sent < size  # header ranges, not the weights


def test_ms_subpath_revision_endpoint_flag_and_single_file(hub: Path) -> None:
    with serve_ms(hub) as (base, _st):
        a = _json("inspect", "--json", f"ms://qwen/nested@{COMMIT}/sub", "--endpoint", base)
        b = _json("inspect", "--json", "ms://qwen/nested/sub/model.safetensors", MI_MS_ENDPOINT=base)
        c = _json("check", "--json", "--no-config", "--max-params", "1G", "ms://qwen/nested/sub",
                  MI_MS_ENDPOINT=base)  # fmt: skip
        d = _json("params", "--json", "--config", "ms://qwen/sharded", MI_MS_ENDPOINT=base)
    local = _json("inspect", "--json", "fixtures/tiny_seed.safetensors")
    assert a["total_params"] == b["total_params"] == local["total_params"]
    assert c["passed"] is True
    assert d["total_params"] > 0


def test_ms_token_from_env_and_errors(hub: Path) -> None:
    with serve_ms(hub, token=TOKEN) as (base, st):
        ok = _json("inspect", "--json", "ms://qwen/sharded", MI_MS_ENDPOINT=base, MODELSCOPE_API_TOKEN=TOKEN)
        assert ok["total_params"] > 0 and f"Bearer {TOKEN}" in st.auth_seen
        r = run_cli("inspect", "ms://qwen/sharded", env={"MI_MS_ENDPOINT": base})
        assert r.code == 2 and "401" in r.stderr and "MODELSCOPE_API_TOKEN" in r.stderr
        r = run_cli("inspect", "ms://qwen/sharded", env={"MI_MS_ENDPOINT": base, "MODELSCOPE_API_TOKEN": "bad"})
        assert r.code == 2 and "403" in r.stderr and "bad" not in r.stderr
    with serve_ms(hub) as (base, _st):
        for url, words in (("ms://qwen/missing", "404"), ("ms://qwen/sharded@v9", "revision not found"),
                           ("ms://qwen/sharded/nope.safetensors", "no file or folder")):  # fmt: skip
            r = run_cli("inspect", url, env={"MI_MS_ENDPOINT": base})
            assert r.code == 2 and words in r.stderr, r.stderr
            assert len(r.stderr.strip().splitlines()) == 1


def test_ms_scan_walks_the_repo(hub: Path) -> None:
    with serve_ms(hub) as (base, _st):
        r = run_cli("scan", "ms://qwen/nested", env={"MI_MS_ENDPOINT": base})
    assert r.code == 0, r.stderr
    assert "model.safetensors" in r.stdout


def test_ms_url_parsing() -> None:
    assert parse_ms_url("ms://Qwen/Qwen2-0.5B").revision == "master"
    ref = parse_ms_url("ms://Qwen/Qwen2-0.5B@v1.0/sub/model.safetensors")
    assert (ref.repo, ref.revision, ref.path) == ("Qwen/Qwen2-0.5B", "v1.0", "sub/model.safetensors")
    for bad in ("ms://onlyorg", "ms://a/b/../c", "ms://../x/y"):
        r = run_cli("inspect", bad)
        assert r.code == 2 and "ms://" in r.stderr, r.stderr
