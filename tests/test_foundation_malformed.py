"""Crafted bytes, one test per validation rule: each ends in a one-line message naming the file and the rule."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import pytest

import modelscope_inspect as mi
from modelscope_inspect.errors import InspectError, MalformedFileError, NotFoundError, UnsafePickleError
from tests.conftest import FIXTURES, run_cli


def st_bytes(header: object, data: bytes = b"", raw_header: bytes | None = None, length: int | None = None) -> bytes:
    body = raw_header if raw_header is not None else json.dumps(header).encode()
    n = len(body) if length is None else length
    return struct.pack("<Q", n) + body + data


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(content)
    return p


def expect_error(path: Path, rule: str, fragment: str) -> None:
    with pytest.raises(InspectError) as info:
        mi.load(str(path))
    assert info.value.rule == rule, str(info.value)
    assert fragment in str(info.value)
    assert str(path) in str(info.value)
    # The CLI prints the same as one line, exit 2, no traceback.
    r = run_cli("inspect", str(path))
    assert r.code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert f"[{rule}]" in lines[0] and "Traceback" not in r.stderr


GOOD = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}

SAFETENSORS_CASES = [
    ("short", b"\x01\x02", "header-size", "too short"),
    ("over_file", struct.pack("<Q", 1000) + b"xx", "header-size", "runs past the end"),
    ("cut_header", struct.pack("<Q", 1000) + b"{}", "truncated", "header length declares 1,008 bytes, the file has 10"),
    ("over_limit", struct.pack("<Q", 200_000_000) + b"{}", "header-size", "100 MB"),
    ("not_json", st_bytes(None, raw_header=b"{not json"), "header-json", "not valid JSON"),
    ("not_utf8", st_bytes(None, raw_header=b'{"\xff": 1}'), "header-json", "not UTF-8"),
    ("array", st_bytes([1, 2]), "header-json", "not an object"),
    ("nan", st_bytes(None, raw_header=b'{"a": NaN}'), "header-json", "NaN"),
    ("deep", st_bytes(None, raw_header=b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"), "header-json", "deep"),
    ("dupe", st_bytes(None, raw_header=b'{"a": {}, "a": {}}'), "header-json", "duplicate key"),
    ("meta", st_bytes({"__metadata__": {"k": 1}}), "metadata", "strings to strings"),
    ("entry", st_bytes({"a": 3}), "tensor-entry", "not an object"),
    ("dtype", st_bytes({"a": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4), "dtype-known", "F33"),
    ("shape", st_bytes({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}), "tensor-entry", "shape"),
    ("offsets", st_bytes({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}), "tensor-entry", "data_offsets"),
    (
        "overflow",
        st_bytes({"a": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 4]}}),
        "shape-overflow",
        "overflows",
    ),
    (
        "nbytes",
        st_bytes({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
        "nbytes",
        "need 12",
    ),
    (
        "gap",
        st_bytes({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8),
        "offsets",
        "gap",
    ),
    (
        "overlap",
        st_bytes(
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
            },
            b"\0" * 8,
        ),
        "offsets",
        "overlaps",
    ),
    ("bounds", st_bytes(GOOD, b"\0" * 4), "truncated", "the header declares 77 bytes, the file has 73"),
    (
        "subbyte",
        st_bytes({"a": {"dtype": "I4", "shape": [3], "data_offsets": [0, 2]}}, b"\0" * 2),
        "dtype-size",
        "whole bytes",
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "rule", "fragment"), SAFETENSORS_CASES, ids=[c[0] for c in SAFETENSORS_CASES]
)
def test_malformed_safetensors(tmp_path: Path, name: str, content: bytes, rule: str, fragment: str) -> None:
    expect_error(write(tmp_path, f"{name}.safetensors", content), rule, fragment)


def test_valid_crafted_safetensors_and_trailing_bytes(tmp_path: Path) -> None:
    p = write(tmp_path, "ok.safetensors", st_bytes(GOOD, b"\0" * 8))
    assert mi.load(str(p)).total_params == 2
    p2 = write(tmp_path, "trail.safetensors", st_bytes(GOOD, b"\0" * 12))
    inv = mi.load(str(p2))
    assert inv.total_params == 2 and any("not described" in w for w in inv.warnings)


def test_sub_byte_dtypes_from_bits(tmp_path: Path) -> None:
    header = {
        "q": {"dtype": "I4", "shape": [4, 4], "data_offsets": [0, 8]},
        "f": {"dtype": "F4", "shape": [2], "data_offsets": [8, 9]},
    }
    inv = mi.load(str(write(tmp_path, "sub.safetensors", st_bytes(header, b"\0" * 9))))
    assert {t.name: t.nbytes for t in inv.tensors} == {"q": 8, "f": 1}
    assert inv.total_params == 18


# --- torch zip ------------------------------------------------------------------------------------------


def torch_zip(members: dict[str, bytes], compress: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compress) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def real_pth_members() -> dict[str, bytes]:
    with zipfile.ZipFile(FIXTURES / "tiny_seed.pth") as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def test_zip_garbage_after_magic(tmp_path: Path) -> None:
    expect_error(write(tmp_path, "g.pth", b"PK\x03\x04" + b"\0" * 100), "zip-structure", "not a readable zip")


def test_zip_without_data_pkl(tmp_path: Path) -> None:
    expect_error(write(tmp_path, "n.pth", torch_zip({"archive/other": b"x"})), "zip-data-pkl", "no archive/data.pkl")


def test_zip_truncated(tmp_path: Path) -> None:
    data = (FIXTURES / "tiny_seed.pth").read_bytes()
    expect_error(write(tmp_path, "t.pth", data[: len(data) // 2]), "truncated", "the download is incomplete")


def test_zip_missing_storage(tmp_path: Path) -> None:
    members = real_pth_members()
    victim = next(k for k in members if k.endswith("/data/0"))
    del members[victim]
    expect_error(write(tmp_path, "m.pth", torch_zip(members)), "zip-storage", "not in the archive")


def test_zip_short_storage(tmp_path: Path) -> None:
    members = real_pth_members()
    victim = next(k for k in members if k.endswith("/data/0"))
    members[victim] = members[victim][:4]
    expect_error(write(tmp_path, "s.pth", torch_zip(members)), "zip-storage", "holds 4 bytes")


def test_zip_truncated_pickle(tmp_path: Path) -> None:
    members = real_pth_members()
    pkl = next(k for k in members if k.endswith("data.pkl"))
    members[pkl] = members[pkl][: len(members[pkl]) // 2]
    with pytest.raises(MalformedFileError) as info:
        mi.load(str(write(tmp_path, "p.pth", torch_zip(members))))
    assert info.value.rule is not None and info.value.rule.startswith("pickle")


def test_zip_renamed_folder_and_deflated_pickle(tmp_path: Path) -> None:
    # torch takes the folder from the first entry and accepts deflated members: so do we.
    members = {k.replace(k.split("/")[0], "renamed", 1): v for k, v in real_pth_members().items()}
    p = write(tmp_path, "r.pth", torch_zip(members, zipfile.ZIP_DEFLATED))
    assert mi.load(str(p)).total_params == mi.load(str(FIXTURES / "tiny_seed.pth")).total_params


def test_zip_bomb_data_pkl_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelscope_inspect.loaders import torchzip

    monkeypatch.setattr(torchzip, "MAX_PICKLE", 1 << 20)
    bomb = torch_zip({"archive/data.pkl": b"\0" * (50 << 20)}, zipfile.ZIP_DEFLATED)
    assert len(bomb) < 200_000
    with pytest.raises(MalformedFileError) as info:
        mi.load(str(write(tmp_path, "bomb.pth", bomb)))
    assert info.value.rule == "zip-limit"


class _Marker:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.path}",))


def test_exploit_pickle_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    payload = pickle.dumps({"w": _Marker(str(marker))}, protocol=2)
    p = write(tmp_path, "evil.pth", torch_zip({"archive/data.pkl": payload}))
    with pytest.raises(UnsafePickleError) as info:
        mi.load(str(p))
    assert "system" in str(info.value)
    r = run_cli("inspect", str(p))
    assert r.code == 2 and "would import and run code" in r.stderr
    assert not marker.exists()


# --- paths, folders and indexes --------------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        mi.load(str(tmp_path / "nope.pth"))
    r = run_cli("inspect", str(tmp_path / "nope.pth"))
    assert r.code == 2 and "no such file" in r.stderr


def test_empty_folder_and_text_file(tmp_path: Path) -> None:
    r = run_cli("inspect", str(tmp_path))
    assert r.code == 2 and "holds no model file" in r.stderr
    p = write(tmp_path, "notes.safetensors", b"hello, this is text\n")
    r = run_cli("inspect", str(p))
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    r = run_cli("inspect", str(fifo))
    assert r.code == 2 and "not a regular file" in r.stderr


def _index(tmp_path: Path, weight_map: dict[str, str]) -> Path:
    p = tmp_path / "model.safetensors.index.json"
    p.write_text(json.dumps({"metadata": {"total_size": 8}, "weight_map": weight_map}))
    return p


def test_index_missing_shard(tmp_path: Path) -> None:
    _index(tmp_path, {"a": "model-00001-of-00002.safetensors"})
    r = run_cli("inspect", str(tmp_path))
    assert r.code == 2 and "[index-shard]" in r.stderr and "does not exist" in r.stderr


def test_index_shard_outside_folder(tmp_path: Path) -> None:
    inner = tmp_path / "model"
    inner.mkdir()
    write(tmp_path, "outside.safetensors", st_bytes(GOOD, b"\0" * 8))
    _index(inner, {"a": "../outside.safetensors"})
    r = run_cli("inspect", str(inner))
    assert r.code == 2 and "not a plain file name" in r.stderr
    os.symlink(tmp_path / "outside.safetensors", inner / "link.safetensors")
    _index(inner, {"a": "link.safetensors"})
    r = run_cli("inspect", str(inner))
    assert r.code == 2 and "leads outside the model folder" in r.stderr


def test_index_tensor_not_in_shard(tmp_path: Path) -> None:
    write(tmp_path, "s1.safetensors", st_bytes(GOOD, b"\0" * 8))
    _index(tmp_path, {"a": "s1.safetensors", "b": "s1.safetensors"})
    r = run_cli("inspect", str(tmp_path))
    assert r.code == 2 and "[index-mismatch]" in r.stderr and "'b'" in r.stderr


def test_symlink_loop(tmp_path: Path) -> None:
    os.symlink(tmp_path / "b.pth", tmp_path / "a.pth")
    os.symlink(tmp_path / "a.pth", tmp_path / "b.pth")
    r = run_cli("inspect", str(tmp_path / "a.pth"))
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1


def test_input_files_are_not_modified(tmp_path: Path) -> None:
    import hashlib

    for name in ("tiny_seed.pth", "tiny_seed.safetensors", "tied_gpt2.bin"):
        path = FIXTURES / name
        before = hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns
        assert run_cli("inspect", str(path), "--json").code == 0
        assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before


def test_debug_env_shows_traceback(tmp_path: Path) -> None:
    r = run_cli("inspect", str(tmp_path / "nope.pth"), env={"MI_DEBUG": "1"})
    assert r.code != 0 and isinstance(r, object)
