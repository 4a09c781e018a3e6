"""One target in, one record out: the unit of work of `mi scan --jsonl` / `mi inspect --jsonl`, for any engine.

`record(target)` never raises for a bad target: the record says what went wrong (`error`, `exit_code` 2), so a
registry-wide run keeps going. Records are plain JSON-ready dicts (no timings, nothing that differs between two
runs over the same bytes), the same ones `--jsonl` prints, so a distributed run can be checked against a local one.

Example, over a Dask cluster (any engine with a `map` works the same way):

    >>> from dask.distributed import Client, LocalCluster  # doctest: +SKIP
    >>> from modelscope_inspect.batch import record  # doctest: +SKIP
    >>> cluster = LocalCluster(n_workers=2, processes=False, protocol="tcp", host="127.0.0.1")  # doctest: +SKIP
    >>> with cluster, Client(cluster) as client:  # doctest: +SKIP
    ...     records = client.gather(client.map(record, targets, pure=False))
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from .errors import EXIT_OK, EXIT_UNREADABLE, InspectError

SCHEMA_VERSION = 1


def record(
    target: str,
    command: str = "scan",
    *,
    allow: Collection[str] = (),
    endpoint: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """The record of one target for `command` (`scan` or `inspect`).

    scan: `status` (`clean`, `findings`, `error`), `findings` (every finding with its file), `errors` (files that
    could not be scanned), `remote_code`. inspect: `summary` (format, files, parameters, bytes, dtypes, warnings).
    Both: `target`, `command`, `exit_code`, `error` (the one-line message when the target could not be read).
    """
    if command not in ("scan", "inspect"):
        raise ValueError(f"command must be scan or inspect, not {command!r}")
    base: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "command": command, "target": target}
    try:
        if command == "scan":
            return {**base, **_scan(target, allow, endpoint, token)}
        return {**base, **_inspect(target, endpoint, token)}
    except InspectError as exc:
        return {**base, "status": "error", "exit_code": exc.exit_code, "error": str(exc)}
    except RecursionError:
        return {**base, **_failed("input nests too deeply to read (recursion limit)")}
    except MemoryError:
        return {**base, **_failed("input needs more memory than is available")}
    except Exception as exc:  # a bug must not stop a registry-wide run: recorded like the CLI reports it
        return {**base, **_failed(f"internal error: {type(exc).__name__}: {exc}")}


def scan_record(target: str, **kw: Any) -> dict[str, Any]:
    """`record(target, "scan", **kw)`."""
    return record(target, "scan", **kw)


def inspect_record(target: str, **kw: Any) -> dict[str, Any]:
    """`record(target, "inspect", **kw)`."""
    return record(target, "inspect", **kw)


def _failed(message: str) -> dict[str, Any]:
    return {"status": "error", "exit_code": EXIT_UNREADABLE, "error": message}


def _scan(target: str, allow: Collection[str], endpoint: str | None, token: str | None) -> dict[str, Any]:
    from .api.outcome import exit_code
    from .api.scan import scan_paths
    from .render.documents.scan import remote_code_document

    report = scan_paths(target, endpoint=endpoint, token=token, allow=allow)
    rec: dict[str, Any] = {
        "status": report.status,
        "exit_code": exit_code(report),
        "error": None,
        "files": len(report.files),
        "findings": [
            {
                "path": f.path,
                "severity": x.severity.value,
                "kind": x.kind,
                "target": x.target,
                "stream": x.stream,
                "offset": x.offset,
                "reason": x.reason,
            }
            for f in report.files
            for x in f.findings
        ],
        "errors": [f"{f.path}: could not scan: {f.error}" for f in report.files if f.error],
    }
    if report.remote_code:
        rec["remote_code"] = [remote_code_document(rc) for rc in report.remote_code]
    if report.bytes_read is not None:
        rec["bytes_read"] = report.bytes_read
    return rec


def _inspect(target: str, endpoint: str | None, token: str | None) -> dict[str, Any]:
    from .api.model import open_model
    from .api.remote_code import remote_code_warning

    inv = open_model(target, endpoint=endpoint, token=token)
    warning = remote_code_warning(target, endpoint=endpoint, token=token)
    return {
        "status": "ok",
        "exit_code": EXIT_OK,
        "error": None,
        "summary": {
            "format": inv.format,
            "path": inv.path,
            "files": len(inv.files),
            "file_bytes": inv.file_bytes,
            "total_params": inv.total_params,
            "total_bytes": inv.total_bytes,
            "tensors": len(inv.tensors),
            "by_dtype": {k: {"params": v.params, "bytes": v.nbytes} for k, v in inv.by_dtype.items()},
            "warnings": [*inv.warnings, *([warning] if warning else [])],
        },
    }
