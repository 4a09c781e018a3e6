"""ONNX reader: oracles from files written by torch.onnx.export and onnx itself, and crafted malformed files.

The oracle for `total_params` is what `onnx.load` reports as initializer elements
(sum of prod(dims) over graph.initializer, subgraphs included) and, where the exporter keeps every parameter,
torch's `sum(p.numel())`.
"""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path

import pytest

import modelscope_inspect as mi
from modelscope_inspect.errors import InspectError
from tests.conftest import PY, ROOT, run_cli

onnx = pytest.importorskip("onnx")
np = pytest.importorskip("numpy")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def initializer_elements(model: onnx.ModelProto) -> int:
    """onnx's own count: initializer elements of the graph and of every subgraph."""
    total = 0

    def graph(g: onnx.GraphProto) -> None:
        nonlocal total
        total += sum(math.prod(t.dims) for t in g.initializer)
        for node in g.node:
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    graph(a.g)
                for sub in a.graphs:
                    graph(sub)

    graph(model.graph)
    return total


def expect_error(path: Path, rule: str, fragment: str) -> InspectError:
    with pytest.raises(InspectError) as info:
        mi.load(str(path))
    assert info.value.rule == rule, str(info.value)
    assert fragment in str(info.value), str(info.value)
    r = run_cli("inspect", str(path))
    assert r.code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and f"[{rule}]" in lines[0], r.stderr
    return info.value


def make_model(nodes: list, inits: list, inputs=None, outputs=None, opset: int = 17) -> onnx.ModelProto:
    g = helper.make_graph(
        nodes,
        "g",
        inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=inits,
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="test")


def linear_model() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), "w")
    b = numpy_helper.from_array(np.ones(3, dtype=np.float32), "b")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])]
    return make_model(nodes, [w, b])


# --- oracles -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    torch = pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("onnx")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(50, 8)
            self.fc1 = torch.nn.Linear(8, 16)
            self.ln = torch.nn.LayerNorm(16)
            self.fc2 = torch.nn.Linear(16, 5)
            self.register_buffer("scale", torch.full((5,), 2.0))

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.fc2(torch.relu(self.ln(self.fc1(self.emb(ids))))) * self.scale

    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():  # non-default values so the exporter has nothing to deduplicate
        for p in net.parameters():
            p.normal_()
    ids = torch.randint(0, 50, (2, 7))
    ts = out / "ts.onnx"
    torch.onnx.export(net, (ids,), str(ts), dynamo=False, input_names=["ids"], output_names=["y"])
    dyn = out / "dyn.onnx"
    torch.onnx.export(net, (ids,), str(dyn), dynamo=True, input_names=["ids"], output_names=["y"])
    n_params = sum(p.numel() for p in net.parameters())
    n_buffers = sum(b.numel() for b in net.buffers())
    return {"ts": ts, "dyn": dyn, "params": n_params, "buffers": n_buffers}


@pytest.mark.parametrize("which", ["ts", "dyn"])
def test_torch_export_matches_onnx_and_torch(exported: dict[str, object], which: str) -> None:
    path = exported[which]
    assert isinstance(path, Path)
    model = onnx.load(str(path), load_external_data=False)
    inv = mi.load(str(path))
    assert inv.format == "onnx"
    # onnx's own count of initializer elements, whatever the exporter did
    assert inv.total_params == initializer_elements(model)
    names = {t.name for t in model.graph.initializer}
    assert {t.name for t in inv.tensors if t.section == "model"} == names
    # torch's count: parameters plus the registered buffer (the exporter turns both into initializers or
    # constants); every initializer or constant element comes from one of them.
    params, buffers = exported["params"], exported["buffers"]
    assert isinstance(params, int) and isinstance(buffers, int)
    assert inv.total_elements in (params, params + buffers), (inv.total_elements, params, buffers)
    d = inv.details
    assert d["producer"].startswith("pytorch")
    assert d["inputs"]["ids"].startswith("i64 (")
    assert sum(d["ops"].values()) == len(model.graph.node) == d["nodes"]
    assert d["opset"] == ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)


