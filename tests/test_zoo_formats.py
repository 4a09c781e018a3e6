"""The rest of the zoo on files their own libraries wrote: OpenVINO IR (`openvino.convert_model` of an ONNX file
+ `save_model`), `torch.export.save` archives, NeMo-layout tars, Paddle state dicts and Flax msgpack, plus a
TensorFlow SavedModel's variables index from TensorFlow's own test data. Hostile variants of each container end
in one line, exit 2, with bounded memory, and nothing in them runs.

Where the library itself is not installable here the file is written the way it writes it, and said so:
- NeMo: `tarfile` + `torch.save`, the layout `nemo.core.connectors.save_restore_connector` writes
  (`model_config.yaml`, `model_weights.ckpt`, uncompressed tar).
- Paddle: real files from `paddle.save` / `paddle.jit.save` are in tests/data/paddle (PaddlePaddle 3.3.1, with
  Paddle's own counts in expected.json); hostile variants are `pickle.dump`s of numpy arrays in that layout.
- Flax: a real `flax.serialization.to_bytes` file is in tests/data/flax (Flax 0.12.8, with JAX's own leaf list);
  other trees are `msgpack.packb` with `ExtType(1, packb((shape, dtype.name, bytes)))` leaves, the layout of
  `flax.serialization.to_bytes` (flax/serialization.py `_ndarray_to_bytes`, `_msgpack_ext_pack`).
"""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import tarfile
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import pytest

import modelscope_inspect as mi
from modelscope_inspect.errors import InspectError
from tests.conftest import run_cli

np = pytest.importorskip("numpy")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def one_line(path: Path, fragment: str) -> str:
    """`mi.load` raises; `mi inspect` prints one line naming the file, exit 2, no traceback."""
    with pytest.raises(InspectError) as info:
        mi.load(str(path))
    assert fragment in str(info.value), str(info.value)
    r = run_cli("inspect", str(path))
    assert r.code == 2, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr and fragment in lines[0], r.stderr
    assert path.name in lines[0]
    return lines[0]


def scan_code(path: Path) -> int:
    return run_cli("scan", str(path)).code


