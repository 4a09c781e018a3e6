"""Split GGUF: a model written as `NAME-00001-of-00003.gguf`, `NAME-00002-of-00003.gguf`, … read as one.

llama.cpp's `gguf-split` and gguf-py's `GGUFWriter(split_max_tensors=…, split_max_size=…)` write each part as a
complete GGUF file whose metadata carries `split.no` (0-based), `split.count` and `split.tensors.count` (the
tensors of all parts); the model's own metadata (architecture, tokenizer, …) is in the first part only. Parts
are found by that naming rule next to the part given, checked against their own `split.*` keys, and merged in
order. A part that is missing, numbered wrongly or disagreeing on the count is an error naming it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from ..errors import MalformedFileError
from .base import FileScan
from .gguf import type_summary

PART_NAME = re.compile(r"^(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
RULE = "gguf-split"

Part = tuple[str, FileScan, int]  # (name relative to the folder, scan, file size)


def split_position(scan: FileScan, display: str) -> tuple[int, int] | None:
    """`(split.no, split.count)` of a GGUF part, or None for a whole (unsplit) file."""
    if scan.format != "gguf" or "split.count" not in scan.metadata:
        return None
    count = _int(scan, "split.count", display)
    no = _int(scan, "split.no", display) if "split.no" in scan.metadata else 0
    if count <= 1 and no == 0:
        return None
    if not 0 <= no < count:
        raise MalformedFileError(f"split.no {no} is outside split.count {count}", path=display, rule=RULE)
    return no, count


def part_names(name: str, count: int) -> list[str] | None:
    """The names of every part, from one part's name (`…-0000k-of-0000N.gguf`); None when it does not follow it."""
    m = PART_NAME.match(name)
    if m is None or int(m["count"]) != count:
        return None
    return [f"{m['stem']}-{k:05d}-of-{m['count']}.gguf" for k in range(1, count + 1)]


def one_split_set(names: list[str]) -> str | None:
    """When every name is a part of the same split GGUF (a folder holding just that model), its first name."""
    parts = [(m, n) for n in names if (m := PART_NAME.match(n)) is not None]
    if len(names) < 2 or len(parts) != len(names) or len({(m["stem"], m["count"]) for m, _ in parts}) != 1:
        return None
    return min(parts, key=lambda mn: int(mn[0]["no"]))[1]


def expand_split(
    name: str,
    scan: FileScan,
    size: int,
    scan_parts: Callable[[list[str]], dict[str, tuple[FileScan, int]]],
    display: str,
) -> list[Part]:
    """Every part of the split model `name` belongs to, validated and ready for the folder's combine step.

    `scan_parts` reads the other parts (by name, relative to the same folder; it raises for a missing one). A
    single unsplit file comes back alone; a part whose name does not follow the rule comes back alone with a
    warning, since its siblings cannot be found.
    """
    pos = split_position(scan, display)
    if pos is None:
        return [(name, scan, size)]
    no, count = pos
    names = part_names(name, count)
    if names is None:
        note = (
            f"part {no + 1} of {count} of a split GGUF: its other parts are not named …-0000k-of-{count:05d}.gguf, "
            "so only this part is counted"
        )
        return [(name, replace(scan, warnings=[*scan.warnings, note]), size)]
    others = scan_parts([n for n in names if n != name])
    parts: list[Part] = []
    for i, part in enumerate(names):
        got_scan, got_size = (scan, size) if part == name else others[part]
        where = f"{display} (part {part})" if part != name else display
        got = split_position(got_scan, where)
        if got != (i, count):
            said = "no split metadata" if got is None else f"split.no {got[0]} of split.count {got[1]}"
            raise MalformedFileError(
                f"{part} should be part {i + 1} of {count} but says {said}", path=display, rule=RULE
            )
        parts.append((part, got_scan, got_size))
    first = parts[0][1]
    declared = _int(first, "split.tensors.count", display) if "split.tensors.count" in first.metadata else -1
    found = sum(len(s.records) for _, s, _ in parts)
    if declared >= 0 and declared != found:
        raise MalformedFileError(
            f"split.tensors.count says {declared:,} tensors; the {count} parts hold {found:,}", path=display, rule=RULE
        )
    return _merged_metadata(parts)


def _merged_metadata(parts: list[Part]) -> list[Part]:
    """The first part speaks for the model: its metadata (without `split.no`) and details, with the tensor
    types and bits per weight recomputed over every part; the other parts keep their tensors and warnings."""
    records = [r for _, s, _ in parts for r in s.records]
    rel, first, size = parts[0]
    metadata = {k: v for k, v in first.metadata.items() if k != "split.no"}
    details = dict(first.details)
    details.pop("data offset", None)  # one per part: not a fact about the model
    details["split"] = f"{len(parts)} parts, {len(records):,} tensors"
    details.update(type_summary(records))
    out: list[Part] = [(rel, replace(first, metadata=metadata, details=details), size)]
    out += [(r, replace(s, metadata={}, details={}), n) for r, s, n in parts[1:]]
    return out


def _int(scan: FileScan, key: str, display: str) -> int:
    text = scan.metadata[key]
    if not text.lstrip("-").isdigit():
        raise MalformedFileError(f"{key} is {text!r}, not an integer", path=display, rule=RULE)
    return int(text)


__all__ = ["PART_NAME", "expand_split", "one_split_set", "part_names", "split_position"]
