"""Every command that takes a model path or a config also takes a URL (issue 9): scan, check, params, memory, diff.

Oracle: the same command on the very same files on local disk (a real HTTP server on 127.0.0.1 serves them,
tests/test_remote_server.py): the JSON documents must agree except for paths and `bytes_read`, and
`bytes_read` must equal the body bytes the server counted. Files are written by transformers / torch / numpy;
the dangerous pickle is crafted bytes (never loaded).
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.test_remote_server import ServerState, save_tiny_llama, serve

TOKEN = "hf_commandsTOKEN987"
# GLOBAL os.system; "echo"; TUPLE1; REDUCE; STOP: what an exploit pickle does. Crafted, never unpickled.
EVIL = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00echoq\x01\x85q\x02Rq\x03."


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`org/llama`: transformers save_pretrained (3+ safetensors shards, index, config.json,
    generation_config.json) plus a torch.save'd pytorch_model.bin and a README; `org/evil`: an exploit
    pickle, a pickle without extension and a text file; `org/big`: a 16 MiB legacy torch file, torch zip and
    numeric .npy (scan must not read their tensor data)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    np = pytest.importorskip("numpy")
    root = tmp_path_factory.mktemp("remote_commands")
    llama = root / "org" / "llama"
    model = save_tiny_llama(llama)
    assert len(list(llama.glob("model-*.safetensors"))) >= 3
    torch.save(model.state_dict(), llama / "pytorch_model.bin")
    (llama / "README.md").write_text("# a tiny llama\n")
    evil = root / "org" / "evil"
    evil.mkdir(parents=True)
    (evil / "model.pkl").write_bytes(EVIL)
    (evil / "weights").write_bytes(pickle.dumps({"a": 1}, protocol=2) + EVIL)
    (evil / "notes.txt").write_text("nothing to see\n")
    big = root / "org" / "big"
    big.mkdir(parents=True)
    t = torch.zeros(4 << 20)  # 16 MiB of float32
    torch.save({"w": t}, big / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.save({"w": t}, big / "zip.pth")
    np.save(big / "array.npy", np.zeros(4 << 20, np.float32))
    return root


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MI_REMOTE_BACKOFF", "0.01")
    monkeypatch.setenv("MI_REMOTE_TIMEOUT", "10")
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "MI_HF_ENDPOINT", "MI_PROGRESS", "MI_NO_CACHE"):
        monkeypatch.delenv(var, raising=False)


def mi_json(*args: str, code: int = 0, **env: str) -> dict[str, Any]:
    r = run_cli(*args, "--json", env=env)
    assert r.code == code, (r.code, r.stderr)
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def sent(st: ServerState) -> int:
    """The server's count of body bytes once its handlers are done (it counts after each write)."""
    deadline = time.monotonic() + 5
    while st.inflight and time.monotonic() < deadline:
        time.sleep(0.01)
    return st.bytes_sent


