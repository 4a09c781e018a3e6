"""Remote inspection against a real HTTP server on 127.0.0.1 (tests/test_remote_server.py).

Oracles: the local inspection of the very same files (`mi inspect --json` must agree except `path` and
`bytes_read`), the server's own count of body bytes sent (`bytes_read` must equal it), files written by
transformers / torch / safetensors, and the safetensors library opening our sparse real-layout files.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from modelscope_inspect.api import is_url
from modelscope_inspect.api import open_model as load_url
from modelscope_inspect.errors import AccessDeniedError, InspectError, MalformedFileError, NotFoundError, RemoteError
from modelscope_inspect.remote.http import Settings, display_url
from modelscope_inspect.remote.hub import parse_hf_url
from tests.conftest import run_cli
from tests.test_remote_server import SHA, llama_tensors, save_tiny_llama, serve, write_sparse_safetensors

TOKEN = "hf_secretTOKEN123"


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub-style tree of real files: `org/sharded` (transformers save_pretrained, 5 safetensors shards +
    index + config), `org/bin` (torch.save'd pytorch_model.bin + config), `org/big` (a 700 MB sparse
    safetensors file whose header is a real Llama-2-7B layer layout), `org/flat` (two shards, no index)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("hub")
    model = save_tiny_llama(root / "org" / "sharded")
    (root / "org" / "bin").mkdir(parents=True)
    torch.save(model.state_dict(), root / "org" / "bin" / "pytorch_model.bin")
    shutil.copy(root / "org" / "sharded" / "config.json", root / "org" / "bin" / "config.json")
    (root / "org" / "big").mkdir(parents=True)
    layer = llama_tensors(4096, 11008, 1, 32, 32, 32000)
    write_sparse_safetensors(root / "org" / "big" / "model.safetensors", layer)
    flat = root / "org" / "flat"
    flat.mkdir(parents=True)
    from safetensors.torch import save_file

    sd = model.state_dict()
    names = list(sd)
    save_file({k: sd[k].contiguous() for k in names[:10]}, flat / "part-a.safetensors")
    save_file({k: sd[k].contiguous() for k in names[10:]}, flat / "part-b.safetensors")
    return root


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MI_REMOTE_BACKOFF", "0.01")
    monkeypatch.setenv("MI_REMOTE_TIMEOUT", "10")
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "MI_HF_ENDPOINT", "MI_PROGRESS", "MI_NO_CACHE"):
        monkeypatch.delenv(var, raising=False)


def inspect_json(target: str, **env: str) -> dict[str, Any]:
    r = run_cli("inspect", "--json", target, env=env)
    assert r.code == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def same_as_local(remote: dict[str, Any], local: dict[str, Any]) -> None:
    remote, local = dict(remote), dict(local)
    assert "bytes_read" not in local
    remote.pop("bytes_read")
    remote.pop("path")
    local.pop("path")
    assert remote == local


# -- identical results, small reads ------------------------------------------------------------------------


@pytest.mark.parametrize("repo", ["sharded", "bin", "big", "flat"])
def test_hub_repo_matches_local_inspection(hub: Path, repo: str) -> None:
    local = inspect_json(str(hub / "org" / repo))
    with serve(hub) as (base, st):
        remote = inspect_json(f"hf://org/{repo}", MI_HF_ENDPOINT=base)
        # bytes_read is what the server really sent: every body byte counted, nothing invented.
        assert remote["bytes_read"] == st.bytes_sent
    same_as_local(remote, local)
    assert remote["total_params"] > 0


def test_sharded_repo_reads_index_config_and_each_shard_once(hub: Path) -> None:
    shards = sorted(p.name for p in (hub / "org" / "sharded").glob("model-*.safetensors"))
    assert len(shards) >= 3, shards  # the fixture must really be sharded
    with serve(hub) as (base, st):
        inv = load_url("hf://org/sharded", settings=Settings.from_env(endpoint=base))
        ranged = [(p, r) for p, r, status in st.log if status == 206]
    # One range request per shard (the first 64 KiB hold the 8-byte length and the whole header here).
    for shard in shards:
        assert sum(1 for p, _ in ranged if p.endswith(shard)) == 1
    assert inv.files[0].path == "model.safetensors.index.json"
    assert sorted(f.path for f in inv.files[1:]) == shards  # in the index's order, like the local reader


def test_big_safetensors_reads_under_one_percent_in_at_most_two_ranges(hub: Path) -> None:
    big = hub / "org" / "big" / "model.safetensors"
    size = big.stat().st_size
    assert size > 600_000_000
    from safetensors import safe_open

    with safe_open(str(big), "pt") as f:  # the reference reader accepts our sparse file
        keys = set(f.keys())
    with serve(hub) as (base, st):
        inv = load_url(f"{base}/files/org/big/model.safetensors")
        ranges = [r for p, r, s in st.log if p.endswith("model.safetensors")]
    assert {t.name for t in inv.tensors} == keys
    assert len(ranges) <= 2
    assert inv.read.bytes_read == st.bytes_sent
    assert inv.read.bytes_read <= size // 100, (inv.read.bytes_read, size)


@pytest.mark.slow
def test_big_torch_bin_reads_under_one_percent(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    folder = tmp_path / "m"
    folder.mkdir(parents=True)
    # A real torch.save zip of 256 MB: data.pkl, 65 storages, the central directory at the end.
    sd = {f"layers.{i}.weight": torch.zeros(1024, 1024) for i in range(64)}
    sd["head.weight"] = torch.zeros(16)
    torch.save(sd, folder / "pytorch_model.bin")
    size = (folder / "pytorch_model.bin").stat().st_size
    local = inspect_json(str(folder / "pytorch_model.bin"))
    with serve(tmp_path) as (base, st):
        remote = inspect_json(f"{base}/files/m/pytorch_model.bin")
    assert remote["bytes_read"] == st.bytes_sent
    assert remote["bytes_read"] <= size // 100, (remote["bytes_read"], size)
    same_as_local(remote, local)


def test_plain_http_file_index_and_folder(hub: Path) -> None:
    local = inspect_json(str(hub / "org" / "sharded"))
    local_index = inspect_json(str(hub / "org" / "sharded" / "model.safetensors.index.json"))
    with serve(hub, redirect=False) as (base, _st):
        same_as_local(inspect_json(f"{base}/files/org/sharded/"), local)
        same_as_local(inspect_json(f"{base}/files/org/sharded/model.safetensors.index.json"), local_index)
        one = sorted((hub / "org" / "sharded").glob("model-*.safetensors"))[0]
        same_as_local(inspect_json(f"{base}/files/org/sharded/{one.name}"), inspect_json(str(one)))
        # A plain folder cannot be listed: without the transformers names there is nothing to probe.
        r = run_cli("inspect", f"{base}/files/org/flat/")
        assert r.code == 2 and "cannot be listed" in r.stderr


def test_hub_subpath_and_revision(hub: Path) -> None:
    local = inspect_json(str(hub / "org" / "bin" / "pytorch_model.bin"))
    with serve(hub) as (base, _st):
        same_as_local(inspect_json(f"hf://org/bin@{SHA}/pytorch_model.bin", MI_HF_ENDPOINT=base), local)
        r = run_cli("inspect", "hf://org/bin@nope", env={"MI_HF_ENDPOINT": base})
        assert r.code == 2 and "RevisionNotFound" in r.stderr and "404" in r.stderr


def test_second_run_reads_nothing(hub: Path) -> None:
    with serve(hub) as (base, st):
        first = inspect_json("hf://org/sharded", MI_HF_ENDPOINT=base)
        sent, seen = st.bytes_sent, len(st.log)
        second = inspect_json("hf://org/sharded", MI_HF_ENDPOINT=base)
        assert st.bytes_sent == sent  # the server sent no body bytes the second time
        second_run = [status for _, _, status in st.log[seen:]]
        # A plain-HTTP URL can change: every cached file is revalidated (If-None-Match → 304, no body).
        third = inspect_json(f"{base}/files/org/sharded/model.safetensors.index.json")
        fourth_seen = len(st.log)
        fourth = inspect_json(f"{base}/files/org/sharded/model.safetensors.index.json")
        fourth_run = [status for _, _, status in st.log[fourth_seen:]]
    assert first["bytes_read"] > 0 and second["bytes_read"] == 0
    # Only the listing is asked again (the branch may have moved); files pinned to the commit are not.
    assert second_run == [304]
    assert third["bytes_read"] > 0 and fourth["bytes_read"] == 0
    assert fourth_run and set(fourth_run) == {304}
    first.pop("bytes_read")
    second.pop("bytes_read")
    assert first == second


def test_changed_file_invalidates_the_cache(tmp_path: Path, hub: Path) -> None:
    shutil.copytree(hub / "org" / "bin", tmp_path / "m")
    target = "files/m/pytorch_model.bin"
    with serve(tmp_path) as (base, _st):
        inspect_json(f"{base}/{target}")
        one = sorted((hub / "org" / "sharded").glob("model-*.safetensors"))[0]
        shutil.copy(one, tmp_path / "m" / "pytorch_model.bin")  # same URL, new bytes, new ETag
        doc = inspect_json(f"{base}/{target}")
    assert doc["format"] == "safetensors" and doc["bytes_read"] > 0


# -- servers that do not play by the rules -----------------------------------------------------------------


def test_server_ignoring_range_is_streamed_not_buffered(hub: Path) -> None:
    local = inspect_json(str(hub / "org" / "big"))
    with serve(hub, ignore_range=True) as (base, _st):
        tracemalloc.start()
        try:
            inv = load_url(f"{base}/files/org/big/model.safetensors")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        remote = inspect_json(f"{base}/files/org/big/model.safetensors")
    size = (hub / "org" / "big" / "model.safetensors").stat().st_size
    assert inv.total_params == local["total_params"]
    assert peak < 16 << 20, peak  # a 700 MB body was never held
    assert inv.read.bytes_read < size // 100
    local_file = inspect_json(str(hub / "org" / "big" / "model.safetensors"))
    same_as_local(remote, local_file)


def test_server_ignoring_range_zip_tail_is_streamed(hub: Path) -> None:
    # The zip central directory is at the end: reaching it means streaming the body through, chunk by chunk.
    local = inspect_json(str(hub / "org" / "bin" / "pytorch_model.bin"))
    with serve(hub, ignore_range=True) as (base, _st):
        same_as_local(inspect_json(f"{base}/files/org/bin/pytorch_model.bin"), local)
        r = run_cli(
            "inspect",
            f"{base}/files/org/bin/pytorch_model.bin",
            env={"MI_REMOTE_MAX_STREAM": "100000", "MI_NO_CACHE": "1"},
        )
    assert r.code == 2
    assert "ignores Range" in r.stderr and "MI_REMOTE_MAX_STREAM" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("lie", "rule"),
    [("start", "http-range"), ("total", "http-range"), ("short", "http-short-body"), ("length", "http-range")],
)
def test_lying_server_gives_a_clear_error(hub: Path, lie: str, rule: str) -> None:
    # A wrong total in the first answer is only visible once a read goes past the real end: the zip's
    # end record is there, so the torch file shows it; the other lies show on the first range.
    name = "bin/pytorch_model.bin" if lie == "total" else "big/model.safetensors"
    with serve(hub, lie=lie) as (base, _st):
        url = f"{base}/files/org/{name}"
        started = time.monotonic()
        with pytest.raises(InspectError) as err:
            load_url(url)
        r = run_cli("inspect", url)
    assert time.monotonic() - started < 20
    assert err.value.rule == rule, str(err.value)
    assert r.code == 2 and url in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_retries_on_503_then_succeeds(hub: Path) -> None:
    with serve(hub, fail=3) as (base, st):
        inv = load_url("hf://org/bin", settings=Settings.from_env(endpoint=base))
        assert st.fail == 0
    assert inv.read.retries == 3


def test_persistent_503_fails_after_bounded_attempts(hub: Path) -> None:
    with serve(hub, fail=1000) as (base, st):
        started = time.monotonic()
        r = run_cli("inspect", "hf://org/bin", env={"MI_HF_ENDPOINT": base, "MI_REMOTE_RETRIES": "2"})
        assert st.requests == 3
    assert time.monotonic() - started < 10
    assert r.code == 2 and "HTTP 503" in r.stderr and "after 3 attempts" in r.stderr


def test_not_found_messages_name_the_url(hub: Path) -> None:
    with serve(hub) as (base, _st):
        r = run_cli("inspect", "hf://org/missing", env={"MI_HF_ENDPOINT": base})
        assert r.code == 2 and "HTTP 404" in r.stderr and "RepoNotFound" in r.stderr
        assert f"{base}/api/models/org/missing/revision/main" in r.stderr
        r = run_cli("inspect", f"{base}/files/org/bin/nothing.safetensors")
        assert r.code == 2 and f"{base}/files/org/bin/nothing.safetensors" in r.stderr and "404" in r.stderr
        r = run_cli("inspect", "hf://org/bin/nothing.bin", env={"MI_HF_ENDPOINT": base})
        assert r.code == 2 and "no file or folder 'nothing.bin'" in r.stderr


def test_401_403_and_the_token_is_never_printed(hub: Path) -> None:
    with serve(hub, token=TOKEN) as (base, _st):
        r = run_cli("inspect", "hf://org/bin", env={"MI_HF_ENDPOINT": base})
        assert r.code == 2 and "HTTP 401" in r.stderr and "HF_TOKEN" in r.stderr
        r = run_cli("inspect", "hf://org/bin", env={"MI_HF_ENDPOINT": base, "HF_TOKEN": "hf_wrong_one"})
        assert r.code == 2 and "HTTP 403" in r.stderr and "hf_wrong_one" not in r.stderr + r.stdout
        r = run_cli("inspect", "--json", "hf://org/bin", "--endpoint", base, "--token", TOKEN)
        assert r.code == 0 and TOKEN not in r.stdout + r.stderr
        r = run_cli("inspect", "hf://org/bin", env={"MI_HF_ENDPOINT": base, "HF_TOKEN": TOKEN})
        assert r.code == 0 and TOKEN not in r.stdout + r.stderr


def test_token_is_not_sent_to_another_origin(hub: Path) -> None:
    with serve(hub) as (cdn, cdn_state), serve(hub, token=TOKEN, cdn=cdn) as (base, st):
        inv = load_url("hf://org/bin", settings=Settings.from_env(endpoint=base, token=TOKEN))
        assert set(st.auth_seen) == {f"Bearer {TOKEN}"}  # the hub got it on every request
        assert cdn_state.requests > 0 and set(cdn_state.auth_seen) == {None}  # the CDN never did
        # HF_TOKEN from the environment is for the hub only, not for an arbitrary https server.
        os.environ["HF_TOKEN"] = TOKEN
        try:
            cdn_state.reset_counters()
            load_url(f"{cdn}/files/org/bin/pytorch_model.bin")
            assert set(cdn_state.auth_seen) == {None}
        finally:
            del os.environ["HF_TOKEN"]
    assert inv.total_params > 0


def test_shards_are_fetched_concurrently_but_bounded(tmp_path: Path) -> None:
    tensors = llama_tensors(64, 128, 24, 4, 4, 100)
    from tests.test_remote_server import write_sparse_sharded

    write_sparse_sharded(tmp_path / "org" / "many", tensors, 24)
    (tmp_path / "org" / "many" / "config.json").write_text("{}")
    with serve(tmp_path) as (base, st):
        inv = load_url("hf://org/many", settings=Settings.from_env(endpoint=base, workers=3, cache_dir=None))
    assert len(inv.files) == 25
    assert 1 <= st.peak <= 3


def test_progress_line_for_multi_shard_models(hub: Path) -> None:
    with serve(hub) as (base, _st):
        r = run_cli("inspect", "hf://org/sharded", env={"MI_HF_ENDPOINT": base, "MI_PROGRESS": "1"})
    n = len(list((hub / "org" / "sharded").glob("model-*.safetensors")))
    assert r.code == 0 and f"reading headers {n}/{n} files" in r.stderr
    assert "reading headers" not in r.stdout


def test_index_naming_a_missing_or_escaping_shard(tmp_path: Path, hub: Path) -> None:
    repo = tmp_path / "org" / "bad"
    shutil.copytree(hub / "org" / "sharded", repo)
    index = json.loads((repo / "model.safetensors.index.json").read_text())
    first = next(iter(index["weight_map"]))
    for shard, want in (("../bin/pytorch_model.bin", "not a plain file name"), ("gone.safetensors", "does not exist")):
        index["weight_map"][first] = shard
        (repo / "model.safetensors.index.json").write_text(json.dumps(index))
        with serve(tmp_path) as (base, _st):
            for url in ("hf://org/bad", f"{base}/files/org/bad/model.safetensors.index.json"):
                with pytest.raises(MalformedFileError) as err:
                    load_url(url, settings=Settings.from_env(endpoint=base, cache_dir=None))
                assert err.value.rule == "index-shard" and want in str(err.value)


def test_fsspec_memory_filesystem_matches_local(hub: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    for p in (hub / "org" / "sharded").iterdir():
        fs.pipe(f"/mi-test/sharded/{p.name}", p.read_bytes())
    try:
        local = inspect_json(str(hub / "org" / "sharded"))
        remote = inspect_json("memory://mi-test/sharded")
        same_as_local(remote, local)
        assert 0 < remote["bytes_read"] < sum(p.stat().st_size for p in (hub / "org" / "sharded").iterdir())
    finally:
        fs.rm("/mi-test", recursive=True)


def test_fsspec_config_and_scan_match_local(hub: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    folder = hub / "org" / "sharded"
    for p in folder.iterdir():
        fs.pipe(f"/mi-cfg/sharded/{p.name}", p.read_bytes())
    try:
        for url in ("memory://mi-cfg/sharded", "memory://mi-cfg/sharded/config.json"):
            r = run_cli("params", "--config", url, "--json")
            assert r.code == 0, r.stderr
            assert json.loads(r.stdout) == json.loads(run_cli("params", "--config", str(folder), "--json").stdout)
        r = run_cli("params", "--config", "memory://mi-cfg/nothing")
        assert r.code == 2 and "no such file or directory" in r.stderr and "Traceback" not in r.stderr
        r = run_cli("scan", "memory://mi-cfg/sharded", "--json")
        assert r.code == 0 and len(json.loads(r.stdout)["files"]) >= 2, r.stderr
    finally:
        fs.rm("/mi-cfg", recursive=True)


def test_unknown_scheme_is_a_clear_error() -> None:
    for args in (["inspect"], ["scan"], ["params", "--config"]):
        r = run_cli(*args, "nosuchscheme://bucket/model.safetensors")
        assert r.code == 2 and "nosuchscheme://" in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_connection_refused_is_a_clear_error() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = run_cli("inspect", f"http://127.0.0.1:{port}/m.safetensors", env={"MI_REMOTE_RETRIES": "1"})
    assert r.code == 2 and "cannot reach the server" in r.stderr


def test_text_view_reports_bytes_read(hub: Path) -> None:
    with serve(hub) as (base, _st):
        r = run_cli("inspect", "hf://org/big", env={"MI_HF_ENDPOINT": base})
    assert r.code == 0 and "read" in r.stdout and "requests" in r.stdout and "% of the files" in r.stdout


# -- URL parsing -------------------------------------------------------------------------------------------


def test_is_url_and_hf_url_parsing() -> None:
    assert is_url("hf://a/b") and is_url("https://x/y") and is_url("s3://b/k")
    assert not is_url("model.safetensors") and not is_url("C:\\models\\x") and not is_url("./hf:/x")
    assert parse_hf_url("hf://org/name").revision == "main"
    ref = parse_hf_url("hf://org/name@refs/pr/3/sub/model.safetensors")
    assert (ref.repo, ref.revision, ref.path) == ("org/name", "refs/pr/3", "sub/model.safetensors")
    assert parse_hf_url("hf://org/name@v1.0").revision == "v1.0"
    for bad in ("hf://org", "hf://org/../x", "hf://datasets/org/name", "hf://org/name/../../etc"):
        with pytest.raises(InspectError):
            parse_hf_url(bad)


def test_display_url_redacts_credentials() -> None:
    shown = display_url("https://user:pa55@host/m.safetensors?X-Amz-Signature=abc")
    assert "pa55" not in shown and "abc" not in shown and shown.startswith("https://host/m.safetensors")


def test_errors_are_inspect_errors() -> None:
    assert issubclass(RemoteError, InspectError) and issubclass(AccessDeniedError, RemoteError)
    assert issubclass(NotFoundError, InspectError)


# -- GGUF and ONNX (external data) through the same byte sources -------------------------------------------


@pytest.fixture(scope="session")
def hub_more(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`org/gguf`: a llama GGUF whose header gguf-py wrote (32,000-token vocabulary: 736 KB of metadata) and
    whose 510 MB of tensor data is a hole; `org/onnx`: an onnx-written model with external data."""
    np = pytest.importorskip("numpy")
    gguf = pytest.importorskip("gguf")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    root = tmp_path_factory.mktemp("hub_more")
    (root / "org" / "gguf").mkdir(parents=True)
    w = gguf.GGUFWriter(str(root / "org" / "gguf" / "model.gguf"), "llama")
    w.add_block_count(2)
    w.add_context_length(2048)
    w.add_embedding_length(256)
    w.add_tokenizer_model("llama")
    w.add_token_list([f"token_{i:05d}" for i in range(32000)])
    w.add_token_scores([float(i) for i in range(32000)])
    shapes = [("token_embd.weight", (32000, 4096))]
    for i in range(2):
        shapes += [(f"blk.{i}.attn_q.weight", (4096, 4096)), (f"blk.{i}.ffn_up.weight", (11008, 4096))]
    for name, shape in shapes:
        w.add_tensor_info(name, shape, np.dtype(np.float16), shape[0] * shape[1] * 2)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    # Tensor data starts at the next 32-byte boundary; each tensor is padded to 32 bytes (GGUF alignment).
    path = root / "org" / "gguf" / "model.gguf"
    data = -(-path.stat().st_size // 32) * 32
    with open(path, "r+b") as fh:
        fh.truncate(data + sum(-(-(a * b * 2) // 32) * 32 for _, (a, b) in shapes))
    reader = gguf.GGUFReader(str(path))  # the reference reader accepts the sparse file
    assert len(reader.tensors) == len(shapes)

    folder = root / "org" / "onnx"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((512, 256)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((256, 64)).astype(np.float32), "w2")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("MatMul", ["h", "w2"], ["y"])],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 512])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
        initializer=[w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save_model(
        model,
        str(folder / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx.data",
        size_threshold=0,
    )
    # `org/onnx-inline`: 8 initializers of 4 MiB inside the protobuf: the reader must skip their raw data.
    (root / "org" / "onnx-inline").mkdir(parents=True)
    inits = [numpy_helper.from_array(np.zeros((1024, 1024), np.float32), f"w{i}") for i in range(8)]
    chain = [helper.make_node("MatMul", ["x" if i == 0 else f"h{i - 1}", f"w{i}"], [f"h{i}"]) for i in range(8)]
    graph = helper.make_graph(
        chain,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1024])],
        [helper.make_tensor_value_info("h7", TensorProto.FLOAT, [1, 1024])],
        initializer=inits,
    )
    onnx.save_model(helper.make_model(graph), str(root / "org" / "onnx-inline" / "model.onnx"))
    return root


