"""No command writes to, over or inside an input, and no output replaces a file without `--force`.

Every command that writes (`mi graph --png/--svg/--dot -o`, `--onnx` and its `OUT.data`, `--torchviz`) is
pointed at the input itself, into the input folder, through symlinks (to the folder, to a file in it, the
input named through one) and a hard link: each run is refused with exit 2 and one line naming the output, the
input and the rule, and the input's bytes (hashed before and after) and its listing are unchanged. Inputs
are written by the real libraries (transformers `save_pretrained`, `torch.save`, `onnx.save` with external
data).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, run_cli

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning", "ignore::FutureWarning")

DOT = shutil.which("dot")
# Every way `mi graph` writes a file. Refusals come before any rendering, so none of them needs Graphviz.
WRITERS = [["--png"], ["--svg"], ["--dot"], ["--onnx"], ["--torchviz", "--dot"], ["--torchviz", "--png"]]


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under `root`: a file's sha256, a symlink's target (not followed)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`inputs/hf`: a tiny GPT-2 saved by transformers (model.safetensors + config.json); `inputs/sharded`: the
    same in shards with an index; `inputs/single/m.pth`: its state dict by torch.save; symlinks to them."""
    root = tmp_path_factory.mktemp("inputs")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=100, n_positions=32)
    model = transformers.GPT2LMHeadModel(cfg)
    model.save_pretrained(root / "hf", safe_serialization=True)
    model.save_pretrained(root / "sharded", safe_serialization=True, max_shard_size="20KB")
    assert len(list((root / "sharded").glob("model-*.safetensors"))) >= 2
    (root / "single").mkdir()
    torch.save(model.state_dict(), root / "single" / "m.pth")
    return {
        "root": root,
        "hf": root / "hf",
        "sharded": root / "sharded",
        "pth": root / "single" / "m.pth",
    }