def test_torchscript_export_dedup_is_reported_as_alias(tmp_path: Path) -> None:
    """The torchscript exporter merges initializers with equal values; mi reports the Identity aliases.

    Two LayerNorms at their default init (ones/zeros) are stored once: onnx.load's initializer count is
    then below torch's numel by exactly the aliased tensors, and mi names them.
    """
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.LayerNorm(6), torch.nn.LayerNorm(6)).eval()
    with torch.no_grad():
        net[0].weight.normal_()
        net[0].bias.normal_()
    path = tmp_path / "dedup.onnx"
    torch.onnx.export(net, (torch.randn(2, 4),), str(path), dynamo=False)
    model = onnx.load(str(path))
    inv = mi.load(str(path))
    torch_count = sum(p.numel() for p in net.parameters())
    assert inv.total_params == initializer_elements(model)
    aliases = inv.details.get("aliases", {})
    by_name = {t.name: t for t in inv.tensors}
    aliased = sum(by_name[src].numel for src in aliases.values())
    assert inv.total_params + aliased == torch_count, (inv.total_params, aliases, torch_count)


def test_external_data_written_by_onnx(tmp_path: Path) -> None:
    model = linear_model()
    big = numpy_helper.from_array(np.arange(4096, dtype=np.float32).reshape(64, 64), "big")
    model.graph.initializer.append(big)
    path = tmp_path / "ext.onnx"
    onnx.save_model(
        model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="w.data", size_threshold=0
    )
    inv = mi.load(str(path))
    ref = onnx.load(str(path), load_external_data=False)
    assert inv.total_params == initializer_elements(ref) == 12 + 3 + 4096
    assert inv.total_bytes == 4 * (12 + 3 + 4096)
    ext = inv.details["external data"]
    size = (tmp_path / "w.data").stat().st_size
    assert list(ext) == ["w.data"] and ext["w.data"].startswith(f"{size:,} bytes")
    assert {t.file for t in inv.tensors} == {"w.data"}
    assert inv.files[0].path == "ext.onnx"
    # Each external tensor's (offset, length) as onnx wrote them
    for t in ref.graph.initializer:
        entries = {e.key: e.value for e in t.external_data}
        rec = next(r for r in inv.tensors if r.name == t.name)
        assert rec.storage == f"w.data@{entries.get('offset', '0')}"
        assert rec.nbytes == int(entries["length"])


def test_external_data_missing_file_is_a_warning(tmp_path: Path) -> None:
    model = linear_model()
    path = tmp_path / "ext.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="w.data", size_threshold=0)
    (tmp_path / "w.data").unlink()
    inv = mi.load(str(path))
    assert inv.total_params == 15
    assert any("missing" in w for w in inv.warnings)


def test_constants_are_their_own_section(tmp_path: Path) -> None:
    c = helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.ones((2, 3), dtype=np.float16), "cv"))
    ci = helper.make_node("Constant", [], ["ci"], value_ints=[1, 2, 3, 4, 5])
    cf = helper.make_node("Constant", [], ["cf"], value_float=0.5)
    nodes = [c, ci, cf, *linear_model().graph.node]
    model = make_model(nodes, list(linear_model().graph.initializer))
    path = tmp_path / "const.onnx"
    onnx.save(model, str(path))
    inv = mi.load(str(path))
    consts = {t.name: t for t in inv.tensors if t.section == "constants"}
    assert set(consts) == {"c", "ci", "cf"}
    assert (consts["c"].shape, consts["c"].dtype, consts["c"].nbytes) == ((2, 3), "f16", 12)
    assert (consts["ci"].numel, consts["ci"].dtype) == (5, "i64")
    assert (consts["cf"].shape, consts["cf"].numel) == ((), 1)
    assert inv.total_params == 15  # initializers only
    assert inv.total_elements == 15 + 6 + 5 + 1
    assert inv.details["constants"] == 3
    assert inv.details["ops"]["Constant"] == 3


def test_subgraph_initializers_and_identity_alias(tmp_path: Path) -> None:
    def branch(name: str, n: int) -> onnx.GraphProto:
        w = numpy_helper.from_array(np.full((n,), 3.0, dtype=np.float32), f"{name}_w")
        return helper.make_graph(
            [helper.make_node("Identity", [f"{name}_w"], [f"{name}_out"])],
            name,
            [],
            [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [n])],
            initializer=[w],
        )

    cond = numpy_helper.from_array(np.array(True), "cond")
    if_node = helper.make_node("If", ["cond"], ["y"], then_branch=branch("then", 3), else_branch=branch("else", 3))
    alias = helper.make_node("Identity", ["cond"], ["cond_alias"])
    model = make_model(
        [if_node, alias], [cond], inputs=[], outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])]
    )
    path = tmp_path / "if.onnx"
    onnx.save(model, str(path))
    inv = mi.load(str(path))
    assert inv.total_params == initializer_elements(onnx.load(str(path))) == 1 + 3 + 3
    d = inv.details
    assert d["subgraphs"] == 2
    assert d["aliases"]["cond_alias"] == "cond"
    assert d["aliases"]["then_out"] == "then_w"