def one_line_error(args: list[str], want: str, env: dict[str, str] | None = None) -> str:
    r = run_cli(*args, env=env)
    assert r.code == 2, (r.code, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and want in lines[0] and "Traceback" not in r.stderr, r.stderr
    return lines[0]


# -- mi scan ---------------------------------------------------------------------------------------------


def _scan_files(doc: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """The per-file reports with `path` made relative to `prefix` (a folder path or URL)."""
    out = []
    for f in doc["files"]:
        f = dict(f)
        assert f["path"].startswith(prefix), (f["path"], prefix)
        f["path"] = f["path"][len(prefix) :].lstrip("/")
        out.append(f)
    return out


@pytest.mark.parametrize("repo", ["llama", "evil", "big"])
def test_scan_hub_folder_matches_local(tree: Path, repo: str) -> None:
    folder = tree / "org" / repo
    code = 1 if repo == "evil" else 0
    local = mi_json("scan", str(folder), code=code)
    with serve(tree) as (base, st):
        remote = mi_json("scan", f"hf://org/{repo}", "--endpoint", base, code=code)
        assert remote["bytes_read"] == sent(st)  # what the server really sent
    assert "bytes_read" not in local
    assert _scan_files(remote, f"hf://org/{repo}") == _scan_files(local, str(folder))
    for key in ("status", "exit_code", "skipped"):
        assert remote[key] == local[key], key
    assert remote["path"] == f"hf://org/{repo}"
    if repo == "evil":
        by_path = {f["path"]: f for f in _scan_files(remote, "hf://org/evil")}
        assert set(by_path) == {"model.pkl", "weights"} and remote["skipped"] == 1  # notes.txt
        assert "os.system" in by_path["model.pkl"]["globals"] and by_path["weights"]["status"] == "dangerous"
    if repo == "llama":
        names = {f["path"] for f in _scan_files(remote, "hf://org/llama")}
        assert "pytorch_model.bin" in names and sum(n.endswith(".safetensors") for n in names) >= 3


def test_scan_single_files_and_plain_http(tree: Path) -> None:
    llama = tree / "org" / "llama"
    local_bin = mi_json("scan", str(llama / "pytorch_model.bin"))
    local_evil = mi_json("scan", str(tree / "org" / "evil" / "model.pkl"), code=1)
    local_folder = mi_json("scan", str(llama))
    with serve(tree, redirect=False) as (base, _st):
        for url in ("hf://org/llama/pytorch_model.bin", f"{base}/files/org/llama/pytorch_model.bin"):
            remote = mi_json("scan", url, MI_HF_ENDPOINT=base)
            assert _scan_files(remote, url) == _scan_files(local_bin, str(llama / "pytorch_model.bin"))
        url = f"{base}/files/org/evil/model.pkl"
        remote = mi_json("scan", url, code=1)
        assert _scan_files(remote, url) == _scan_files(local_evil, str(tree / "org" / "evil" / "model.pkl"))
        # A plain HTTP folder cannot be listed: the transformers names are probed, the index's shards added.
        remote = mi_json("scan", f"{base}/files/org/llama/")
        assert _scan_files(remote, f"{base}/files/org/llama") == _scan_files(local_folder, str(llama))
        assert remote["notes"] and "cannot be listed" in remote["notes"][0]
        r = run_cli("scan", f"{base}/files/org/llama/")
        assert (
            r.code == 0 and "note: a plain HTTP folder cannot be listed" in r.stdout and "over the network" in r.stdout
        )


@pytest.mark.parametrize("workers", ["1", "3"])
def test_scan_reads_files_concurrently_but_bounded(tree: Path, workers: str) -> None:
    local = mi_json("scan", str(tree / "org" / "llama"))
    with serve(tree) as (base, st):
        remote = mi_json("scan", "hf://org/llama", "--endpoint", base, MI_REMOTE_WORKERS=workers)
        assert 1 <= st.peak <= int(workers), st.peak
    assert _scan_files(remote, "hf://org/llama") == _scan_files(local, str(tree / "org" / "llama"))  # same order


@pytest.mark.parametrize("name", ["legacy.pt", "zip.pth", "array.npy"])
def test_scan_reads_pickles_not_tensor_data(tree: Path, name: str) -> None:
    file = tree / "org" / "big" / name
    size = file.stat().st_size
    assert size > 16_000_000
    local = mi_json("scan", str(file))
    with serve(tree) as (base, st):
        url = f"{base}/files/org/big/{name}"
        remote = mi_json("scan", url)
        assert remote["bytes_read"] == sent(st)
    assert _scan_files(remote, url) == _scan_files(local, str(file))
    assert remote["bytes_read"] <= size // 100, (remote["bytes_read"], size)


def test_scan_several_urls_and_paths_in_one_report(tree: Path) -> None:
    with serve(tree) as (base, _st):
        doc = mi_json("scan", f"{base}/files/org/evil/model.pkl", str(tree / "org" / "llama"), code=1)
    assert doc["status"] == "findings" and doc["bytes_read"] > 0
    assert len(doc["files"]) == 1 + len(mi_json("scan", str(tree / "org" / "llama"))["files"])


# -- mi check --------------------------------------------------------------------------------------------

BUDGET = ["--no-config", "--max-size", "1MB", "--max-params", "1M", "--allow-dtypes", "f32", "--max-share", "mlp=0.5"]


@pytest.mark.parametrize("target", ["llama", "llama/pytorch_model.bin"])
def test_check_url_matches_local(tree: Path, target: str) -> None:
    local = mi_json("check", str(tree / "org" / target), *BUDGET, "--forbid-pickle", code=1)
    with serve(tree) as (base, st):
        remote = mi_json("check", f"hf://org/{target}", *BUDGET, "--forbid-pickle", "--endpoint", base, code=1)
        assert remote["results"][0].pop("bytes_read") == sent(st)
    assert remote["results"][0]["path"] == f"hf://org/{target}"  # not a Path with `//` collapsed
    assert "bytes_read" not in local["results"][0]
    for doc in (local, remote):
        doc["results"][0].pop("path")
    assert remote == local
    rules = {r["rule"]: r for r in remote["results"][0]["rules"]}
    # max-size measures the remote files' sizes: the same bytes the local files hold. A folder counts every
    # model file in it: the safetensors shards and index it reads, and the pytorch_model.bin it does not.
    on_disk = (
        sum(p.stat().st_size for p in (tree / "org" / "llama").glob("*") if p.name.endswith((".bin", ".index.json"))
            or p.suffix == ".safetensors")
        if target == "llama"
        else (tree / "org" / target).stat().st_size
    )  # fmt: skip
    assert rules["max-size"]["measured"] == on_disk and not rules["max-size"]["passed"]
    # The folder reads safetensors (preferred), but the .bin beside them is a pickle: --forbid-pickle fails
    # for the folder as for the file, naming it.
    assert rules["forbid-pickle"]["passed"] is False
    if target == "llama":
        assert "pytorch_model.bin" in rules["forbid-pickle"]["detail"]


def test_check_forbid_pickle_on_an_unsafe_remote_pickle(tree: Path) -> None:
    local = mi_json("check", str(tree / "org" / "evil" / "model.pkl"), "--no-config", "--forbid-pickle", code=1)
    with serve(tree) as (base, _st):
        url = f"{base}/files/org/evil/model.pkl"
        remote = mi_json("check", url, "--no-config", "--forbid-pickle", code=1)
    for doc in (local, remote):
        doc["results"][0].pop("path")
    assert remote == local


# -- mi params / mi memory -------------------------------------------------------------------------------


def test_params_config_url_matches_local(tree: Path) -> None:
    config = tree / "org" / "llama" / "config.json"
    local = mi_json("params", "--config", str(config))
    with serve(tree) as (base, _st):
        for url in ("hf://org/llama", f"{base}/files/org/llama/config.json", f"{base}/files/org/llama/"):
            assert mi_json("params", "--config", url, "--endpoint", base) == local
    assert local["total_params"] > 0


def test_memory_url_and_config_url_match_local(tree: Path) -> None:
    folder = tree / "org" / "llama"
    opts = ["--seq", "512", "--batch", "2"]
    local_path = mi_json("memory", str(folder), *opts)
    local_config = mi_json("memory", "--config", str(folder / "config.json"), *opts)
    with serve(tree) as (base, st):
        remote_path = mi_json("memory", "hf://org/llama", *opts, "--endpoint", base)
        assert remote_path["stored"].pop("bytes_read") == sent(st)
        remote_config = mi_json("memory", "--config", "hf://org/llama", *opts, MI_HF_ENDPOINT=base)
    assert "bytes_read" not in local_path["stored"]
    for local, remote, shown in (
        (local_path, remote_path, str(folder)),
        (local_config, remote_config, str(folder / "config.json")),
    ):
        text_l = json.dumps(local).replace(json.dumps(shown)[1:-1], "<src>")
        text_r = json.dumps(remote).replace("hf://org/llama", "<src>")
        assert json.loads(text_r) == json.loads(text_l)


def test_check_and_memory_text_say_what_crossed_the_network(tree: Path) -> None:
    with serve(tree) as (base, st):
        r = run_cli("check", "hf://org/llama", "--no-config", "--max-params", "100K", "--endpoint", base)
        assert r.code == 1 and f"read {sent(st):,} bytes" in r.stdout and "over the network" in r.stdout
        st.reset_counters()
        r = run_cli("memory", "hf://org/llama", "--endpoint", base, env={"MI_NO_CACHE": "1"})
        assert r.code == 0 and f"read {sent(st):,} bytes" in r.stdout, r.stdout
    r = run_cli("check", str(tree / "org" / "llama"), "--no-config", "--max-params", "100K")
    assert r.code == 1 and "over the network" not in r.stdout


# -- mi diff ---------------------------------------------------------------------------------------------


def test_diff_urls_match_local(tree: Path) -> None:
    folder = tree / "org" / "llama"
    local = mi_json("diff", str(folder), str(folder / "pytorch_model.bin"))
    with serve(tree) as (base, st):
        remote = mi_json("diff", "hf://org/llama", f"{base}/files/org/llama/pytorch_model.bin", "--endpoint", base)
        read_a, read_b = remote["a"].pop("bytes_read"), remote["b"].pop("bytes_read")
        assert read_a > 0 and read_b > 0 and read_a + read_b == sent(st)
        r = run_cli("diff", "hf://org/llama", str(folder), "--endpoint", base)
        assert r.code == 0 and "a: read " in r.stdout and "over the network" in r.stdout and "b: read" not in r.stdout
        one_line_error(["diff", "--values", "hf://org/llama", str(folder)], "--values", {"MI_HF_ENDPOINT": base})
    assert remote["a"].pop("path") == "hf://org/llama"
    assert remote["b"].pop("path") == f"{base}/files/org/llama/pytorch_model.bin"
    local["a"].pop("path")
    local["b"].pop("path")
    assert remote == local and remote["identical"] is True


# -- errors and the token, for every command ---------------------------------------------------------------

COMMANDS: list[list[str]] = [
    ["scan", "{url}"],
    ["check", "{url}", "--no-config", "--max-params", "1M"],
    ["params", "--config", "{url}"],
    ["memory", "{url}"],
    ["memory", "--config", "{url}"],
    ["diff", "{url}", "{url}"],
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_not_found_is_one_line_exit_2(tree: Path, cmd: list[str]) -> None:
    with serve(tree) as (base, _st):
        args = [a.replace("{url}", "hf://org/missing") for a in cmd] + ["--endpoint", base]
        line = one_line_error(args, "404")
        assert "RepoNotFound" in line
        args = [a.replace("{url}", f"{base}/files/org/nothing/model.safetensors") for a in cmd]
        one_line_error(args, "404")


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_token_is_sent_and_never_printed(tree: Path, cmd: list[str]) -> None:
    with serve(tree, token=TOKEN) as (base, st):
        args = [a.replace("{url}", "hf://org/llama") for a in cmd]
        line = one_line_error([*args, "--endpoint", base], "HTTP 401")
        assert TOKEN not in line
        r = run_cli(*args, "--endpoint", base, "--token", "hf_wrong_one")
        assert r.code == 2 and "HTTP 403" in r.stderr and "hf_wrong_one" not in r.stdout + r.stderr
        st.reset_counters()
        for extra, env in ((["--token", TOKEN], {}), ([], {"HF_TOKEN": TOKEN})):
            r = run_cli(*args, "--endpoint", base, *extra, "--json", env=env)
            assert r.code == 0, r.stderr
            assert TOKEN not in r.stdout + r.stderr
        assert st.requests > 0 and set(st.auth_seen) == {f"Bearer {TOKEN}"}


def test_commands_stay_light_without_urls(tree: Path) -> None:
    # `mi params` / `mi memory` / `mi --help` must not load the remote machinery (http.client, threads …).
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from modelscope_inspect.cli import app\n"
        "r = CliRunner()\n"
        "assert r.invoke(app, ['--help']).exit_code == 0\n"
        "assert r.invoke(app, ['params', '--vocab', '100', '--d-model', '8', '--layers', '1']).exit_code == 0\n"
        f"cfg = {str(tree / 'org' / 'llama' / 'config.json')!r}\n"
        "assert r.invoke(app, ['memory', '--config', cfg]).exit_code == 0\n"
        "print(sorted(m for m in sys.modules if m.startswith('modelscope_inspect.remote.') and "
        "m != 'modelscope_inspect.remote.options'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_safetensors_whose_header_length_reads_as_pickle_proto_scans_clean(tmp_path: Path) -> None:
    # A header of 0x0280 bytes makes the file start with 80 02: PROTO 2. Found by the save_pretrained shards
    # above (scan used to call such a shard an unreadable pickle); the safetensors library writes it.
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    p = tmp_path / "m.safetensors"
    for pad in range(0, 640, 8):  # metadata padding moves the header length in steps of 8
        save_file({"w": torch.zeros(2)}, p, metadata={"pad": "x" * pad})
        if p.read_bytes()[:2] == b"\x80\x02":
            break
    assert p.read_bytes()[:2] == b"\x80\x02"
    assert len(load_file(p)) == 1  # the reference reader accepts it
    doc = mi_json("scan", str(p))
    assert doc["files"][0]["format"] == "safetensors" and doc["status"] == "clean"
    # …and a real pickle is still scanned as one, even named .safetensors.
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(EVIL)
    doc = mi_json("scan", str(evil), code=1)
    assert doc["files"][0]["status"] == "dangerous"


def test_check_pyproject_globs_match_urls(tree: Path, tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.mi.check]\nallow-dtypes = ["f32"]\n\n[tool.mi.check."hf://org/*"]\nmax-params = "1K"\n')
    with serve(tree) as (base, _st):
        doc = mi_json("check", "hf://org/llama", "--config", str(pyproject), "--endpoint", base, code=1)
    rules = {r["rule"]: r for r in doc["results"][0]["rules"]}
    assert set(rules) == {"max-params", "allow-dtypes"}  # the default table and the glob matching the URL
    assert not rules["max-params"]["passed"] and rules["allow-dtypes"]["passed"]
