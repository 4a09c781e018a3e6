"""Files that are not what their name says (issue 15, item 4): each gets one line naming the file and the rule,
the same for every format and from `mi inspect` and `mi scan` alike.

Every model file here is written by its real library (torch.save, safetensors, gguf-py, onnx) and then broken
the way downloads break: a Git LFS pointer in its place, a saved HTML / JSON / XML error page, an empty file,
or a prefix of the real bytes. For a cut file the size the header declares is checked against the size of the
real file it was cut from.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest

import modelscope_inspect as mi
from modelscope_inspect.errors import InspectError, MalformedFileError
from tests.conftest import run_cli

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
gguf = pytest.importorskip("gguf")
onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

LFS = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4c8f1d4b2f0a7b6e8d1c9a3b5e7f9a1c3e5d7b9f1a3c5e7d9b1f3a5c7e9d1b3f\n"
    "size 4943162336\n"
)
HTML = (
    "<!DOCTYPE html>\n<html>\n<head><meta charset='utf-8'><title>Hugging Face &ndash; 404</title></head>\n"
    "<body><h1>404</h1><p>Sorry, we can't find the page you are looking for.</p></body>\n</html>\n"
)


def _state() -> dict[str, object]:
    torch.manual_seed(0)
    return {"w": torch.randn(64, 32), "b": torch.randn(64), "e": torch.randn(100, 16)}


def write_safetensors(p: Path) -> None:
    save_file(_state(), str(p))  # type: ignore[arg-type]


def write_zip(p: Path) -> None:
    torch.save(_state(), p)


def write_legacy(p: Path) -> None:
    torch.save(_state(), p, _use_new_zipfile_serialization=False)


def write_gguf(p: Path) -> None:
    w = gguf.GGUFWriter(str(p), "llama")
    w.add_block_count(1)
    w.add_token_list([f"t{i}" for i in range(50)])
    w.add_tensor("token_embd.weight", np.arange(100 * 16, dtype=np.float32).reshape(100, 16))
    w.add_tensor("output.weight", np.ones((64, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_onnx(p: Path) -> None:
    w = numpy_helper.from_array(np.ones((32, 64), dtype=np.float32), "w")
    b = numpy_helper.from_array(np.zeros(64, dtype=np.float32), "b")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])]
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 32])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 64])
    g = helper.make_graph(nodes, "g", [x], [y], [w, b])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(p))


# (name a download would have, writer): every format the readers know.
FORMATS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "safetensors": ("model.safetensors", write_safetensors),
    "torch-zip": ("pytorch_model.bin", write_zip),
    "torch-legacy": ("model.pth", write_legacy),
    "gguf": ("model.gguf", write_gguf),
    "onnx": ("model.onnx", write_onnx),
}


def real_file(tmp_path: Path, fmt: str) -> Path:
    name, writer = FORMATS[fmt]
    p = tmp_path / "real" / name
    p.parent.mkdir(exist_ok=True)
    writer(p)
    assert mi.load(str(p)).tensors  # the real file reads
    return p


def one_line(path: Path, rule: str, fragment: str, command: str = "inspect") -> str:
    """`mi COMMAND PATH` exits 2 with one line naming the file and `[rule]`, without a traceback."""
    r = run_cli(command, str(path))
    assert r.code == 2, (r.code, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in r.stderr, r.stderr
    assert str(path) in lines[0], lines[0]
    assert f"[{rule}]" in lines[0] or command == "scan", lines[0]
    assert fragment in lines[0], lines[0]
    return lines[0]


def expect_load_error(path: Path, rule: str) -> InspectError:
    with pytest.raises(InspectError) as info:
        mi.load(str(path))
    assert info.value.rule == rule, str(info.value)
    assert info.value.path == str(path)
    return info.value


# --- LFS pointers, pages, text, empty files: the same for every format --------------------------------------


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_git_lfs_pointer(tmp_path: Path, fmt: str) -> None:
    p = tmp_path / FORMATS[fmt][0]
    p.write_text(LFS)
    expect_load_error(p, "lfs-pointer")
    line = one_line(p, "lfs-pointer", "a Git LFS pointer (oid sha256:4c8f1d4b…, 4.6 GiB), not the model")
    assert line.endswith("run `git lfs pull`")
    assert f"{4943162336 / 2**30:.1f} GiB" == "4.6 GiB"  # the size line of the pointer, as the views print sizes
    one_line(p, "lfs-pointer", "a Git LFS pointer (oid sha256:4c8f1d4b…, 4.6 GiB)", command="scan")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_html_error_page(tmp_path: Path, fmt: str) -> None:
    p = tmp_path / FORMATS[fmt][0]
    p.write_text(HTML)
    expect_load_error(p, "html-page")
    one_line(p, "html-page", "an HTML page ('Hugging Face – 404'), not a model file: the download failed")
    one_line(p, "html-page", "an HTML page ('Hugging Face – 404')", command="scan")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_json_error_page(tmp_path: Path, fmt: str) -> None:
    p = tmp_path / FORMATS[fmt][0]
    p.write_text('{"error":"Repository Not Found for url: https://huggingface.co/api/models/x/y."}')
    expect_load_error(p, "json-file")
    one_line(
        p, "json-file", "a JSON document (\"error\": 'Repository Not Found for url: https://huggingface.co/api/mo…')"
    )
    one_line(p, "json-file", "not a model file: the download failed", command="scan")


def test_xml_error_page_and_json_config(tmp_path: Path) -> None:
    p = tmp_path / "model.safetensors"
    p.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied')
    one_line(p, "xml-file", "an XML document ('AccessDenied'), not a model file: the download failed")
    p.write_text('{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_layer": 2}')
    line = one_line(p, "json-file", "a JSON document (keys architectures, model_type, n_layer), not a model file")
    assert "download" not in line  # a config under the wrong name is not a failed download


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_plain_text(tmp_path: Path, fmt: str) -> None:
    p = tmp_path / FORMATS[fmt][0]
    p.write_text("Internal Server Error\n\nThe server encountered an internal error.\n")
    expect_load_error(p, "text-file")
    one_line(p, "text-file", "a text file (first line 'Internal Server Error'), not a model file")
    one_line(p, "text-file", "a text file (first line 'Internal Server Error')", command="scan")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_empty_file_same_message_for_every_extension(tmp_path: Path, fmt: str) -> None:
    p = tmp_path / FORMATS[fmt][0]
    p.write_bytes(b"")
    expect_load_error(p, "empty-file")
    msg = "empty file (0 bytes), not a model: the download or copy did not finish"
    assert one_line(p, "empty-file", msg) == f"error: {p}: [empty-file] {msg}"
    one_line(p, "empty-file", msg, command="scan")


def test_a_protocol_0_pickle_is_scanned_not_called_text(tmp_path: Path) -> None:
    # Text that may be a pickle is never taken for text: the scanner must see what it would import.
    p = tmp_path / "model.bin"
    p.write_bytes(pickle.dumps(os.system, protocol=0))  # `cposix\nsystem\np0\n.`: a reference, never called
    r = run_cli("scan", str(p))
    assert r.code == 1 and "DANGEROUS" in r.stdout and "system" in r.stdout, r.stdout + r.stderr
    with pytest.raises(InspectError) as info:
        mi.load(str(p))
    assert info.value.rule != "text-file"


# --- downloads cut short ------------------------------------------------------------------------------------


def cut_copies(real: Path, tmp_path: Path, fractions: tuple[float, ...]) -> list[tuple[Path, int]]:
    data = real.read_bytes()
    out = []
    for f in fractions:
        n = max(1, int(len(data) * f))
        p = tmp_path / f"cut{n}" / real.name
        p.parent.mkdir()
        p.write_bytes(data[:n])
        out.append((p, n))
    return out


@pytest.mark.parametrize("fmt", ["safetensors", "gguf"])
def test_truncated_data_declares_the_real_size(tmp_path: Path, fmt: str) -> None:
    # The header is whole: it declares exactly the size of the file the prefix was cut from.
    real = real_file(tmp_path, fmt)
    full = real.stat().st_size
    for p, n in cut_copies(real, tmp_path, (0.5, 0.9, 0.999)):
        expect_load_error(p, "truncated")
        one_line(
            p,
            "truncated",
            f"truncated: the header declares {full:,} bytes, the file has {n:,}; the download is incomplete",
        )
        one_line(p, "truncated", f"the header declares {full:,} bytes, the file has {n:,}", command="scan")


def test_truncated_safetensors_header(tmp_path: Path) -> None:
    real = real_file(tmp_path, "safetensors")
    header_end = 8 + int.from_bytes(real.read_bytes()[:8], "little")
    p = tmp_path / "model.safetensors"
    p.write_bytes(real.read_bytes()[: header_end // 2])
    one_line(
        p, "truncated", f"truncated: the header length declares {header_end:,} bytes, the file has {header_end // 2:,}"
    )


def test_truncated_gguf_header(tmp_path: Path) -> None:
    real = real_file(tmp_path, "gguf")
    for p, n in cut_copies(real, tmp_path, (0.002, 0.01)):
        line = one_line(p, "truncated", "the download is incomplete")
        assert line.split("] ", 1)[1].startswith("truncated: ") and f"the file has {n:,}" in line


def test_truncated_torch_zip(tmp_path: Path) -> None:
    # torch's own loader refuses it ("failed finding central directory"). data.pkl comes first and names every storage,
    # so a cut in the tensor data is measured: at least the pickle plus the storages' bytes.
    real = real_file(tmp_path, "torch-zip")
    full = real.stat().st_size
    storages = sum(t.untyped_storage().nbytes() for t in torch.load(real, weights_only=True).values())
    for p, n in cut_copies(real, tmp_path, (0.05, 0.3, 0.6)):
        with pytest.raises((RuntimeError, OSError)):  # torch refuses it too
            torch.load(p, weights_only=True)
        err = expect_load_error(p, "truncated")
        declared = int(err.message.split("declares at least ")[1].split(" bytes")[0].replace(",", ""))
        assert storages < declared <= full, (declared, storages, full)
        one_line(
            p, "truncated", f"its pickle {real.stem}/data.pkl declares at least {declared:,} bytes, the file has {n:,}"
        )
    # cut in the central directory (the last bytes), and inside data.pkl (the first ones)
    data = real.read_bytes()
    for n, fragment in (
        (len(data) - 10, "ends inside the zip central directory"),
        (80, f"ends inside {real.stem}/data.pkl"),
    ):
        p = tmp_path / f"end{n}.bin"
        p.write_bytes(data[:n])
        one_line(p, "truncated", f"truncated: the file {fragment} at byte {n:,}; the download is incomplete")


def test_truncated_torch_zip_is_still_scanned(tmp_path: Path) -> None:
    # A cut file is never clean, and what its data.pkl would import is still reported.
    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("true",))  # written by pickle, never loaded

    p = tmp_path / "evil.pth"
    torch.save({"w": torch.randn(256, 256), "x": Payload()}, p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    r = run_cli("scan", str(p))
    assert r.code == 1 and "DANGEROUS" in r.stdout and "system" in r.stdout, r.stdout
    assert "truncated: " in r.stdout and "the download is incomplete" in r.stdout.replace("\n", " ")
    clean = tmp_path / "clean.pth"
    write_zip(clean)
    data = clean.read_bytes()
    clean.write_bytes(data[: len(data) // 2])
    r = run_cli("scan", str(clean))
    assert r.code == 2 and "truncated:" in r.stderr, r.stdout + r.stderr


def test_truncated_legacy_pth(tmp_path: Path) -> None:
    real = real_file(tmp_path, "torch-legacy")
    full = real.stat().st_size
    # In the storage data: the storage table (after the pickles) declares every storage's bytes.
    for p, n in cut_copies(real, tmp_path, (0.5, 0.99)):
        one_line(p, "truncated", f"truncated: the storage table declares {full:,} bytes, the file has {n:,}")
        one_line(p, "truncated", f"the storage table declares {full:,} bytes, the file has {n:,}", command="scan")
    # Inside the pickles: no length says how long the file is.
    p = tmp_path / "early.pth"
    p.write_bytes(real.read_bytes()[:200])
    one_line(
        p, "truncated", "truncated: the file ends inside its object pickle at byte 200; the download is incomplete"
    )
    one_line(p, "truncated", "truncated: the file ends inside pickle #4 at byte 200", command="scan")


def test_truncated_onnx(tmp_path: Path) -> None:
    real = real_file(tmp_path, "onnx")
    full = real.stat().st_size
    for p, n in cut_copies(real, tmp_path, (0.3, 0.5, 0.95)):
        with pytest.raises(Exception):  # onnx's own parser refuses it too
            onnx.load(str(p))
        err = expect_load_error(p, "truncated")
        declared = int(err.message.split("declares at least ")[1].split(" bytes")[0].replace(",", ""))
        assert n < declared <= full
        one_line(
            p, "truncated", f"declares at least {declared:,} bytes, the file has {n:,}; the download is incomplete"
        )


def test_a_lie_is_not_called_a_cut(tmp_path: Path) -> None:
    # Lengths no real file has stay the format's own error: 2^40 bytes in one ONNX field, 2^63 GGUF entries.
    p = tmp_path / "lie.onnx"
    p.write_bytes(b"\x08\x08\x3a" + bytes([0x80, 0x80, 0x80, 0x80, 0x80, 0x20]))
    assert expect_load_error(p, "protobuf-length")
    p = tmp_path / "lie.gguf"
    p.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + (0).to_bytes(8, "little") + (2**63).to_bytes(8, "little"))
    assert expect_load_error(p, "gguf-count")


# --- every error names the file --------------------------------------------------------------------------------


def test_a_reader_error_without_a_path_is_named_by_read_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelscope_inspect.loaders import safetensors as st_reader

    p = tmp_path / "model.safetensors"
    write_safetensors(p)

    def no_path(self: object, src: object, rel: str) -> object:
        raise MalformedFileError("unknown dtype 'X9'", rule="dtype-known")  # what a helper below a reader raises

    monkeypatch.setattr(st_reader.SafetensorsLoader, "read", no_path)
    line = one_line(p, "dtype-known", "unknown dtype 'X9'")
    assert line == f"error: {p}: [dtype-known] unknown dtype 'X9'"
