"""An unreachable server fails fast, and a slow one says on stderr what is being waited for.

Connection refused (a closed loopback port) is not mended by waiting: one quick retry, then one error line and
exit 2, well under 2 s with the default retry settings (it used to be 7.7 s of silence: four backoffs).
Errors that waiting may mend (5xx, timeouts) keep their backoff, and each wait is announced when stderr is a
terminal (forced here with `progress=True`, as `MI_PROGRESS=1` does).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelscope_inspect.errors import RemoteError
from modelscope_inspect.remote import http
from modelscope_inspect.remote.http import HttpClient, Settings, Stats
from tests.conftest import run_cli, run_mi_process
from tests.test_remote_server import serve


def closed_port() -> int:
    with socket.socket() as s:  # bound, never listening, then closed: nobody answers there
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused_fails_fast_with_one_line() -> None:
    url = f"http://127.0.0.1:{closed_port()}/model.safetensors"
    started = time.perf_counter()
    r = run_cli("inspect", url, env={"MI_REMOTE_RETRIES": "", "MI_REMOTE_BACKOFF": "", "MI_PROGRESS": ""})
    elapsed = time.perf_counter() - started
    assert r.code == 2, r.stderr
    assert elapsed < 2.0, elapsed
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the server" in lines[0] and "refused" in lines[0], r.stderr
    assert url in lines[0]


def test_connection_refused_as_a_process() -> None:
    for args in (["inspect"], ["memory"], ["params", "--config"]):
        url = f"http://127.0.0.1:{closed_port()}/m/model.safetensors"
        p = run_mi_process(*args, url, env={"MI_PROGRESS": ""})
        assert p.returncode == 2, (args, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1 and "refused" in p.stderr, (args, p.stderr)
        assert p.stdout == ""


def test_connection_refused_is_retried_once() -> None:
    stats = Stats()
    client = HttpClient(Settings.from_env(env={}), stats)
    try:
        with pytest.raises(RemoteError, match="refused"):
            client.get(f"http://127.0.0.1:{closed_port()}/x", {}, "open")
    finally:
        client.close()
    assert (stats.requests, stats.retries) == (2, 1)


def test_retries_that_wait_say_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.bin").write_bytes(b"x" * 10)  # served as /files/a.bin
    for progress, told in ((True, True), (False, False), (None, False)):  # None: stderr is no terminal here
        with serve(tmp_path, fail=1) as (base, _st):
            client = HttpClient(Settings.from_env(env={}, backoff=0.7, progress=progress))
            try:
                resp = client.get(f"{base}/files/a.bin", {}, "open")
                assert resp.status == 200
                resp.finish()
            finally:
                client.close()
        err = capsys.readouterr().err
        if told:
            assert "HTTP 503; retry 1 of 4 in" in err and "127.0.0.1:" in err, err
        else:
            assert err == ""


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield int(srv.getsockname()[1])
    finally:
        stop.set()
        t.join(timeout=5)
        for c in held:
            c.close()
        srv.close()


def test_a_slow_server_is_announced(
    silent_server: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(http, "NOTICE_AFTER", 0.2)
    client = HttpClient(Settings.from_env(env={}, timeout=0.6, retries=0, progress=True))
    try:
        with pytest.raises(RemoteError, match=r"timed out after 0\.6 s"):
            client.get(f"http://127.0.0.1:{silent_server}/x", {}, "open")
    finally:
        client.close()
    err = capsys.readouterr().err
    assert f"127.0.0.1:{silent_server}: waiting for the server (timeout 0.6 s" in err, err
