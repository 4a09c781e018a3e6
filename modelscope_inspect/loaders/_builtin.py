"""Registers the built-in readers, in sniffing priority order."""

from __future__ import annotations

from .base import register
from .safetensors import SafetensorsLoader
from .torchzip import TorchZipLoader

register(TorchZipLoader())
register(SafetensorsLoader())
