"""Keras files written by Keras itself (3.x, torch backend): `.keras`, `.weights.h5`, legacy `.h5`.

Oracles are Keras's own: `model.count_params()`, the trainable / non-trainable weights it lists, and the
variable paths `model.weights` gives (`sequential/dense_1/kernel`). HDF5 files with lies (huge declared dims,
external links) end in one line, exit 2.
"""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

import modelscope_inspect as mi
from modelscope_inspect.errors import InspectError
from tests.conftest import run_cli

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")
np = pytest.importorskip("numpy")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def _model(frozen: bool = False) -> Any:
    inp = keras.Input((8,))
    ids = keras.Input((2,), dtype="int32")
    x = keras.layers.Dense(16, name="dense_1")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Dense(4, use_bias=False, name="head")(x)
    x = keras.layers.LayerNormalization(center=False, name="ln")(x)
    e = keras.layers.Embedding(10, 3, name="emb")(ids)
    model = keras.Model([inp, ids], [x, e])
    if frozen:
        model.get_layer("dense_1").trainable = False
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("keras")
    model = _model(frozen=True)
    model.save(out / "m.keras")
    model.save_weights(out / "m.weights.h5")
    model.save(out / "m.h5")  # legacy HDF5 (model_config + model_weights)
    return {"dir": out, "model": model}


def _expected(model: Any) -> dict[str, Any]:
    return {
        "total": model.count_params(),
        "trainable": sum(int(np.prod(w.shape)) for w in model.trainable_weights),
        "frozen": sum(int(np.prod(w.shape)) for w in model.non_trainable_weights),
        # Keras's own variable paths: `<layer>/<variable>` (the model's name dropped).
        "names": sorted(w.path for w in model.weights),
    }


def test_keras_archive_counts_and_names(saved: dict[str, Any]) -> None:
    exp = _expected(saved["model"])
    inv = mi.load(str(saved["dir"] / "m.keras"))
    assert inv.format == "keras"
    assert inv.total_params == exp["total"]
    assert inv.details["trainable"] == f"{exp['trainable']:,}"
    assert inv.details["non-trainable"] == f"{exp['frozen']:,}"
    assert sorted(t.name for t in inv.tensors) == exp["names"]
    kinds = {t.name: t.kind for t in inv.tensors}
    assert kinds["bn/moving_mean"] == "buffer" and kinds["bn/gamma"] == "param"
    assert kinds["dense_1/kernel"] == "buffer"  # the frozen layer: trainable false in the config
    assert inv.total_bytes == exp["total"] * 4


def test_keras_archive_order_follows_the_model(saved: dict[str, Any]) -> None:
    inv = mi.load(str(saved["dir"] / "m.keras"))
    assert [t.name for t in inv.tensors][:3] == ["dense_1/kernel", "dense_1/bias", "bn/gamma"]


def test_weights_h5_counts(saved: dict[str, Any]) -> None:
    exp = _expected(saved["model"])
    inv = mi.load(str(saved["dir"] / "m.weights.h5"))
    assert inv.format == "keras-weights-h5"
    assert inv.total_params == exp["total"]
    # Without the config the variables keep Keras's numbers: `layer/0`.
    assert {t.name.split("/")[0] for t in inv.tensors} == {n.split("/")[0] for n in exp["names"]}


def test_legacy_h5_counts_and_names(saved: dict[str, Any]) -> None:
    exp = _expected(saved["model"])
    inv = mi.load(str(saved["dir"] / "m.h5"))
    assert inv.format == "keras-h5"
    assert inv.total_params == exp["total"]
    assert sorted(t.name for t in inv.tensors) == exp["names"]
    assert inv.details["trainable"] == f"{exp['trainable']:,}"
    assert inv.details["non-trainable"] == f"{exp['frozen']:,}"


def test_cli_inspect_and_scan(saved: dict[str, Any]) -> None:
    r = run_cli("inspect", str(saved["dir"] / "m.keras"))
    assert r.code == 0, r.stderr
    assert "non-trainable" in r.stdout and "dense_1/kernel" in r.stdout
    s = run_cli("scan", str(saved["dir"] / "m.keras"))
    assert s.code == 0, s.stdout + s.stderr
    s = run_cli("scan", str(saved["dir"] / "m.h5"))
    assert s.code == 0, s.stdout + s.stderr