def test_reader_reads_headers_not_weights(tmp_path: Path) -> None:
    """A 32 MiB initializer costs a tag and a length: the reader fetches far less than the file."""
    w = numpy_helper.from_array(np.zeros((2048, 4096), dtype=np.float32), "w")
    model = make_model([helper.make_node("Identity", ["w"], ["y"])], [w], inputs=[])
    path = tmp_path / "big.onnx"
    onnx.save(model, str(path))
    inv = mi.load(str(path))
    assert inv.total_params == 2048 * 4096
    assert inv.header_bytes < 1 << 20 < path.stat().st_size // 32


def test_onnx_package_not_imported(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(linear_model(), str(path))
    code = f"import sys, modelscope_inspect as mi; mi.load({str(path)!r}); print('onnx' in sys.modules)"
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.stdout.strip() == "False", r.stderr


def test_cli_shows_onnx_details(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(linear_model(), str(path))
    r = run_cli("inspect", str(path))
    assert r.code == 0, r.stderr
    assert "opset" in r.stdout and "ai.onnx 17" in r.stdout
    assert "x=f32 (batch, 4)" in r.stdout
    assert "MatMul ×1" in r.stdout


# --- malformed ------------------------------------------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def fld(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def tensor_bytes(
    name: str, dims: list[int], dtype: int = 1, raw: bytes | None = None, ext: dict | None = None
) -> bytes:
    body = b"".join(varint(1 << 3) + varint(d) for d in dims) + varint(2 << 3) + varint(dtype)
    body += fld(8, name.encode())
    if raw is not None:
        body += fld(9, raw)
    for k, v in (ext or {}).items():
        body += fld(13, fld(1, k.encode()) + fld(2, v.encode()))
    if ext is not None:
        body += varint(14 << 3) + varint(1)
    return body


def model_bytes(graph: bytes) -> bytes:
    return varint(1 << 3) + varint(8) + fld(7, graph)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_crafted_model_reads(tmp_path: Path) -> None:
    """The hand encoder below is right: onnx agrees with what it builds."""
    p = write(tmp_path, "ok.onnx", model_bytes(fld(5, tensor_bytes("w", [2, 3], raw=b"\0" * 24))))
    assert initializer_elements(onnx.load(str(p))) == 6 == mi.load(str(p)).total_params


MALFORMED = [
    ("empty", b"", "empty-file", "empty file (0 bytes)"),
    ("no_graph", varint(1 << 3) + varint(8) + fld(2, b"pytorch"), "onnx-graph", "no graph"),
    ("lying_length", varint(1 << 3) + varint(8) + varint(7 << 3 | 2) + varint(1 << 40), "protobuf-length", "declares"),
    ("long_varint", varint(1 << 3) + b"\xff" * 11, "protobuf", "longer than 10 bytes"),
    ("wire_group", varint(1 << 3) + varint(8) + varint(7 << 3 | 3), "protobuf", "wire type 3"),
    ("raw_size", model_bytes(fld(5, tensor_bytes("w", [2, 3], raw=b"\0" * 20))), "onnx-tensor-size", "needs 24"),
    ("huge_dims", model_bytes(fld(5, tensor_bytes("w", [1 << 40, 1 << 40, 1 << 40]))), "shape-overflow", "overflows"),
    ("negative_dim", model_bytes(fld(5, tensor_bytes("w", [(1 << 64) - 2]))), "onnx-shape", "negative"),
    ("dtype", model_bytes(fld(5, tensor_bytes("w", [2], dtype=99))), "onnx-dtype", "99"),
    ("rank", model_bytes(fld(5, tensor_bytes("w", [1] * 70))), "onnx-rank", "more than 64"),
    (
        "dupe",
        model_bytes(fld(5, tensor_bytes("w", [2], raw=b"\0" * 8)) + fld(5, tensor_bytes("w", [3], raw=b"\0" * 12))),
        "onnx-duplicate",
        "'w'",
    ),
    (
        "ext_dotdot",
        model_bytes(fld(5, tensor_bytes("w", [2], ext={"location": "../x.bin"}))),
        "onnx-external-path",
        "..",
    ),
    (
        "ext_abs",
        model_bytes(fld(5, tensor_bytes("w", [2], ext={"location": "/etc/passwd"}))),
        "onnx-external-path",
        "passwd",
    ),
    (
        "ext_win",
        model_bytes(fld(5, tensor_bytes("w", [2], ext={"location": "C:\\x.bin"}))),
        "onnx-external-path",
        "x.bin",
    ),
    ("ext_noloc", model_bytes(fld(5, tensor_bytes("w", [2], ext={"offset": "0"}))), "onnx-external", "no location"),
    (
        "ext_len",
        model_bytes(fld(5, tensor_bytes("w", [2], ext={"location": "d.bin", "length": "4"}))),
        "onnx-external-length",
        "length 4",
    ),
    (
        "ext_bounds",
        model_bytes(fld(5, tensor_bytes("w", [4], ext={"location": "d.bin", "offset": "4", "length": "16"}))),
        "onnx-external-bounds",
        "holds 16",
    ),
    (
        "ext_offset",
        model_bytes(fld(5, tensor_bytes("w", [2], ext={"location": "d.bin", "offset": "-1"}))),
        "onnx-external",
        "-1",
    ),
]


@pytest.mark.parametrize(("case", "data", "rule", "fragment"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed(tmp_path: Path, case: str, data: bytes, rule: str, fragment: str) -> None:
    (tmp_path / "d.bin").write_bytes(b"\0" * 16)
    expect_error(write(tmp_path, f"{case}.onnx", data), rule, fragment)


def test_truncated_real_model(tmp_path: Path) -> None:
    data = linear_model().SerializeToString()
    for cut in (len(data) // 3, len(data) // 2, len(data) - 1):
        p = write(tmp_path, f"cut{cut}.onnx", data[:cut])
        with pytest.raises(InspectError) as info:
            mi.load(str(p))
        assert info.value.rule in ("truncated", "protobuf-length", "protobuf", "onnx-graph"), str(info.value)


def test_symlink_leaving_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"\0" * 8)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    os.symlink(outside / "secret.bin", model_dir / "w.bin")
    p = write(model_dir, "m.onnx", model_bytes(fld(5, tensor_bytes("w", [2], ext={"location": "w.bin"}))))
    expect_error(p, "onnx-external-path", "outside the model's folder")


@pytest.mark.parametrize("levels", [40, 5000])
def test_deep_subgraph_nesting_is_bounded(tmp_path: Path, levels: int) -> None:
    """If-in-If-in-If… (onnx's own protobuf refuses to even build this past its depth limit)."""
    graph = b""
    for _ in range(levels):
        attr = fld(1, b"then_branch") + fld(6, graph) + varint(20 << 3) + varint(5)
        graph = fld(1, fld(4, b"If") + fld(5, attr))
    p = write(tmp_path, "deep.onnx", model_bytes(graph))
    with pytest.raises(InspectError) as info:
        mi.load(str(p))
    assert info.value.rule in ("onnx-depth", "protobuf-depth"), str(info.value)
    r = run_cli("inspect", str(p))
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1


def test_fuzzed_bytes_end_in_inspect_error_or_a_result(tmp_path: Path) -> None:
    """Random corruptions of a real model never raise anything but InspectError (and never hang)."""
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    data = linear_model().SerializeToString()
    p = tmp_path / "fuzz.onnx"

    @hypothesis.settings(max_examples=200, deadline=None, database=None)
    @hypothesis.given(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), max_size=4))
    def check(edits: list[tuple[int, int]]) -> None:
        buf = bytearray(data)
        for i, v in edits:
            buf[i] = v
        p.write_bytes(bytes(buf))
        try:
            inv = mi.load(str(p))
        except InspectError:
            return
        assert inv.total_params >= 0

    check()


def test_matmulnbits_from_onnxruntime_quantizer(tmp_path: Path) -> None:
    """onnxruntime's own 4-bit quantizer: B is uint8 [N, K/32, 16]; the logical weight is K × N."""
    pytest.importorskip("onnxruntime")
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    k, n = 256, 128
    w = numpy_helper.from_array(np.random.default_rng(0).random((k, n), dtype=np.float32), "w")
    model = make_model(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [w],
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])],
    )
    q = MatMulNBitsQuantizer(model, block_size=32, is_symmetric=False)
    q.process()
    path = tmp_path / "q4.onnx"
    onnx.save(q.model.model, str(path))
    ref = onnx.load(str(path))
    node = next(nd for nd in ref.graph.node if nd.op_type == "MatMulNBits")
    b = next(t for t in ref.graph.initializer if t.name == node.input[1])
    inv = mi.load(str(path))
    rec = next(t for t in inv.tensors if t.name == b.name)
    assert rec.numel == k * n  # logical, = the float MatMul weight it replaced
    assert rec.nbytes == math.prod(b.dims) == k * n // 2  # stored: 4 bits each
    assert rec.packing is not None and "MatMulNBits 4-bit" in rec.packing
    aux = {t.name for t in inv.tensors if t.kind == "quant_aux"}
    assert aux == set(node.input[2:])
    assert "MatMulNBits 4-bit ×1" in inv.details["packed weights"]


