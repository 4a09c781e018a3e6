"""`graph_input`: what `mi graph` draws for a path: an ONNX file's protobuf, or the inventory of anything else."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MalformedFileError, MissingDependencyError

if TYPE_CHECKING:
    from ..inventory import TensorInventory

MAX_ONNX_BYTES = 2 << 30  # protobuf's own limit: anything bigger keeps its weights as external data


@dataclass(frozen=True, slots=True)
class GraphInput:
    """The model behind a path, as `mi graph` needs it: `onnx` (a ModelProto) for ONNX files, else `inventory`."""

    path: str
    inventory: TensorInventory | None = None
    onnx: Any = None


def require_onnx() -> Any:
    """Import `onnx` or fail with a one-line message naming the extra."""
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError(
            "this needs the onnx package: pip install 'modelscope-inspect[onnx]'", rule="missing-extra"
        ) from None
    return onnx


def is_onnx_path(path: str) -> str | None:
    """The ONNX file behind `path` (a `.onnx` file, or a folder whose model is one), else None."""
    p = Path(path)
    if p.is_file() and p.suffix.lower() == ".onnx":
        return str(p)
    if p.is_dir():
        found = sorted(x for x in p.iterdir() if x.is_file() and x.suffix.lower() == ".onnx")
        others = [x for x in p.iterdir() if x.is_file() and x.suffix.lower() in (".safetensors", ".bin", ".pth", ".pt")]
        if len(found) == 1 and not others:
            return str(found[0])
    return None


def open_onnx(path: str) -> Any:
    """Parse an ONNX file's protobuf (external data not loaded). Bad input becomes a one-line error."""
    onnx = require_onnx()
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_ONNX_BYTES:
        raise MalformedFileError(f"{size:,} bytes is more than a single ONNX protobuf can hold", path=path,
                                 rule="onnx-size")  # fmt: skip
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends: the file is not a valid ModelProto
        raise MalformedFileError(f"not a readable ONNX model ({type(exc).__name__})", path=path,
                                 rule="onnx-protobuf") from None  # fmt: skip
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise MalformedFileError("ONNX model has no graph nodes", path=path, rule="onnx-graph")
    return model


def input_paths(source: GraphInput) -> tuple[str, ...]:
    """The local files and folders `source` was read from: its path, the files its inventory read, and an
    ONNX model's external data files (what `mi graph -o` must never replace)."""
    from .output import model_inputs

    paths = model_inputs(source.path, source.inventory)
    onnx_file = is_onnx_path(source.path) if source.onnx is not None else None
    if onnx_file is None:
        return paths
    folder = Path(onnx_file).parent
    external = {
        e.value
        for t in source.onnx.graph.initializer
        for e in t.external_data
        if e.key == "location" and isinstance(e.value, str) and e.value
    }
    return (*paths, onnx_file, *(str(folder / name) for name in sorted(external)))


def graph_input(path: str, *, operators: bool = True) -> GraphInput:
    """The ONNX protobuf when `path` is an ONNX model and `operators` is set (its operator graph is drawn),
    else the inventory (its module structure is drawn, or a rebuilt model)."""
    from .model import open_model

    onnx_file = is_onnx_path(path) if operators else None
    if onnx_file is not None:
        return GraphInput(path, onnx=open_onnx(onnx_file))
    return GraphInput(path, inventory=open_model(path))