def test_nested_layers_and_optimizer(tmp_path: Path) -> None:
    """A nested Sequential, MultiHeadAttention's and LSTM's own sub-layers, and a compiled, fitted optimizer."""
    inner = keras.Sequential([keras.layers.Dense(8, name="in_dense"), keras.layers.LayerNormalization(name="in_ln")])
    x = keras.Input((5, 8))
    y = keras.layers.MultiHeadAttention(2, 4, name="mha")(x, x)
    y = keras.layers.LSTM(6, name="lstm")(inner(y))
    y = keras.layers.Conv1D(3, 2, name="conv")(keras.layers.Reshape((6, 1))(y))
    model = keras.Model(x, y)
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((2, 5, 8), np.float32), np.ones((2, 5, 3), np.float32), verbose=0)
    model.save(tmp_path / "nested.keras")
    inv = mi.load(str(tmp_path / "nested.keras"))
    assert inv.total_params == model.count_params()
    assert sorted(t.name for t in inv.tensors if t.section == "model") == sorted(w.path for w in model.weights)
    opt = sum(int(np.prod(v.shape)) for v in model.optimizer.variables)
    assert inv.by_section["optimizer"].elements == opt


def test_hf_tf_model_h5_layout(tmp_path: Path) -> None:
    """transformers' `save_pretrained` for TF models writes Keras 2 `save_weights` HDF5: `layer_names` on the
    root, `weight_names` ending in `:0` per layer (written here with h5py in that layout, no TensorFlow)."""
    p = tmp_path / "tf_model.h5"
    with h5py.File(p, "w") as f:
        f.attrs["layer_names"] = [b"tf_bert_model"]
        g = f.create_group("tf_bert_model")
        names = [b"tf_bert_model/bert/embeddings/word_embeddings/weight:0", b"tf_bert_model/bert/pooler/dense/bias:0"]
        g.attrs["weight_names"] = names
        g.create_dataset(names[0].decode(), data=np.zeros((30, 8), np.float32))
        g.create_dataset(names[1].decode(), data=np.zeros((8,), np.float16))
    inv = mi.load(str(p))
    assert inv.total_params == 30 * 8 + 8
    assert {t.name for t in inv.tensors} == {
        "tf_bert_model/bert/embeddings/word_embeddings/weight",
        "tf_bert_model/bert/pooler/dense/bias",
    }
    assert inv.by_dtype["f16"].params == 8


def _one_line(path: Path, fragment: str) -> None:
    with pytest.raises(InspectError) as info:
        mi.load(str(path))
    assert fragment in str(info.value), str(info.value)
    r = run_cli("inspect", str(path))
    assert r.code == 2, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr and fragment in lines[0], r.stderr


def test_hostile_huge_dims(tmp_path: Path) -> None:
    """A dataset declaring 2**40 × 2**20 floats (allocated lazily by HDF5, so the file stays tiny)."""
    p = tmp_path / "huge.weights.h5"
    with h5py.File(p, "w") as f:
        f.create_group("layers/dense/vars").create_dataset("0", shape=(1 << 40, 1 << 20), dtype="f4")
    assert p.stat().st_size < 100_000
    tracemalloc.start()
    _one_line(p, "declares")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 << 20


def test_hostile_external_link(tmp_path: Path) -> None:
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=np.zeros(4, np.float32))
    p = tmp_path / "link.h5"
    with h5py.File(p, "w") as f:
        f["layers"] = h5py.ExternalLink(str(other), "/")
    _one_line(p, "external link")


def test_not_hdf5_under_h5_name(tmp_path: Path) -> None:
    p = tmp_path / "fake.h5"
    p.write_bytes(b"\x00\x01garbage" * 100)
    _one_line(p, "HDF5")


def test_missing_h5py_names_the_extra(tmp_path: Path, saved: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(InspectError) as info:
        mi.load(str(saved["dir"] / "m.weights.h5"))
    assert "modelscope-inspect[keras]" in str(info.value)
    assert len(str(info.value).splitlines()) == 1


class _Counting:
    """A byte source that counts what a reader fetches (what a remote read would cost)."""

    def __init__(self, path: Path) -> None:
        from modelscope_inspect.loaders.source import LocalFile

        self.f = LocalFile(path)
        self.name, self.size, self.bytes = self.f.name, self.f.size, 0

    def read_at(self, offset: int, n: int) -> bytes:
        data = self.f.read_at(offset, n)
        self.bytes += len(data)
        return data

    def read_exact(self, offset: int, n: int, what: str) -> bytes:
        from modelscope_inspect.loaders.source import read_exact

        return read_exact(self, offset, n, what)

    def close(self) -> None:
        self.f.close()


def test_header_cost(tmp_path: Path) -> None:
    """Only HDF5 object headers are fetched: a 4 MiB .keras costs a few KiB of reads, never its weights."""
    from modelscope_inspect.loaders.folder import read_source

    model = keras.Sequential([keras.Input((1024,)), keras.layers.Dense(1024, name="big")])
    model.save(tmp_path / "big.keras")
    src = _Counting(tmp_path / "big.keras")
    scan = read_source(src, str(tmp_path / "big.keras"), "big.keras")
    src.close()
    assert sum(r.numel for r in scan.records) == model.count_params()
    assert src.size > 4 << 20 and src.bytes < 256 << 10, (src.size, src.bytes)
