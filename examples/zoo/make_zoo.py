"""Writes the tiny files of examples/zoo/ with each format's own library (run from the repo root:
`KERAS_BACKEND=torch python examples/zoo/make_zoo.py`). NeMo, Paddle and Flax are not installed here: their
files are written the way those libraries write them (a tar of model_config.yaml + model_weights.ckpt;
pickle protocol 4 of numpy arrays with the StructuredToParameterName@@ table; msgpack with ExtType(1) arrays).
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import tarfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import msgpack
import numpy as np
import openvino as ov
import torch

OUT = Path(__file__).resolve().parent


class Mlp(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(32, 64)
        self.norm = torch.nn.LayerNorm(64)
        self.fc2 = torch.nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.norm(self.fc1(x))))


def main() -> None:
    torch.manual_seed(0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32,)),
            keras.layers.Dense(64, name="dense_1"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Dense(10, name="logits"),
        ],
        name="mlp",
    )
    model.save(OUT / "mlp.keras")
    model.save(OUT / "mlp.h5")  # legacy HDF5

    net = Mlp().eval()
    x = torch.randn(1, 32)
    torch.export.save(torch.export.export(net, (x,)), str(OUT / "mlp.pt2"))
    torch.onnx.export(net, (x,), str(OUT / "mlp.onnx"), dynamo=False)
    ov.save_model(ov.convert_model(str(OUT / "mlp.onnx")), str(OUT / "mlp.xml"))  # fp16-compressed by default
    (OUT / "mlp.onnx").unlink()

    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    cfg = b"target: nemo.collections.asr.models.EncDecCTCModel\nsample_rate: 16000\n"
    with tarfile.open(OUT / "mlp.nemo", "w:") as tar:
        for name, data in (("./model_config.yaml", cfg), ("./model_weights.ckpt", buf.getvalue())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

    sd = collections.OrderedDict((k, v.numpy()) for k, v in net.state_dict().items())
    sd["StructuredToParameterName@@"] = {k: f"linear_{i}.w_0" for i, k in enumerate(list(sd))}
    (OUT / "mlp.pdparams").write_bytes(pickle.dumps(sd, protocol=4))

    def ext(a: np.ndarray) -> msgpack.ExtType:
        return msgpack.ExtType(1, msgpack.packb((a.shape, a.dtype.name, a.tobytes("C")), use_bin_type=True))

    tree = {
        "Dense_0": {"kernel": ext(np.zeros((32, 64), np.float32)), "bias": ext(np.zeros(64, np.float32))},
        "LayerNorm_0": {"scale": ext(np.ones(64, np.float32)), "bias": ext(np.zeros(64, np.float32))},
        "Dense_1": {"kernel": ext(np.zeros((64, 10), np.float32)), "bias": ext(np.zeros(10, np.float32))},
    }
    (OUT / "flax_model.msgpack").write_bytes(msgpack.packb(tree, strict_types=True))


if __name__ == "__main__":
    main()
