"""Registers the built-in readers, in sniffing priority order."""

from __future__ import annotations

from .base import register
from .gguf import GgufLoader
from .numpy_arrays import NpyLoader, NpzLoader
from .onnx import OnnxLoader
from .safetensors import SafetensorsLoader
from .torch_legacy import TorchLegacyLoader
from .torchzip import TorchZipLoader

register(NpzLoader())  # before torch-zip: both are zips, an npz's first member is an .npy
register(TorchZipLoader())
register(TorchLegacyLoader())
register(SafetensorsLoader())
register(GgufLoader())
register(OnnxLoader())
register(NpyLoader())