def test_sniffed_without_the_extension(tmp_path: Path) -> None:
    """onnx writes ir_version first: the magic-bytes check finds ONNX under any name."""
    path = tmp_path / "model.bytes"
    onnx.save(linear_model(), str(path))
    assert mi.load(str(path)).format == "onnx"


def test_typed_data_fields_are_counted_not_read(tmp_path: Path) -> None:
    """Tensors stored in float_data / int64_data (not raw_data) are sized and checked the same way."""
    f = helper.make_tensor("f", TensorProto.FLOAT, [2, 3], [float(i) for i in range(6)])
    i = helper.make_tensor("i", TensorProto.INT64, [4], [1, 300, -5, 2**40])
    s = helper.make_tensor("s", TensorProto.STRING, [2], [b"ab", b"cde"])
    model = make_model([helper.make_node("Identity", ["f"], ["y"])], [f, i, s], inputs=[])
    path = tmp_path / "typed.onnx"
    onnx.save(model, str(path))
    inv = mi.load(str(path))
    by = {t.name: t for t in inv.tensors}
    assert (by["f"].numel, by["f"].nbytes, by["f"].dtype) == (6, 24, "f32")
    assert (by["i"].numel, by["i"].nbytes, by["i"].dtype) == (4, 32, "i64")
    assert (by["s"].numel, by["s"].nbytes, by["s"].dtype) == (2, 5, "string")
    assert inv.total_params == initializer_elements(onnx.load(str(path))) == 12
    # A lying count: float_data with 5 values for dims [2, 3]
    bad = helper.make_tensor("f", TensorProto.FLOAT, [5], [0.0] * 5)  # helper refuses to lie; edit after
    bad.dims[:] = [2, 3]
    p2 = tmp_path / "typed_bad.onnx"
    p2.write_bytes(make_model([], [bad], inputs=[]).SerializeToString())
    expect_error(p2, "onnx-tensor-size", "float_data holds 5 values")