def refused(args: list[str], out: Path, shown_input: Path, rule: str = "output") -> None:
    r = run_cli("graph", *args, "-o", str(out))
    assert r.code == 2, (args, out, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    line = lines[0]
    assert line.startswith(f"error: {out}: [{rule}]"), line  # the output and the rule
    if rule == "output":
        assert str(shown_input) in line, line  # the input


@pytest.mark.parametrize("writer", WRITERS, ids=lambda w: "".join(w))
def test_every_writer_refuses_every_way_into_an_input(
    inputs: dict[str, Path], writer: list[str], tmp_path: Path
) -> None:
    hf, pth, sharded = inputs["hf"], inputs["pth"], inputs["sharded"]
    before = snapshot(inputs["root"])
    link_dir = tmp_path / "link-to-hf"
    link_dir.symlink_to(hf, target_is_directory=True)
    link_file = tmp_path / "link-to-weights.png"
    link_file.symlink_to(hf / "model.safetensors")
    link_pth = tmp_path / "link-to-m.png"
    link_pth.symlink_to(pth)
    hard = tmp_path / "hard-m.png"
    os.link(pth, hard)
    shard = sorted(sharded.glob("model-*.safetensors"))[0]
    cases = [
        (hf, hf / "model.safetensors", hf),  # the data loss: the weights replaced by a picture
        (hf, hf / "config.json", hf),
        (hf, hf / "new-file.out", hf),  # a new file inside the input folder
        (hf, hf, hf),  # the folder itself
        (hf, link_dir / "new-file.out", hf),  # inside, through a symlink to the folder
        (link_dir, hf / "new-file.out", link_dir),  # the input named through a symlink
        (hf, link_file, hf),  # a symlink outside pointing at a file inside
        (pth, pth, pth),  # a single file: over itself
        (pth, link_pth, pth),  # ... through a symlink to it
        (pth, hard, pth),  # ... through a hard link (the same inode)
    ]
    if "--torchviz" not in writer:  # (an index without config.json cannot be rebuilt: torchviz stops earlier)
        cases.append((sharded / "model.safetensors.index.json", shard, shard))  # an index: its shards are inputs
    for src, out, shown in cases:
        for force in ([], ["--force"]):  # --force replaces existing outputs, never an input
            refused([str(src), *writer, *force], out, shown)
    assert snapshot(inputs["root"]) == before  # not one byte of any input changed, nothing new inside
    assert hard.read_bytes() == pth.read_bytes() and os.path.samefile(hard, pth)


def test_default_output_inside_the_input_folder_is_refused(
    inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(inputs["root"])
    monkeypatch.chdir(inputs["hf"])  # `./NAME.graph.svg` would land inside the model folder
    r = run_cli("graph", ".", "--svg")
    assert r.code == 2 and "[output] is inside the input folder" in r.stderr and r.stderr.count("\n") == 1
    assert snapshot(inputs["root"]) == before


@pytest.mark.parametrize(
    "writer",
    [["--dot"], ["--onnx"], ["--torchviz", "--dot"], pytest.param(["--png"], marks=pytest.mark.skipif(
        DOT is None, reason="Graphviz `dot` is not installed"))],
    ids=lambda w: "".join(w),
)  # fmt: skip
def test_an_existing_output_needs_force(inputs: dict[str, Path], writer: list[str], tmp_path: Path) -> None:
    if "--torchviz" in writer:
        pytest.importorskip("torchviz")
    if "--onnx" in writer:
        pytest.importorskip("onnx")
    out = tmp_path / "existing.out"
    out.write_bytes(b"keep me")
    refused([str(inputs["hf"]), *writer], out, inputs["hf"], rule="output-exists")
    assert out.read_bytes() == b"keep me"
    r = run_cli("graph", str(inputs["hf"]), *writer, "-o", str(out), "--force", "--json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["output"] == str(out)
    data = out.read_bytes()
    assert data != b"keep me"
    if writer[-1] == "--dot":
        assert data.startswith(b"digraph")
    elif writer == ["--png"]:
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        import onnx

        onnx.checker.check_model(str(out))
    # A folder is never an output, --force or not.
    refused([str(inputs["pth"]), *writer, "--force"], tmp_path, tmp_path)


def test_onnx_external_data_file_is_guarded_too(tmp_path: Path) -> None:
    """`--onnx` of a model that cannot be rebuilt writes `OUT.data` beside OUT: an existing one needs --force,
    and one that leads into the input (a symlink) is refused whatever --force says; OUT is not written."""
    pytest.importorskip("onnx")
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(FIXTURES / "views_and_dtypes.pth", folder / "weights.pth")  # structure export: writes OUT.data
    before = snapshot(folder)
    out = tmp_path / "g.onnx"
    data = tmp_path / "g.onnx.data"
    data.write_bytes(b"old")
    refused([str(folder), "--onnx"], data, folder, rule="output-exists")
    assert not out.exists() and data.read_bytes() == b"old"
    data.unlink()
    data.symlink_to(folder / "weights.pth")
    refused([str(folder), "--onnx", "--force"], data, folder)
    assert not out.exists() and snapshot(folder) == before
    data.unlink()
    r = run_cli("graph", str(folder), "--onnx", "-o", str(out), "--json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["kind"] == "structure" and data.is_file()


def test_onnx_inputs_external_data_is_an_input(tmp_path: Path) -> None:
    """An ONNX model read for its graph keeps its weights in another file: that file is an input as well."""
    onnx = pytest.importorskip("onnx")
    np = pytest.importorskip("numpy")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(64, dtype=np.float32).reshape(8, 8), name="w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], initializer=[w],
    )  # fmt: skip
    folder = tmp_path / "onnx-model"
    folder.mkdir()
    onnx.save_model(helper.make_model(graph), str(folder / "m.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.data", size_threshold=0)  # fmt: skip
    assert (folder / "weights.data").stat().st_size == 256
    before = snapshot(folder)
    refused([str(folder / "m.onnx"), "--dot", "--force"], folder / "weights.data", folder / "weights.data")
    assert snapshot(folder) == before
    # Beside the input file (not inside an input folder) a new output is fine.
    r = run_cli("graph", str(folder / "m.onnx"), "--dot", "-o", str(folder / "m.dot"))
    assert r.code == 0, r.stderr