class _Net:  # torch is imported lazily by the tests that need it
    @staticmethod
    def make() -> Any:
        torch = pytest.importorskip("torch")

        class Net(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.l = torch.nn.Linear(8, 16)
                self.bn = torch.nn.BatchNorm1d(16)
                self.o = torch.nn.Linear(16, 4)

            def forward(self, x: Any) -> Any:
                return self.o(torch.relu(self.bn(self.l(x))))

        return Net().eval()


# --- OpenVINO ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ov_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch = pytest.importorskip("torch")
    ov = pytest.importorskip("openvino")
    pytest.importorskip("onnx")
    out = tmp_path_factory.mktemp("ov")
    net = _Net.make()
    torch.onnx.export(net, (torch.randn(2, 8),), str(out / "m.onnx"), dynamo=False)
    model = ov.convert_model(str(out / "m.onnx"))
    ov.save_model(model, str(out / "fp16.xml"))  # compress_to_fp16 defaults to True
    ov.save_model(model, str(out / "fp32.xml"), compress_to_fp16=False)
    return {"fp16": out / "fp16.xml", "fp32": out / "fp32.xml"}


def _ov_consts(path: Path) -> tuple[int, int]:
    """(elements, bytes) of every Constant, from OpenVINO's own reader."""
    ov = pytest.importorskip("openvino")
    model = ov.Core().read_model(str(path))
    elements = nbytes = 0
    for op in model.get_ops():
        if op.get_type_name() == "Constant":
            n = int(np.prod(list(op.get_output_shape(0)))) if len(op.get_output_shape(0)) else 1
            elements += n
            nbytes += op.get_byte_size()
    return elements, nbytes


@pytest.mark.parametrize("variant", ["fp16", "fp32"])
def test_openvino_matches_its_own_reader(ov_files: dict[str, Path], variant: str) -> None:
    path = ov_files[variant]
    elements, nbytes = _ov_consts(path)
    inv = mi.load(str(path))
    assert inv.format == "openvino"
    assert inv.total_params == elements
    assert inv.total_bytes == nbytes
    assert set(inv.by_dtype) == {"f16" if variant == "fp16" else "f32"}
    assert "l.weight" in {t.name for t in inv.tensors}
    assert scan_code(path) == 0


def test_openvino_billion_laughs(tmp_path: Path) -> None:
    p = tmp_path / "laughs.xml"
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    p.write_text(f'<?xml version="1.0"?><!DOCTYPE net [<!ENTITY l0 "lol">{lol}]><net name="x">&l9;</net>')
    tracemalloc.start()
    assert "[xml-hardened]" in one_line(p, "DOCTYPE")
    assert tracemalloc.get_traced_memory()[1] < 64 << 20
    tracemalloc.stop()
    # An entity declared without a DOCTYPE is not XML at all; an external entity never resolves.
    q = tmp_path / "external.xml"
    q.write_text('<?xml version="1.0"?><!DOCTYPE net SYSTEM "file:///etc/passwd"><net name="x"></net>')
    one_line(q, "DOCTYPE")


def test_openvino_bin_cut_short(ov_files: dict[str, Path], tmp_path: Path) -> None:
    """The .bin is stat'ed, never read: one cut short is a truncated model; whole, it counts toward the files."""
    import shutil

    src = ov_files["fp32"]
    shutil.copy(src, tmp_path / "m.xml")
    data = src.with_suffix(".bin").read_bytes()
    (tmp_path / "m.bin").write_bytes(data)
    assert mi.load(str(tmp_path / "m.xml")).file_bytes == src.stat().st_size + len(data)
    (tmp_path / "m.bin").write_bytes(data[: len(data) // 2])
    one_line(tmp_path / "m.xml", "cut short")


def test_openvino_folder(ov_files: dict[str, Path], tmp_path: Path) -> None:
    """optimum-intel's layout: openvino_model.xml + .bin (+ config.json): the IR is the model, the .bin its data."""
    import shutil

    shutil.copy(ov_files["fp16"], tmp_path / "openvino_model.xml")
    shutil.copy(ov_files["fp16"].with_suffix(".bin"), tmp_path / "openvino_model.bin")
    inv = mi.load(str(tmp_path))
    assert inv.format == "openvino"
    assert inv.total_params == _ov_consts(ov_files["fp16"])[0]
    assert not inv.unread_files


def test_openvino_const_size_lie(ov_files: dict[str, Path], tmp_path: Path) -> None:
    text = ov_files["fp32"].read_text()
    p = tmp_path / "lie.xml"
    p.write_text(text.replace('size="512"', 'size="5120"', 1))
    one_line(p, "size says")


# --- torch.export ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pt2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    torch = pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("pt2") / "m.pt2"
    net = _Net.make()
    torch.export.save(torch.export.export(net, (torch.randn(2, 8),)), str(out))
    return out, net


def test_pt2_counts(pt2: tuple[Path, Any]) -> None:
    path, net = pt2
    inv = mi.load(str(path))
    assert inv.format == "torch-export"
    assert inv.total_params == sum(p.numel() for p in net.parameters())
    assert inv.by_section["buffers"].elements == sum(b.numel() for b in net.buffers())
    assert {t.name for t in inv.tensors} == {n for n, _ in net.named_parameters()} | {n for n, _ in net.named_buffers()}
    assert scan_code(path) == 0


def _rewrite(src: Path, dst: Path, replace: dict[str, bytes]) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            for suffix, new in replace.items():
                if info.filename.endswith(suffix):
                    data = new
            zout.writestr(info.filename, data)


class _Boom:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_pt2_with_pickle_inside(pt2: tuple[Path, Any], tmp_path: Path) -> None:
    """The weights table replaced by a pickle that would run a command: refused, nothing run."""
    marker = tmp_path / "ran"
    bad = tmp_path / "bad.pt2"
    _rewrite(pt2[0], bad, {"model_weights_config.json": pickle.dumps(_Boom(str(marker)))})
    one_line(bad, "not valid JSON")
    assert not marker.exists()


def test_pt2_weight_marked_as_pickle(pt2: tuple[Path, Any], tmp_path: Path) -> None:
    """A weight that says `use_pickle` and is a pickle: its size comes from the JSON, the pickle is never loaded,
    and `mi scan` still exits 0 or 1 (it never runs the file either)."""
    marker = tmp_path / "ran"
    with zipfile.ZipFile(pt2[0]) as z:
        name = next(n for n in z.namelist() if n.endswith("model_weights_config.json"))
        doc = json.loads(z.read(name))
    first = next(iter(doc["config"]))
    doc["config"][first]["use_pickle"] = True
    weight = doc["config"][first]["path_name"]
    bad = tmp_path / "pickled.pt2"
    _rewrite(
        pt2[0],
        bad,
        {"model_weights_config.json": json.dumps(doc).encode(), f"/{weight}": pickle.dumps(_Boom(str(marker)))},
    )
    inv = mi.load(str(bad))
    assert any("pickle" in w for w in inv.warnings)
    assert inv.total_params == sum(p.numel() for p in pt2[1].parameters())
    assert not marker.exists()


def test_pt2_pickle_members_are_named(pt2: tuple[Path, Any], tmp_path: Path) -> None:
    """What a scan must walk in a .pt2 besides `*.pkl`: the sample inputs and every `use_pickle` weight."""
    from modelscope_inspect.loaders.source import LocalFile
    from modelscope_inspect.loaders.torch_export import pickle_members

    with zipfile.ZipFile(pt2[0]) as z:
        name = next(n for n in z.namelist() if n.endswith("model_weights_config.json"))
        doc = json.loads(z.read(name))
    first = next(iter(doc["config"]))
    doc["config"][first]["use_pickle"] = True
    weight = doc["config"][first]["path_name"]
    bad = tmp_path / "pickled.pt2"
    _rewrite(pt2[0], bad, {"model_weights_config.json": json.dumps(doc).encode()})
    with LocalFile(bad) as src:
        found = {i.filename.rsplit("/", 1)[-1] for i in pickle_members(src)}
    assert weight in found and "model.pt" in found


def test_pt2_pickled_weight_is_not_clean_for_scan(pt2: tuple[Path, Any], tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with zipfile.ZipFile(pt2[0]) as z:
        name = next(n for n in z.namelist() if n.endswith("model_weights_config.json"))
        doc = json.loads(z.read(name))
    first = next(iter(doc["config"]))
    doc["config"][first]["use_pickle"] = True
    weight = doc["config"][first]["path_name"]
    bad = tmp_path / "pickled.pt2"
    _rewrite(
        pt2[0],
        bad,
        {"model_weights_config.json": json.dumps(doc).encode(), f"/{weight}": pickle.dumps(_Boom(str(marker)))},
    )
    assert scan_code(bad) == 1
    assert not marker.exists()


def test_pt2_storage_too_small(pt2: tuple[Path, Any], tmp_path: Path) -> None:
    bad = tmp_path / "short.pt2"
    _rewrite(pt2[0], bad, {"/weight_0": b"\0" * 8})
    one_line(bad, "holds 8")


# --- NeMo ------------------------------------------------------------------------------------------------------


def _nemo(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w:") as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))


def _ckpt(net: Any) -> bytes:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    return buf.getvalue()


CONFIG = b"target: nemo.collections.asr.models.EncDecCTCModel\nsample_rate: 16000\n"


def test_nemo_counts(tmp_path: Path) -> None:
    net = _Net.make()
    p = tmp_path / "m.nemo"
    _nemo(p, [("./model_config.yaml", CONFIG), ("./model_weights.ckpt", _ckpt(net))])
    inv = mi.load(str(p))
    assert inv.format == "nemo"
    assert inv.total_params == sum(
        t.numel() for n, t in net.state_dict().items() if "running" not in n and "num_batches" not in n
    )
    assert inv.total_elements == sum(t.numel() for t in net.state_dict().values())
    assert inv.details["model class"] == "nemo.collections.asr.models.EncDecCTCModel"
    assert scan_code(p) == 0


def test_nemo_checkpoint_is_scanned(tmp_path: Path) -> None:
    # NeMo's restore hands model_weights.ckpt to torch.load: a payload in it is named, not "holds no pickle".
    class Payload:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return (os.system, ("echo pwned",))

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"w": Payload()}, protocol=2))
        z.writestr("archive/version", "3\n")
    p = tmp_path / "bad.nemo"
    _nemo(p, [("./model_config.yaml", CONFIG), ("./model_weights.ckpt", buf.getvalue())])
    r = run_cli("scan", str(p), "--json")
    assert r.code == 1, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert "os.system" in json.dumps(doc) or "posix.system" in json.dumps(doc)
    assert doc["files"][0]["format"] == "nemo"


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil", "a/../../evil"])
def test_nemo_path_traversal(tmp_path: Path, name: str) -> None:
    p = tmp_path / "trav.nemo"
    _nemo(p, [(name, b"x"), ("./model_weights.ckpt", _ckpt(_Net.make()))])
    one_line(p, "path traversal")


def test_nemo_gzip_refused(tmp_path: Path) -> None:
    p = tmp_path / "gz.nemo"
    with tarfile.open(p, "w:gz") as t:
        data = _ckpt(_Net.make())
        ti = tarfile.TarInfo("model_weights.ckpt")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    one_line(p, "gzip")


# --- Paddle ----------------------------------------------------------------------------------------------------


def _paddle_dict() -> collections.OrderedDict[str, Any]:
    sd: collections.OrderedDict[str, Any] = collections.OrderedDict(
        [
            ("linear.weight", np.ones((8, 16), np.float32)),
            ("linear.bias", np.ones(16, np.float32)),
            ("emb.weight", np.ones((10, 4), np.float16)),
            ("bn._mean", np.ones(16, np.float64)),
        ]
    )
    sd["StructuredToParameterName@@"] = {k: f"p_{i}" for i, k in enumerate(list(sd))}
    return sd


@pytest.mark.parametrize("protocol", [2, 4])
def test_paddle_counts(tmp_path: Path, protocol: int) -> None:
    sd = _paddle_dict()
    p = tmp_path / "m.pdparams"
    p.write_bytes(pickle.dumps(sd, protocol=protocol))
    inv = mi.load(str(p))
    arrays = [v for v in sd.values() if isinstance(v, np.ndarray)]
    assert inv.format == "paddle"
    assert inv.total_params == sum(a.size for a in arrays)
    assert inv.total_bytes == sum(a.nbytes for a in arrays)
    assert inv.by_dtype["f16"].params == 40
    # `mi scan` uses the torch checkpoint allowlist, which does not list numpy's array rebuilders: it reports
    # them as unknown (exit 1), and nothing else.
    r = run_cli("scan", str(p))
    assert r.code == 1
    assert "numpy" in r.stdout and "system" not in r.stdout


PADDLE = Path(__file__).parent / "data" / "paddle"


@pytest.mark.parametrize("name", ["model.pdparams", "model_p2.pdparams"])
def test_paddle_real_state_dict(name: str) -> None:
    expected = json.loads((PADDLE / "expected.json").read_text())
    inv = mi.load(str(PADDLE / name))
    assert inv.total_params == expected["total"]
    assert {t.name: [list(t.shape), t.dtype] for t in inv.tensors} == {
        k: [shape, "f32"] for k, (shape, dtype) in expected["state_dict"].items() if dtype == "paddle.float32"
    }


def test_paddle_real_inference_params() -> None:
    expected = json.loads((PADDLE / "expected.json").read_text())
    inv = mi.load(str(PADDLE / "infer" / "model.pdiparams"))
    assert inv.format == "paddle-inference"
    assert inv.total_params == expected["total"]
    assert {t.name: list(t.shape) for t in inv.tensors} == expected["params"]


def test_paddle_pdiparams_lies(tmp_path: Path) -> None:
    data = (PADDLE / "infer" / "model.pdiparams").read_bytes()
    cut = tmp_path / "cut.pdiparams"
    cut.write_bytes(data[:-10])
    one_line(cut, "remain")
    huge = tmp_path / "huge.pdiparams"
    # The first tensor's dims field (one varint: 16) becomes 2**62 - 1.
    huge.write_bytes(data[:22] + b"\x10\xff\xff\xff\xff\xff\xff\xff\xff\x3f" + data[24:])
    one_line(huge, "pdiparams")


def test_paddle_with_payload(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    sd = _paddle_dict()
    sd["evil"] = _Boom(str(marker))
    p = tmp_path / "evil.pdparams"
    p.write_bytes(pickle.dumps(sd, protocol=4))
    one_line(p, "posix.system" if os.name == "posix" else "system")
    assert not marker.exists()
    assert scan_code(p) == 1


# --- Flax ------------------------------------------------------------------------------------------------------


def _flax_bytes(tree: dict[str, Any]) -> bytes:
    msgpack = pytest.importorskip("msgpack")

    def ext(a: Any) -> Any:
        return msgpack.ExtType(1, msgpack.packb((a.shape, a.dtype.name, a.tobytes("C")), use_bin_type=True))

    def conv(t: Any) -> Any:
        return {k: conv(v) for k, v in t.items()} if isinstance(t, dict) else ext(t)

    return bytes(msgpack.packb(conv(tree), strict_types=True))


FLAX_TREE = {
    "bert": {
        "embeddings": {"word_embeddings": {"embedding": np.zeros((30, 8), np.float32)}},
        "pooler": {"dense": {"kernel": np.zeros((8, 8), np.float16), "bias": np.zeros(8, np.float16)}},
    }
}


def test_flax_counts(tmp_path: Path) -> None:
    p = tmp_path / "flax_model.msgpack"
    p.write_bytes(_flax_bytes(FLAX_TREE))
    inv = mi.load(str(p))
    assert inv.format == "flax-msgpack"
    assert inv.total_params == 30 * 8 + 8 * 8 + 8
    assert "bert.embeddings.word_embeddings.embedding" in {t.name for t in inv.tensors}
    assert inv.by_dtype["f16"].nbytes == (64 + 8) * 2
    assert scan_code(p) == 0


def test_flax_real_file() -> None:
    folder = Path(__file__).parent / "data" / "flax"
    expected = json.loads((folder / "expected.json").read_text())
    inv = mi.load(str(folder / "flax_model.msgpack"))
    shown = {"float32": "f32", "bfloat16": "bf16"}
    assert {t.name: [list(t.shape), t.dtype] for t in inv.tensors} == {
        k: [shape, shown[dtype]] for k, (shape, dtype) in expected["leaves"].items()
    }
    assert inv.total_params == expected["params"]  # the params collection: what Flax counts as parameters
    assert inv.total_elements == expected["total"]
    assert inv.by_section["buffers"].elements == expected["total"] - expected["params"]


def test_flax_lying_lengths(tmp_path: Path) -> None:
    good = _flax_bytes(FLAX_TREE)
    # A map32 claiming 2**31 entries, a bin32 claiming 4 GiB, and the file cut in the middle of an array.
    cases = {
        "count.msgpack": b"\xdf\x80\x00\x00\x00" + good[1:],
        "bin.msgpack": b"\x81\xa1a\xc6\xff\xff\xff\xf0",
        "cut.msgpack": good[: len(good) // 2],
    }
    tracemalloc.start()
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        one_line(p, "remain")
    assert tracemalloc.get_traced_memory()[1] < 64 << 20
    tracemalloc.stop()


# --- TensorFlow SavedModel (TensorFlow Serving's test data, tests/data/saved_model/README.md) ------------------

SAVED = Path(__file__).parent / "data" / "saved_model"
TF_EXPECTED = {  # the variables each exporting script creates (all float32 scalars)
    "saved_model_half_plus_two_cpu": {"a", "b", "c", "a2", "c2"},
    "saved_model_half_plus_three": {"a", "b", "c"},
    "saved_model_half_plus_two_tf2_cpu": {"a", "b", "c"},
    "saved_model_counter": {"counter"},
}


@pytest.mark.parametrize("name", sorted(TF_EXPECTED))
def test_saved_model_variables(name: str) -> None:
    folder = SAVED / name / "00000123"
    inv = mi.load(str(folder))  # the folder: saved_model.pb + variables/variables.index
    assert inv.format == "tf-bundle"
    assert {t.name for t in inv.tensors} == TF_EXPECTED[name]
    assert all(t.shape == () and t.dtype == "f32" for t in inv.tensors)
    assert inv.total_params == len(TF_EXPECTED[name])
    if "tf2" not in name:  # TF1 data shards hold exactly the variables' bytes (TF2 adds its object graph)
        assert inv.total_bytes == (folder / "variables" / "variables.data-00000-of-00001").stat().st_size


def test_saved_model_hostile_index(tmp_path: Path) -> None:
    good = (SAVED / "saved_model_half_plus_two_cpu" / "00000123" / "variables" / "variables.index").read_bytes()
    cases = {
        "cut.index": good[: len(good) - 20],
        # The first data block's Snappy header claims 4 GiB of output.
        "bomb.index": good[:0] + b"\xff\xff\xff\xff\x0f" + good[2:],
        "garbage.index": b"\x00" * 200,
    }
    tracemalloc.start()
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        line = one_line(p, "tf-bundle")
        assert name in line
    assert tracemalloc.get_traced_memory()[1] < 64 << 20
    tracemalloc.stop()
