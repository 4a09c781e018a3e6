"""`report_input`: everything `mi report` puts on one page, gathered through the other commands' api calls.

The inventory (headers only), the pickle scan of the same path, and, when a config is known (an HF folder's
config.json, `--config`, a GGUF header), the memory estimates over a range of context lengths and one
training estimate. What cannot be worked out (no config, no onnx package) becomes a note, never an error: the
page shows what is known.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..errors import InspectError
from .graph import GraphInput

if TYPE_CHECKING:
    from ..analysis.memory import MemoryReport
    from ..inventory import TensorInventory
    from ..loaders.scanner import ScanReport

# Context lengths the memory chart is drawn at (tokens): powers of two, up to the model's own maximum.
CONTEXT_MIN = 512
CONTEXT_MAX = 131072


@dataclass(frozen=True, slots=True)
class ReportInput:
    """What `mi report` shows: the inventory, the scan, memory over context lengths, the graph's input."""

    path: str
    inventory: TensorInventory
    scan: ScanReport | None
    memory: tuple[MemoryReport, ...]  # inference at fp16/bf16 weights, batch 1, one per context length
    training: MemoryReport | None  # training with AdamW at the shortest context shown
    graph: GraphInput | None
    notes: tuple[str, ...] = ()


def context_lengths(max_positions: int | None) -> tuple[int, ...]:
    """`512, 1024, … ` up to the model's maximum context (or `CONTEXT_MAX` when it does not say)."""
    top = max(CONTEXT_MIN, min(max_positions or CONTEXT_MAX, 1 << 20))
    out = [CONTEXT_MIN]
    while out[-1] * 2 <= top:
        out.append(out[-1] * 2)
    if out[-1] != top:
        out.append(top)
    return tuple(out)


def report_input(
    path: str,
    *,
    config: str | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    graph: bool = True,
) -> ReportInput:
    """Read `path` once and gather what the page shows.

    Example:
        >>> data = report_input("examples/tiny-gpt2")  # doctest: +SKIP
        >>> data.inventory.total_params, data.scan.status, len(data.memory)  # doctest: +SKIP
        (11904, 'clean', 1)
    """
    from ..analysis.memory import MemoryOptions, estimate_for, spec_from_inventory
    from .config import gguf_config, open_config
    from .model import open_model
    from .paths import is_url
    from .scan import scan_paths

    notes: list[str] = []
    inv = open_model(path, endpoint=endpoint, token=token, config_beside=True)
    if config is not None:
        inv = replace(inv, config=open_config(config, endpoint=endpoint, token=token))
    elif inv.format == "gguf":
        inv = replace(inv, config=gguf_config(inv))

    scan: ScanReport | None = None
    try:
        scan = scan_paths(path, endpoint=endpoint, token=token)
    except InspectError as exc:  # a folder with nothing to scan, a remote listing refused: say so on the page
        notes.append(f"scan: {exc}")

    memory: list[MemoryReport] = []
    training: MemoryReport | None = None
    if inv.config is None:
        notes.append("memory: no config.json beside the model; pass --config for the KV-cache and training terms")
    else:
        try:
            spec = spec_from_inventory(inv, path)
            for seq in context_lengths(spec.hp.max_positions):
                memory.append(estimate_for(spec, MemoryOptions(seq=seq)))
            training = estimate_for(spec, MemoryOptions(seq=memory[0].options.seq, training=True))
        except InspectError as exc:  # a config whose family mi does not know: the bytes are still shown
            notes.append(f"memory: {exc}")

    source: GraphInput | None = None
    if graph:  # a URL's structure is drawn from its inventory; only a local ONNX file gives its operators
        source = _graph_input(path, inv, notes) if not is_url(path) else GraphInput(path, inventory=inv)
    return ReportInput(path, inv, scan, tuple(memory), training, source, tuple(notes))


def _graph_input(path: str, inv: TensorInventory, notes: list[str]) -> GraphInput:
    from .graph import is_onnx_path, open_onnx

    onnx_file = is_onnx_path(path)
    if onnx_file is None:
        return GraphInput(path, inventory=inv)
    try:
        return GraphInput(path, onnx=open_onnx(onnx_file))
    except InspectError as exc:  # no onnx package: the structure of the initializers instead
        notes.append(f"graph: {exc}; the module structure is drawn instead")
        return GraphInput(path, inventory=inv)