@pytest.mark.parametrize("name", ["gguf/model.gguf", "onnx/model.onnx", "onnx-inline/model.onnx"])
def test_gguf_and_onnx_match_local_inspection(hub_more: Path, name: str) -> None:
    file = hub_more / "org" / name
    local = inspect_json(str(file))
    with serve(hub_more) as (base, st):
        remote = inspect_json(f"hf://org/{name}", MI_HF_ENDPOINT=base)
        assert remote["bytes_read"] == st.bytes_sent
    if name == "onnx-inline/model.onnx":
        assert remote["bytes_read"] <= file.stat().st_size // 100, (remote["bytes_read"], file.stat().st_size)
    if name == "onnx/model.onnx":
        # The ONNX reader checks external data against the file's size only for local files; remotely it
        # names the location without opening it (a sibling URL is another request, not a model header).
        import re

        ext = local["details"]["external data"]
        assert ext["model.onnx.data"].startswith(f"{(file.parent / 'model.onnx.data').stat().st_size:,} bytes, ")
        for doc in (local, remote):  # keep "N tensors, M tensor bytes", drop the file-size part
            doc["details"]["external data"] = {
                k: re.sub(r"^.*?(\d+ tensors?, )", r"\1", v) for k, v in doc["details"]["external data"].items()
            }
        # …and says so, as it does for any source that is not a local file.
        remote["warnings"].remove("external data files were not checked: the model is not a local file")
        # Locally the data file is measured and listed among the files; remotely it is not fetched at all.
        assert [f["path"] for f in local["files"]] == ["model.onnx", "model.onnx.data"]
        local["files"] = local["files"][:1]
        local["file_bytes"] = local["files"][0]["bytes"]
    same_as_local(remote, local)
    if name.endswith(".gguf"):
        size = file.stat().st_size
        header = 736_530  # what gguf-py wrote before the hole
        assert size > 500_000_000 and file.stat().st_blocks * 512 < 4 * header  # really sparse
        assert remote["bytes_read"] <= size // 100, (remote["bytes_read"], size)
        # Growing ranges (×2 per sequential miss) overshoot the metadata by less than 2×, in few requests.
        assert remote["bytes_read"] < 2 * header + (64 << 10), remote["bytes_read"]


