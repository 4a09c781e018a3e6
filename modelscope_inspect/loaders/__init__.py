"""Readers for every model format, behind one entry point: `load(path) -> TensorInventory`."""

from __future__ import annotations

from .base import FileScan, Loader, detect, loaders, register
from .folder import load

__all__ = ["FileScan", "Loader", "detect", "load", "loaders", "register"]