def test_int4_and_sparse_initializers(tmp_path: Path) -> None:
    """INT4 packs two per byte, padded (7 values → 4 bytes); a sparse initializer stores values + indices."""
    i4 = helper.make_tensor("q", TensorProto.INT4, [7], [1, -2, 3, -4, 5, -6, 7])
    values = helper.make_tensor("sp", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    indices = helper.make_tensor("sp_idx", TensorProto.INT64, [3], [0, 5, 9])
    sparse = helper.make_sparse_tensor(values, indices, [10])
    model = make_model([helper.make_node("Identity", ["q"], ["y"])], [i4], inputs=[])
    model.graph.sparse_initializer.append(sparse)
    path = tmp_path / "i4.onnx"
    onnx.save(model, str(path))
    ref = onnx.load(str(path))
    inv = mi.load(str(path))
    by = {t.name: t for t in inv.tensors}
    assert (by["q"].numel, by["q"].nbytes, by["q"].dtype) == (7, 4, "i4")  # ceil(7 × 4 bits / 8)
    assert math.prod(ref.graph.initializer[0].dims) == 7
    assert by["q"].packing == "native i4: 2 per byte"
    assert (by["sp"].numel, by["sp"].section) == (3, "model")
    assert (by["sp.indices"].numel, by["sp.indices"].section) == (3, "sparse indices")
    assert inv.total_params == 7 + 3
    assert inv.details["sparse initializers"] == 1