def test_read_config_url(hub: Path) -> None:
    from modelscope_inspect.api import open_config as read_config_url

    want = json.loads((hub / "org" / "sharded" / "config.json").read_text())  # written by transformers
    with serve(hub) as (base, _st):
        settings = Settings.from_env(endpoint=base)
        assert read_config_url("hf://org/sharded", settings=settings) == want
        assert read_config_url(f"{base}/files/org/sharded/", settings=settings) == want
        assert read_config_url(f"{base}/files/org/sharded/config.json", settings=settings) == want
        with pytest.raises(NotFoundError):
            read_config_url("hf://org/big", settings=settings)


# -- the range source against a plain bytes oracle ---------------------------------------------------------


class _MemorySource:
    """`RangeSource` over bytes in memory, recording every fetch."""

    def __new__(cls, data: bytes) -> Any:
        from modelscope_inspect.remote.source import RangeSource

        class Mem(RangeSource):
            def __init__(self) -> None:
                super().__init__("mem", Settings(min_fetch=64, seek_fetch=16, max_readahead=1024))
                self.size = len(data)
                self.fetches: list[tuple[int, int]] = []

            def _fetch(self, start: int, end: int) -> bytes:
                assert 0 <= start < end <= len(data)
                self.fetches.append((start, end))
                return data[start:end]

        return Mem()


def test_range_source_matches_slicing_and_never_refetches() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=300, deadline=None)
    @hypothesis.given(
        size=st.integers(0, 3000),
        reads=st.lists(st.tuples(st.integers(-5, 3100), st.integers(-1, 700)), max_size=30),
    )
    def check(size: int, reads: list[tuple[int, int]]) -> None:
        data = bytes((i * 7 + 3) % 251 for i in range(size))
        src = _MemorySource(data)
        for offset, n in reads:
            want = data[offset : offset + n] if offset >= 0 and n > 0 else b""
            assert src.read_at(offset, n) == want
        covered: set[int] = set()
        for start, end in src.fetches:  # no byte is fetched twice
            span = set(range(start, end))
            assert not covered & span
            covered |= span

    check()


def test_sequential_reads_grow_the_fetch() -> None:
    src = _MemorySource(bytes(10_000))
    for pos in range(0, 4000, 10):
        src.read_at(pos, 10)
    sizes = [e - s for s, e in src.fetches]
    assert sizes[:5] == [16, 128, 256, 512, 1024]  # a seek, then ×2 (from min_fetch) up to max_readahead
    assert len(src.fetches) < 10
