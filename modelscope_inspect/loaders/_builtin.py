"""Registers the built-in readers, in sniffing priority order."""

from __future__ import annotations

from .base import register
from .flax_msgpack import FlaxMsgpackLoader
from .gguf import GgufLoader
from .keras import KerasH5Loader, KerasLoader
from .nemo import NemoLoader
from .numpy_arrays import NpyLoader, NpzLoader
from .onnx import OnnxLoader
from .openvino import OpenVinoLoader
from .paddle import PaddleLoader
from .safetensors import SafetensorsLoader
from .tf_bundle import TfBundleLoader
from .torch_export import TorchExportLoader
from .torch_legacy import TorchLegacyLoader
from .torchzip import TorchZipLoader

register(KerasLoader())  # a zip whose first member is a .keras one: before torch-zip, which claims every zip
register(TorchExportLoader())  # likewise: a zip whose first member is a torch.export one
register(NpzLoader())  # before torch-zip: both are zips, an npz's first member is an .npy
register(TorchZipLoader())
register(TorchLegacyLoader())
register(SafetensorsLoader())
register(GgufLoader())
register(OnnxLoader())
register(KerasH5Loader())
register(OpenVinoLoader())
register(NemoLoader())
register(PaddleLoader())
register(FlaxMsgpackLoader())
register(TfBundleLoader())
register(NpyLoader())
