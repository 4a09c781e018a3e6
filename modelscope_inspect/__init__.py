"""modelscope-inspect: open machine-learning model files and say exactly what is inside and what it costs.

The library API (`modelscope_inspect.api`) is typed and never executes anything from a model file:

    >>> import modelscope_inspect as mi  # doctest: +SKIP
    >>> inv = mi.load("gpt2/")            # doctest: +SKIP
    >>> inv.total_params, inv.by_dtype   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .inventory import TensorInventory, TensorRecord


def load(path: str, **options: Any) -> TensorInventory:
    """Read a model file, folder or URL (headers only) into a `TensorInventory`. See `api.open_model`."""
    from .api import open_model

    return open_model(path, **options)


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
