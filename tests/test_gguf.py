"""GGUF reader: oracles from files written by gguf-py's GGUFWriter (compared with its GGUFReader), crafted
malformed headers, and the GGML block table against gguf-py's.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

import modelscope_inspect as mi
from modelscope_inspect.dtypes import BLOCK_TYPES, GGML_BLOCKS, GGML_PLAIN, bits_per_weight
from modelscope_inspect.errors import InspectError
from tests.conftest import PY, ROOT, run_cli

gguf = pytest.importorskip("gguf")
np = pytest.importorskip("numpy")
from gguf import GGMLQuantizationType as T  # noqa: E402


def write_model(path: Path, *, endian: object = None, alignment: int | None = None) -> None:
    kwargs = {"endianess": endian} if endian is not None else {}
    w = gguf.GGUFWriter(str(path), "llama", **kwargs)
    w.add_name("tiny-llama")
    w.add_context_length(4096)
    w.add_block_count(2)
    w.add_embedding_length(512)
    w.add_feed_forward_length(1024)
    w.add_head_count(8)
    w.add_head_count_kv(2)
    w.add_file_type(15)
    if alignment:
        w.add_custom_alignment(alignment)
    w.add_token_list([f"t{i}" for i in range(300)])
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -5)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4_000_000_000)
    w.add_int32("test.i32", -2_000_000_000)
    w.add_float32("test.f32", 0.5)
    w.add_bool("test.bool", True)
    w.add_string("test.str", "héllo")
    w.add_uint64("test.u64", 2**63)
    w.add_int64("test.i64", -(2**62))
    w.add_float64("test.f64", 1.25)
    w.add_array("test.ints", [1, 2, 3])
    w.add_array("test.nested", [[1, 2], [3, 4, 5]])
    rng = np.random.default_rng(0)
    w.add_tensor("token_embd.weight", rng.random((300, 512), dtype=np.float32))
    w.add_tensor("blk.0.attn_norm.weight", rng.random(512, dtype=np.float32))
    w.add_tensor("blk.0.ffn_up.weight", rng.random((1024, 512)).astype(np.float16))
    data = rng.random((64, 512), dtype=np.float32)
    for qt in (T.Q4_0, T.Q8_0, T.Q5_0, T.BF16):
        w.add_tensor(f"blk.0.{qt.name.lower()}.weight", gguf.quants.quantize(data, qt), raw_dtype=qt)
    # gguf-py cannot quantize K/I-quants: write right-sized blocks of random bytes (the reader never looks)
    for qt in (T.Q4_K, T.Q6_K, T.Q2_K, T.IQ2_XXS, T.IQ4_XS, T.MXFP4):
        bs, ts = gguf.GGML_QUANT_SIZES[qt]
        raw = rng.integers(0, 255, (64, 512 // bs * ts), dtype=np.uint8)
        w.add_tensor(f"blk.1.{qt.name.lower()}.weight", raw, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    write_model(p)
    return p


def check_against_reader(path: Path) -> None:
    reader = gguf.GGUFReader(str(path))
    inv = mi.load(str(path))
    assert inv.format == "gguf"
    assert len(inv.tensors) == len(reader.tensors)
    ours = {t.name: t for t in inv.tensors}
    for rt in reader.tensors:
        t = ours[rt.name]
        assert list(t.shape) == [int(d) for d in rt.shape], rt.name
        assert t.numel == int(rt.n_elements), rt.name
        assert t.nbytes == int(rt.n_bytes), rt.name
        assert t.storage == f"{path.name}@{rt.data_offset}", rt.name
        assert t.dtype == (GGML_PLAIN.get(rt.tensor_type.value) or GGML_BLOCKS[rt.tensor_type.value].name)
    assert inv.total_params == sum(int(rt.n_elements) for rt in reader.tensors)
    assert inv.total_bytes == sum(int(rt.n_bytes) for rt in reader.tensors)
    assert inv.details["data offset"] == reader.data_offset
    assert set(inv.metadata) == {k for k in reader.fields if not k.startswith("GGUF.")}  # header pseudo-fields


def test_matches_gguf_reader(model_file: Path) -> None:
    check_against_reader(model_file)


def test_metadata_values(model_file: Path) -> None:
    inv = mi.load(str(model_file))
    reader = gguf.GGUFReader(str(model_file))
    for key, fld in reader.fields.items():
        if key.startswith("GGUF."):  # gguf-py lists the header counts as pseudo-fields
            continue
        if key == "test.nested":  # gguf-py flattens arrays of arrays (5 items); checked structurally below
            continue
        if fld.types and fld.types[0] == gguf.GGUFValueType.ARRAY:
            assert inv.metadata[key].startswith(f"[{len(fld.contents()):,} × "), key
        else:
            value = fld.contents()
            if isinstance(value, float):
                assert float(inv.metadata[key]) == pytest.approx(value), key
            else:
                assert inv.metadata[key] == str(value), key
    assert inv.metadata["test.ints"] == "[3 × i32: 1, 2, 3]"
    assert inv.metadata["test.nested"].startswith("[2 × array: [2 × ")
    d = inv.details
    assert d["architecture"] == "llama"
    assert d["name"] == "tiny-llama"
    assert (d["context length"], d["layers"], d["embedding"], d["heads"], d["kv heads"]) == (4096, 2, 512, 8, 2)
    assert d["feed forward"] == 1024
    assert d["vocab size"] == 300
    assert d["file type"] == "Q4_K_M (15)"
    assert d["tensor types"]["q4_k"] == 1 and d["tensor types"]["f32"] == 2


def test_bits_per_weight(model_file: Path) -> None:
    inv = mi.load(str(model_file))
    t = next(t for t in inv.tensors if t.dtype == "q4_k")
    assert t.nbytes * 8 / t.numel == 4.5 == bits_per_weight("q4_k")
    assert bits_per_weight("q4_0") == 4.5 and bits_per_weight("q8_0") == 8.5 and bits_per_weight("f16") == 16
    assert bits_per_weight("q6_k") == 6.5625 and bits_per_weight("iq2_xxs") == 2.0625


def test_custom_alignment_and_big_endian(tmp_path: Path) -> None:
    p = tmp_path / "aligned.gguf"
    write_model(p, alignment=64)
    check_against_reader(p)
    assert mi.load(str(p)).details["alignment"] == 64
    be = tmp_path / "be.gguf"
    write_model(be, endian=gguf.GGUFEndian.BIG)
    check_against_reader(be)
    assert "big-endian" in str(mi.load(str(be)).details["gguf version"])


def test_block_table_matches_gguf_py() -> None:
    """Our table is written from ggml-common.h; gguf-py's GGML_QUANT_SIZES must agree, except Q8_1.

    Q8_1 is `2 × ggml_half + 32` = 36 bytes (static_assert in ggml-common.h); gguf-py still lists the
    pre-2024 fp32 layout (40). Q8_1 only exists as an activation format inside ggml, not in files.
    """
    for qt, (bs, ts) in gguf.GGML_QUANT_SIZES.items():
        if qt.value in GGML_PLAIN:
            assert bs == 1
            continue
        block = GGML_BLOCKS[qt.value]
        if qt == T.Q8_1:
            assert (block.block_size, block.type_size, ts) == (32, 36, 40)
            continue
        assert (block.block_size, block.type_size) == (bs, ts), qt.name
        assert BLOCK_TYPES[qt.name.lower()] is block


def test_cli(model_file: Path) -> None:
    r = run_cli("inspect", str(model_file))
    assert r.code == 0, r.stderr
    assert "architecture" in r.stdout and "llama" in r.stdout and "q4_k" in r.stdout


# --- malformed ------------------------------------------------------------------------------------------


def gstr(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def header(n_tensors: int, n_kv: int, version: int = 3) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv)


def kv_u32(key: str, v: int) -> bytes:
    return gstr(key) + struct.pack("<II", 4, v)


def tinfo(name: str, dims: list[int], gtype: int, offset: int) -> bytes:
    return (
        gstr(name)
        + struct.pack("<I", len(dims))
        + b"".join(struct.pack("<Q", d) for d in dims)
        + struct.pack("<IQ", gtype, offset)
    )


def gguf_file(kvs: list[bytes], infos: list[bytes], data: bytes = b"", align: int = 32) -> bytes:
    head = header(len(infos), len(kvs)) + b"".join(kvs) + b"".join(infos)
    return head + b"\0" * (-len(head) % align) + data


def expect_error(path: Path, rule: str, fragment: str) -> None:
    with pytest.raises(InspectError) as info:
        mi.load(str(path))
    assert info.value.rule == rule, str(info.value)
    assert fragment in str(info.value), str(info.value)
    r = run_cli("inspect", str(path))
    assert r.code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"[{rule}]" in lines[0], r.stderr


# gguf-py 0.19.0 hangs on this: one kv whose value is an array of 2^63 u8.
HANG_49 = header(0, 1) + gstr("a") + struct.pack("<IIQ", 9, 0, 2**63)

MALFORMED = [
    ("short", b"GGUF\x03\0\0\0", "truncated", "the GGUF header declares at least 24 bytes, the file has 8"),
    ("v1", header(0, 0, version=1), "gguf-version", "version 1"),
    ("v9", header(0, 0, version=9), "gguf-version", "version 9"),
    ("huge_kv_count", header(0, 2**63), "gguf-count", "metadata entries"),
    ("huge_tensor_count", header(2**40, 0), "gguf-count", "tensors"),
    ("hang49", HANG_49, "gguf-length", "2^63".replace("2^63", f"{2**63:,}")),
    ("huge_string_array", header(0, 1) + gstr("a") + struct.pack("<IIQ", 9, 8, 2**40), "gguf-length", "strings"),
    ("huge_key", header(0, 1) + struct.pack("<Q", 2**62) + b"\0" * 16, "gguf-length", "declares"),
    ("truncated_kv", header(0, 1) + gstr("general.x") + struct.pack("<I", 4) + b"\x01", "truncated", "needs 4"),
    ("value_type", header(0, 1) + gstr("k") + struct.pack("<I", 77) + b"\0" * 8, "gguf-type", "77"),
    ("dupe_key", gguf_file([kv_u32("k", 1), kv_u32("k", 2)], []), "gguf-duplicate", "'k'"),
    ("alignment", gguf_file([kv_u32("general.alignment", 3)], []), "gguf-alignment", "power of two"),
    ("dims", gguf_file([], [tinfo("t", [1, 1, 1, 1, 1], 0, 0)], b"\0" * 4), "gguf-dims", "5 dimensions"),
    ("ggml_type", gguf_file([], [tinfo("t", [4], 99, 0)], b"\0" * 16), "dtype-known", "99"),
    ("block", gguf_file([], [tinfo("t", [48], 2, 0)], b"\0" * 64), "gguf-block", "block size 32"),
    ("block_scalar", gguf_file([], [tinfo("t", [], 2, 0)], b"\0" * 64), "gguf-block", "block size 32"),
    ("overflow", gguf_file([], [tinfo("t", [2**40, 2**40, 2**40], 0, 0)]), "shape-overflow", "overflows"),
    ("bounds", gguf_file([], [tinfo("t", [8], 0, 0)], b"\0" * 16), "truncated", "the download is incomplete"),
    ("unaligned", gguf_file([], [tinfo("t", [2], 0, 4)], b"\0" * 64), "gguf-offsets", "alignment"),
    (
        "overlap",
        gguf_file([], [tinfo("a", [16], 0, 0), tinfo("b", [4], 0, 32)], b"\0" * 128),
        "gguf-offsets",
        "overlap",
    ),
    (
        "dupe_tensor",
        gguf_file([], [tinfo("a", [4], 0, 0), tinfo("a", [4], 0, 32)], b"\0" * 64),
        "gguf-duplicate",
        "'a'",
    ),
]


@pytest.mark.parametrize(("case", "data", "rule", "fragment"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed(tmp_path: Path, case: str, data: bytes, rule: str, fragment: str) -> None:
    p = tmp_path / f"{case}.gguf"
    p.write_bytes(data)
    expect_error(p, rule, fragment)


def test_crafted_file_is_valid_for_gguf_py(tmp_path: Path) -> None:
    """The hand encoder above is right: gguf-py reads a file it builds like we do."""
    p = tmp_path / "ok.gguf"
    p.write_bytes(gguf_file([kv_u32("general.alignment", 32)], [tinfo("t", [64], 8, 0)], b"\0" * 68))
    reader = gguf.GGUFReader(str(p))
    inv = mi.load(str(p))
    assert (inv.tensors[0].numel, inv.tensors[0].nbytes) == (int(reader.tensors[0].n_elements), 68)


def test_hang_file_is_quick_as_a_process(tmp_path: Path) -> None:
    """The 49-byte file that makes gguf-py loop: mi answers in one line, exit 2, well inside the timeout."""
    p = tmp_path / "hang.gguf"
    p.write_bytes(HANG_49)
    assert len(HANG_49) == 49
    r = subprocess.run(
        [PY, "-m", "modelscope_inspect", "inspect", str(p)], capture_output=True, text=True, timeout=30, cwd=ROOT
    )
    assert r.returncode == 2 and "[gguf-length]" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_truncations_of_a_real_file(model_file: Path, tmp_path: Path) -> None:
    data = model_file.read_bytes()
    reader = gguf.GGUFReader(str(model_file))
    for cut in (10, 30, 200, reader.data_offset - 5, reader.data_offset + 100, len(data) - 1):
        p = tmp_path / f"cut{cut}.gguf"
        p.write_bytes(data[:cut])
        with pytest.raises(InspectError) as info:
            mi.load(str(p))
        assert info.value.rule in ("truncated", "gguf-header", "gguf-length", "gguf-count", "gguf-offsets"), str(
            info.value
        )


def test_fuzzed_headers_end_in_inspect_error_or_a_result(tmp_path: Path) -> None:
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    src = tmp_path / "src.gguf"
    write_model(src)
    data = src.read_bytes()[:4096]  # the header region
    p = tmp_path / "fuzz.gguf"

    @hypothesis.settings(max_examples=200, deadline=None, database=None)
    @hypothesis.given(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), max_size=4))
    def check(edits: list[tuple[int, int]]) -> None:
        buf = bytearray(data)
        for i, v in edits:
            buf[i] = v
        p.write_bytes(bytes(buf))
        try:
            mi.load(str(p))
        except InspectError:
            return

    check()


def test_file_text_is_not_console_markup(tmp_path: Path) -> None:
    p = tmp_path / "markup.gguf"
    w = gguf.GGUFWriter(str(p), "llama")
    w.add_name("[/] evil [bold]x")
    w.add_tensor("a", np.ones(32, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    r = run_cli("inspect", str(p), "--tensors")
    assert r.code == 0, r.stderr
    assert "[/] evil [bold]x" in r.stdout


# -- split GGUF (NAME-0000k-of-0000N.gguf) ------------------------------------------------------------------


def write_split(
    folder: Path, stem: str = "tiny", *, n: int = 8, per_part: int = 3, prefix: str = "blk", rows: int = 16
) -> list[Path]:
    """A model written by gguf-py's own splitting writer (what llama.cpp's gguf-split produces)."""
    folder.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(folder / f"{stem}.gguf"), "llama", split_max_tensors=per_part)
    w.add_name("tiny-split")
    w.add_block_count(n)
    w.add_context_length(256)
    rng = np.random.default_rng(1)
    for i in range(n - 1):
        w.add_tensor(f"{prefix}.{i}.weight", rng.random((rows, 32 + i), dtype=np.float32))
    q8 = gguf.quants.quantize(rng.random((8, 64), dtype=np.float32), T.Q8_0)
    w.add_tensor(f"{prefix}.q8.weight", q8, raw_dtype=T.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    parts = sorted(folder.glob(f"{stem}-*-of-*.gguf"))
    assert len(parts) == -(-n // per_part) >= 2
    return parts


@pytest.fixture
def split_parts(tmp_path: Path) -> list[Path]:
    return write_split(tmp_path / "split")


def test_split_gguf_is_one_model(split_parts: list[Path]) -> None:
    readers = [gguf.GGUFReader(str(p)) for p in split_parts]
    want = {rt.name: (p.name, rt) for p, r in zip(split_parts, readers, strict=True) for rt in r.tensors}
    for target in (split_parts[0], split_parts[-1], split_parts[0].parent):  # any part, or the folder
        inv = mi.load(str(target))
        assert inv.format == "gguf" and not inv.warnings
        assert [f.path for f in inv.files] == [p.name for p in split_parts]
        assert inv.file_bytes == sum(p.stat().st_size for p in split_parts)
        assert {t.name for t in inv.tensors} == set(want)
        for t in inv.tensors:
            part, rt = want[t.name]
            assert (t.numel, t.nbytes, t.file) == (int(rt.n_elements), int(rt.n_bytes), part)
            assert t.storage == f"{part}@{rt.data_offset}"
        assert inv.total_params == sum(int(rt.n_elements) for r in readers for rt in r.tensors)
        assert inv.total_bytes == sum(int(rt.n_bytes) for r in readers for rt in r.tensors)
        d = inv.details
        assert d["architecture"] == "llama" and d["name"] == "tiny-split"  # the first part's metadata
        assert d["split"] == f"{len(split_parts)} parts, 8 tensors"
        assert d["tensor types"] == {"f32": 7, "q8_0": 1}
        assert "split.no" not in inv.metadata and inv.metadata["split.count"] == str(len(split_parts))


def test_split_gguf_cli(split_parts: list[Path]) -> None:
    r = run_cli("inspect", str(split_parts[1]), "--json")
    assert r.code == 0, r.stderr
    import json

    doc = json.loads(r.stdout)
    assert len(doc["files"]) == len(split_parts) and len(doc["tensors"]) == 8
    r = run_cli("inspect", str(split_parts[0]))
    assert r.code == 0 and f"{len(split_parts)} parts, 8 tensors" in r.stdout


def expect_split_error(path: Path, fragment: str) -> None:
    with pytest.raises(InspectError) as exc:
        mi.load(str(path))
    assert exc.value.rule == "gguf-split" and fragment in str(exc.value), str(exc.value)
    r = run_cli("inspect", str(path))
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.code == 2 and len(lines) == 1 and fragment in lines[0] and "Traceback" not in r.stderr, r.stderr


def test_split_gguf_missing_part(split_parts: list[Path]) -> None:
    split_parts[1].unlink()
    expect_split_error(split_parts[0], f"split GGUF part {split_parts[1].name} is missing")


def test_split_gguf_parts_in_the_wrong_order(split_parts: list[Path], tmp_path: Path) -> None:
    a, b = split_parts[1], split_parts[2]
    a.rename(tmp_path / "swap")
    b.rename(a)
    (tmp_path / "swap").rename(b)
    expect_split_error(split_parts[0], f"{a.name} should be part 2 of 3 but says split.no 2 of split.count 3")


def test_split_gguf_part_from_another_model(split_parts: list[Path], tmp_path: Path) -> None:
    other = write_split(tmp_path / "other", n=9, prefix="x")  # 3 parts as well, the last one with 3 tensors
    other[-1].replace(split_parts[-1])
    expect_split_error(split_parts[0], "split.tensors.count says 8 tensors; the 3 parts hold 9")


def test_split_gguf_part_with_another_name_counts_alone(split_parts: list[Path], tmp_path: Path) -> None:
    lone = tmp_path / "renamed.gguf"
    split_parts[0].rename(lone)
    inv = mi.load(str(lone))
    assert len(inv.tensors) == 3 and [f.path for f in inv.files] == ["renamed.gguf"]
    assert any("part 1 of 3 of a split GGUF" in w for w in inv.warnings)


def test_split_gguf_over_http_matches_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from tests.test_remote_server import serve

    monkeypatch.setenv("MI_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "hub"
    split_parts = write_split(root / "org" / "split", rows=4096)  # 4 MB of tensor data, headers of a few KB
    local = json.loads(run_cli("inspect", "--json", str(root / "org" / "split" / split_parts[0].name)).stdout)
    with serve(root) as (base, st):
        for url in ("hf://org/split", f"hf://org/split/{split_parts[2].name}"):
            r = run_cli("inspect", "--json", url, env={"MI_HF_ENDPOINT": base, "MI_NO_CACHE": "1"})
            assert r.code == 0, r.stderr
            remote = json.loads(r.stdout)
            assert 0 < remote.pop("bytes_read") < local["file_bytes"] // 10  # headers, not tensor data
            remote.pop("path")
            assert remote == {k: v for k, v in local.items() if k != "path"}
        assert st.requests > 0


@pytest.mark.parametrize(
    ("name", "kvs", "fragment"),
    [
        # 65,535 parts declared (u16 maximum): the first missing sibling ends it, nothing is enumerated.
        ("x-00001-of-65535.gguf", [kv_u32("split.count", 65535)], "split GGUF part x-00002-of-65535.gguf is missing"),
        ("x-00001-of-00002.gguf", [kv_u32("split.count", 2), kv_u32("split.no", 7)], "split.no 7 is outside"),
        ("x-00001-of-00002.gguf", [kv_u32("split.count", 2), gstr("split.no") + struct.pack("<I", 8) + gstr("zero")],
         "split.no is 'zero', not an integer"),
    ],
)  # fmt: skip
def test_crafted_split_metadata(tmp_path: Path, name: str, kvs: list[bytes], fragment: str) -> None:
    p = tmp_path / name
    p.write_bytes(gguf_file(kvs, [tinfo("w", [4], 0, 0)], b"\0" * 16))
    expect_split_error(p, fragment)
