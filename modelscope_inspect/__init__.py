"""modelscope-inspect: open machine-learning model files and say exactly what is inside and what it costs.

The library API is typed and never executes anything from a model file:

    >>> import modelscope_inspect as mi  # doctest: +SKIP
    >>> inv = mi.load("gpt2/")            # doctest: +SKIP
    >>> inv.total_params, inv.by_dtype   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .inventory import TensorInventory, TensorRecord


def load(path: str) -> TensorInventory:
    """Read a model file or folder (headers only) into a `TensorInventory`. See `loaders.folder.load`."""
    from .loaders.folder import load as _load

    return _load(path)


def __getattr__(name: str) -> object:
    # Lazy re-exports keep `import modelscope_inspect` cheap.
    if name in ("TensorInventory", "TensorRecord", "FileRecord"):
        from . import inventory

        return getattr(inventory, name)
    if name in ("InspectError",):
        from . import errors

        return getattr(errors, name)
    raise AttributeError(name)


__all__ = ["TensorInventory", "TensorRecord", "__version__", "load"]
